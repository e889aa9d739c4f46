"""Input handling shared by the task models: checks before computing, optional inputs, empty batches.

Every check compares what a call receives with the model's `keras.Input`s and
raises a `ValueError` (`TypeError` for dtypes) that names the input, the
expected value and the received one, before any backend op runs: bad input
never surfaces as a framework-internal error, a NaN or a silent wrong answer.
"""

import keras
import numpy as np

from keras_perceiver.validation import dtype_name


def _is_empty_batch(x):
    """True for arrays (or a dict/list of arrays) whose leading (batch) dimension is 0 in every entry."""
    leaves = list(x.values()) if isinstance(x, dict) else list(x) if isinstance(x, (list, tuple)) else [x]
    shapes = [getattr(leaf, "shape", None) for leaf in leaves if leaf is not None]
    return bool(shapes) and all(shape is not None and len(shape) > 0 and shape[0] == 0 for shape in shapes)


def _is_concrete(value):
    """True for values whose contents Python can read: NumPy arrays, Python sequences, eager tensors."""
    if isinstance(value, (np.ndarray, np.generic, list, tuple, int, float, bool)):
        return True
    return hasattr(value, "numpy") and not keras.backend.is_keras_tensor(value) and _eager_numpy(value)


def _eager_numpy(value):
    try:
        value.numpy()
    except (AttributeError, NotImplementedError, TypeError, ValueError, RuntimeError):
        return False  # a symbolic (graph) tensor, or a torch tensor that requires grad
    return True


