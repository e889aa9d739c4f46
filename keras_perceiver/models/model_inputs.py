"""Input handling shared by the task models: optional inputs may be left out, integer inputs stay integer."""

import numpy as np


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
    """

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
