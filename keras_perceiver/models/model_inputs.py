"""Input handling shared by the task models: optional inputs may be left out, integer inputs stay integer."""

import keras
import numpy as np


def _is_empty_batch(x):
    """True for arrays (or a dict/list of arrays) whose leading (batch) dimension is 0 in every entry."""
    leaves = list(x.values()) if isinstance(x, dict) else list(x) if isinstance(x, (list, tuple)) else [x]
    shapes = [getattr(leaf, "shape", None) for leaf in leaves if leaf is not None]
    return bool(shapes) and all(shape is not None and len(shape) > 0 and shape[0] == 0 for shape in shapes)


def _is_float_array(value):
    """True for a NumPy array or Python sequence of floats (tensors are left to Keras' own checks)."""
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    return isinstance(value, (np.ndarray, np.generic)) and np.issubdtype(value.dtype, np.floating)


class ModelInputsMixin:
    """Input checks of a Functional task model taking a dict of named inputs.

    - Optional inputs (`keras.Input(..., optional=True)`) left out of the
      dict are filled with None: Keras' Functional models accept None for an
      optional input but still require its key, so `model({"inputs": x})`
      and datasets without a `padding_mask` work too.
    - A float NumPy array (or list) for an integer input (token ids,
      indices) raises a `TypeError` instead of being silently truncated by
      Keras' cast. Tensors are not checked here: Keras' symbolic builds under
      `tf.distribute` pass float stand-ins for integer inputs.
    - `predict` on an empty batch (every input of batch size 0) returns the
      model's empty outputs, where Keras' `predict` loop would end in an
      `UnboundLocalError` (it has no batch to concatenate).
    """

    def predict(self, x, *args, **kwargs):
        if _is_empty_batch(x):
            outputs = self(x, training=False)
            return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)
        return super().predict(x, *args, **kwargs)

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, dict):
            specs = {t.name: t for t in self.inputs}
            for name, value in inputs.items():
                spec = specs.get(name)
                if spec is not None and "int" in spec.dtype and _is_float_array(value):
                    raise TypeError(
                        f"{self.__class__.__name__}: input `{name}` must be an integer tensor "
                        f"({spec.dtype}). Received: dtype={np.asarray(value).dtype}"
                    )
            missing = [
                name
                for name, t in specs.items()
                if name not in inputs and getattr(t._keras_history.operation, "optional", False)
            ]
            if missing:
                inputs = {**inputs, **{name: None for name in missing}}
        return super().__call__(inputs, *args, **kwargs)