def _as_array(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _known_shape(value):
    """The shape of `value` as a tuple, or None when its rank is unknown (a relaxed trace)."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return np.shape(value)
    if getattr(shape, "rank", 0) is None:
        return None
    return tuple(shape)


def _spec_text(spec):
    return (
        "(" + ", ".join("B" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(spec)) + ")"
    )


def check_model_inputs(model, inputs):
    """Raise unless the dict `inputs` fits `model`'s named `keras.Input`s.

    Checked, where known: the keys (no unknown input, every required one),
    each input's kind of dtype (numbers; bool or 0/1 integers for masks;
    integers for token ids and indices), rank, static dimensions (but the
    axes of `model.free_input_axes`, a dict input name -> axes, e.g. the
    image height and width of an image classifier), a common
    batch size, and, for NumPy and eager values, mask values in {0, 1}, token
    ids in `model.input_value_ranges()` and finite floats when
    `model.check_numerics` is True.

    Args:
        model: a Functional `keras.Model` with named inputs.
        inputs: dict of input name -> array/tensor (None for an absent
            optional input).

    Raises:
        ValueError: for unknown or missing inputs, a wrong rank or static
            dimension, batch sizes that disagree, mask values other than 0/1,
            token ids out of range, or non-finite values with `check_numerics`.
        TypeError: for a string/object dtype, a float mask, or a float array
            for an integer input.
    """
    name = model.__class__.__name__
    specs = {t.name: t for t in model.inputs}
    unknown = sorted(k for k in inputs if k not in specs)
    if unknown:
        raise ValueError(
            f"{name}: unknown inputs {unknown}. Expected keys from {sorted(specs)}. "
            f"Received: keys={sorted(inputs)}"
        )
    missing = sorted(
        k
        for k, t in specs.items()
        if inputs.get(k) is None and not getattr(t._keras_history.operation, "optional", False)
    )
    if missing:
        raise ValueError(
            f"{name}: missing inputs {missing}. Expected keys {sorted(specs)}. "
            f"Received: keys={sorted(inputs)}"
        )
    batch_sizes = {}
    for key, value in inputs.items():
        if value is None:
            continue
        spec = tuple(specs[key].shape)
        free_axes = getattr(model, "free_input_axes", {}).get(key, ())
        spec = tuple(None if axis in free_axes else size for axis, size in enumerate(spec))
        expected_dtype = keras.backend.standardize_dtype(specs[key].dtype)
        _check_dtype(name, key, value, expected_dtype)
        shape = _known_shape(value)
        if shape is None:
            continue
        if len(shape) != len(spec):
            raise ValueError(
                f"{name}: input `{key}` must have rank {len(spec)}, shape {_spec_text(spec)}. "
                f"Received: {key}.shape={shape} (rank {len(shape)})"
            )
        for axis, (expected, received) in enumerate(zip(spec, shape)):
            if axis and expected is not None and received is not None and expected != received:
                raise ValueError(
                    f"{name}: input `{key}` must have shape {_spec_text(spec)}: axis {axis} should be "
                    f"{expected}. Received: {key}.shape={shape}"
                )
        if shape and shape[0] is not None:
            batch_sizes[key] = shape[0]
        if _is_concrete(value):
            _check_values(model, key, value, expected_dtype)
    _check_mask_lengths(name, specs, inputs)
    if len(set(batch_sizes.values())) > 1:
        raise ValueError(
            f"{name}: every input must have the same batch size (axis 0). "
            f"Received: {', '.join(f'{k}.shape[0]={b}' for k, b in batch_sizes.items())}"
        )


def _check_mask_lengths(name, specs, inputs):
    """A `padding_mask` (B, M) must match its input (B, M, ...) on a free M (`<m>_padding_mask`: `<m>`)."""
    data = [k for k in specs if not k.endswith("mask")]
    for key, mask in inputs.items():
        if mask is None or not key.endswith("padding_mask"):
            continue
        partner = key[: -len("_padding_mask")] if key != "padding_mask" else (data[0] if data else None)
        if partner not in specs or len(specs[partner].shape) < 2:
            continue
        if specs[key].shape[1] is not None or specs[partner].shape[1] is not None:
            continue  # static sizes are checked on their own (an image's mask is over its flattened pixels)
        value = inputs.get(partner)
        mask_shape, shape = _known_shape(mask), _known_shape(value) if value is not None else None
        if not mask_shape or not shape or len(mask_shape) < 2 or len(shape) < 2:
            continue
        if None not in (mask_shape[1], shape[1]) and mask_shape[1] != shape[1]:
            raise ValueError(
                f"{name}: `{key}` must have one entry per element of `{partner}` (axis 1). Expected "
                f"{key}.shape[1]={shape[1]}. Received: {key}.shape={mask_shape}, {partner}.shape={shape}"
            )


def _check_dtype(name, key, value, expected_dtype):
    dtype = dtype_name(value)
    kind = (
        np.dtype(dtype).kind if dtype in np.sctypeDict or dtype.startswith(("float", "int", "uint")) else "?"
    )
    if dtype in ("string", "object") or kind in ("U", "S", "O", "?") and dtype != "bfloat16":
        raise TypeError(
            f"{name}: input `{key}` must be a numeric tensor ({expected_dtype}). Received: dtype={dtype}"
        )
    concrete = isinstance(value, (np.ndarray, np.generic, list, tuple))
    # Symbolic tensors are not checked here: Keras' symbolic builds under `tf.distribute` pass
    # float stand-ins for integer and bool inputs.
    if concrete and kind == "f" and ("int" in expected_dtype or expected_dtype == "bool"):
        what = "a bool or 0/1 integer mask" if expected_dtype == "bool" else "an integer tensor"
        raise TypeError(
            f"{name}: input `{key}` must be {what} ({expected_dtype}); floats would be cast "
            f"silently. Received: dtype={dtype}"
        )


def _check_values(model, key, value, expected_dtype):
    name = model.__class__.__name__
    array = _as_array(value)
    if expected_dtype == "bool" and array.dtype != bool and array.size:
        bad = array[(array != 0) & (array != 1)]
        if bad.size:
            raise ValueError(
                f"{name}: mask `{key}` must hold 0/1 (or bool) values. Received: {bad.flat[0].item()!r} "
                f"({bad.size} of {array.size} values outside {{0, 1}})"
            )
    low_high = model.input_value_ranges().get(key) if hasattr(model, "input_value_ranges") else None
    if (
        low_high
        and array.dtype.kind in "iu"
        and array.size
        and (array.min() < low_high[0] or array.max() >= low_high[1])
    ):
        raise ValueError(
            f"{name}: input `{key}`: token ids must lie in [{low_high[0]}, {low_high[1]}). "
            f"Received: min={array.min()}, max={array.max()}"
        )
    if getattr(model, "check_numerics", False) and array.dtype.kind == "f" and array.size:
        finite = np.isfinite(array)
        if not finite.all():
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise ValueError(
                f"{name}: input `{key}` holds non-finite values (check_numerics=True). Expected finite "
                f"floats. Received: {int((~finite).sum())} NaN/inf of {array.size}, the first "
                f"{array[first].item()!r} at index {first}"
            )


def _dict_of_arrays(x):
    return isinstance(x, dict) and all(
        v is None or isinstance(v, (np.ndarray, np.generic, list, tuple)) for v in x.values()
    )


class ModelInputsMixin:
    """Input checks of a Functional task model taking a dict of named inputs.

    - `check_model_inputs` runs on every call and, for dicts of NumPy arrays,
      before `predict`, `evaluate` and `fit` (where Keras' own step would
      fail inside a trace): wrong keys, ranks, dimensions, dtypes and batch
      sizes raise errors that name the received value.
    - `check_numerics` (attribute, default False): set it to True to refuse
      NaN/inf in NumPy and eager inputs with a `ValueError` (inside
      `tf.function` traces on TensorFlow, `tf.debugging.assert_all_finite`
      raises with the input's name).
    - Optional inputs (`keras.Input(..., optional=True)`) left out of the
      dict are filled with None: Keras' Functional models accept None for an
      optional input but still require its key, so `model({"inputs": x})`
      and datasets without a `padding_mask` work too.
    - A model with one required input takes a lone array or tensor too
      (`model(x)`, `predict(x)`, `fit(x, y)`), checked like the dict
      (`named_inputs`).
    - `predict` on an empty batch (every input of batch size 0) returns the
      model's empty outputs, where Keras' `predict` loop would end in an
      `UnboundLocalError` (it has no batch to concatenate); `evaluate` and
      `fit` on an empty batch raise a `ValueError` (no metric to report).
    """

    check_numerics = False

    def input_value_ranges(self):
        """{input name: (low, high)}: integer inputs whose values must lie in [low, high) (token ids)."""
        backbone = getattr(self, "backbone", self)
        name = getattr(backbone, "input_name", None)
        for preprocessor in getattr(backbone, "input_preprocessors", None) or []:
            if name and hasattr(preprocessor, "vocab_size") and hasattr(preprocessor, "max_sequence_length"):
                return {name: (0, preprocessor.vocab_size)}
        return {}

    def _optional_input_names(self):
        return [t.name for t in self.inputs if getattr(t._keras_history.operation, "optional", False)]

    def named_inputs(self, inputs):
        """`inputs` as the dict of named inputs: a lone array or tensor goes to the one required input.

        A model with a single required input (e.g. `images`, or `inputs`
        with an optional `padding_mask`) can be called as `model(x)`; the
        same checks then apply as to `model({"images": x})`. Anything else is
        returned unchanged.
        """
        if isinstance(inputs, (dict, list, tuple)) or not hasattr(inputs, "shape"):
            return inputs
        optional = self._optional_input_names()
        required = [t.name for t in self.inputs if t.name not in optional]
        return {required[0]: inputs} if len(required) == 1 else inputs

    def _check_array_inputs(self, x, method=None):
        if isinstance(x, np.ndarray):
            x = self.named_inputs(x)
        if _dict_of_arrays(x):
            check_model_inputs(self, x)
            if method and _is_empty_batch(x):
                shapes = {key: tuple(np.shape(value)) for key, value in x.items() if value is not None}
                raise ValueError(
                    f"{self.__class__.__name__}.{method}: the inputs hold no examples. Expected a batch size "
                    f"of at least 1. Received: {shapes}"
                )
        return x

    def predict(self, x, *args, **kwargs):
        x = self._check_array_inputs(x)
        if _is_empty_batch(x):
            outputs = self(x, training=False)
            return keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)
        return super().predict(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        x = self._check_array_inputs(x, "evaluate")
        return super().evaluate(x, *args, **kwargs)

    def fit(self, x=None, *args, **kwargs):
        x = self._check_array_inputs(x, "fit")
        return super().fit(x, *args, **kwargs)

    def __call__(self, inputs, *args, **kwargs):
        inputs = self.named_inputs(inputs)
        if isinstance(inputs, dict):
            check_model_inputs(self, inputs)
            missing = [name for name in self._optional_input_names() if name not in inputs]
            if missing:
                inputs = {**inputs, **{name: None for name in missing}}
            if self.check_numerics and keras.backend.backend() == "tensorflow":
                inputs = _assert_finite_in_graph(inputs)
        return super().__call__(inputs, *args, **kwargs)


def _assert_finite_in_graph(inputs):
    """Symbolic float inputs wrapped in `tf.debugging.assert_all_finite` (TensorFlow backend only).

    The one TensorFlow import of the modelling code, lazy and behind the
    backend check: `keras.ops` has no in-graph assertion, and a traced
    `fit`/`predict` step cannot run the eager check of `check_numerics`.
    """
    import tensorflow as tf

    def check(key, value):
        if value is None or _is_concrete(value) or not getattr(value, "dtype", tf.int32).is_floating:
            return value
        return tf.debugging.assert_all_finite(
            value, f"input `{key}` holds NaN/inf (check_numerics=True); expected finite floats"
        )

    return {key: check(key, value) for key, value in inputs.items()}
