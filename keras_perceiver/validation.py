"""Argument and input checks shared by the layers and models.

Every check raises a `ValueError` (or `TypeError` for dtypes) whose message
names the argument, the expected value and the received value, so that bad
input never surfaces as a backend-internal error, a NaN or a silent wrong answer.
Checks run on static shapes: they fire when a Functional graph is built and on
every eager call; dimensions that are unknown (`None`) are not checked.
"""

import numbers

import keras


def check_positive_int(name, value, allow_none=False):
    """Raise unless `value` is a positive int (or None when `allow_none`)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")


def check_shape(name, value, length=None, allow_none=False):
    """Raise unless `value` is a sequence (tuple, list, `TensorShape`) of positive ints (`length` of them
    when given; None entries for free dimensions when `allow_none`); return it as a tuple of Python ints."""

    def positive(d):
        return (d is None and allow_none) or (
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0
        )

    items = None if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") else tuple(value)
    if items is None or (length is not None and len(items) != length) or not all(map(positive, items)):
        size = f"{length} " if length else ""
        raise ValueError(f"`{name}` must be a tuple of {size}positive integers. Received: {name}={value!r}")
    return tuple(None if d is None else int(d) for d in items)


def check_divisible(name, value, num_heads_name, num_heads):
    """Raise unless the channel total `value` splits evenly over the heads."""
    if value is not None and value % num_heads != 0:
        raise ValueError(
            f"`{name}` must be divisible by `{num_heads_name}`. "
            f"Received: {name}={value}, {num_heads_name}={num_heads}"
        )


def check_choice(name, value, choices):
    """Raise unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}")


def static_shape(x):
    """The static shape of a tensor as a tuple of ints/None."""
    return tuple(x.shape)


def check_rank(name, x, rank, layer_name):
    """Raise unless tensor `x` has rank `rank` (int or tuple of allowed ranks)."""
    ranks = (rank,) if isinstance(rank, int) else tuple(rank)
    shape = static_shape(x)
    if len(shape) not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ValueError(
            f"{layer_name}: `{name}` must have rank {expected}. "
            f"Received: {name}.shape={shape} (rank {len(shape)})"
        )


def check_channels(name, x, expected, layer_name):
    """Raise unless the last dimension of `x` equals `expected` (when both are known)."""
    shape = static_shape(x)
    if expected is not None and shape[-1] is not None and shape[-1] != expected:
        raise ValueError(
            f"{layer_name}: `{name}` has {shape[-1]} channels but the layer was built for "
            f"{expected}. Received: {name}.shape={shape}"
        )


def check_nonempty_index(name, x, layer_name):
    """Raise if the index dimension (axis 1) of `x` is statically 0."""
    shape = static_shape(x)
    if len(shape) > 1 and shape[1] == 0:
        raise ValueError(
            f"{layer_name}: `{name}` has an empty index dimension. "
            f"Expected at least one element along axis 1. Received: {name}.shape={shape}"
        )


def dtype_name(x):
    """The dtype of a tensor or array as a name ("float32", "bool", "string", NumPy's "str96", ...)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        import numpy as np

        return np.asarray(x).dtype.name
    try:
        return keras.backend.standardize_dtype(dtype)
    except ValueError:
        return getattr(dtype, "name", str(dtype))


def check_numeric_dtype(name, x, layer_name, floating=False):
    """Raise a TypeError unless `x` holds numbers (floats when `floating`: a residual operand)."""
    dtype = dtype_name(x)
    numeric = dtype.startswith(("float", "bfloat", "int", "uint")) or dtype == "bool"
    if not numeric or (floating and "float" not in dtype):
        expected = "a float tensor" if floating else "a numeric tensor"
        raise TypeError(f"{layer_name}: `{name}` must be {expected}. Received: {name}.dtype={dtype}")


def check_same_batch(name, x, other_name, other, layer_name):
    """Raise unless `x` and `other` have the same (known) batch size, axis 0."""
    a, b = static_shape(x)[:1], static_shape(other)[:1]
    if a and b and None not in (a[0], b[0]) and a[0] != b[0]:
        raise ValueError(
            f"{layer_name}: `{name}` and `{other_name}` must have the same batch size (axis 0). "
            f"Received: {name}.shape={static_shape(x)}, {other_name}.shape={static_shape(other)}"
        )


def check_mask(name, mask, x, x_name, layer_name, axes="B, M"):
    """Raise unless `mask` has the leading axes `axes` of `x` (e.g. (B, M) of (B, M, C); (B, G, M) of a
    grouped (B, G, M, C)), equal on the known dims, of bool or numeric dtype."""
    if mask is None:
        return
    check_numeric_dtype(name, mask, layer_name)
    mask_shape = static_shape(mask)
    x_shape = static_shape(x)
    rank = len(axes.split(","))
    if len(mask_shape) != rank:
        raise ValueError(
            f"{layer_name}: `{name}` must have rank {rank} ({axes}). Received: {name}.shape={mask_shape}"
        )
    for axis in range(rank):
        a, b = mask_shape[axis], x_shape[axis]
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"{layer_name}: `{name}` shape {mask_shape} does not match `{x_name}` shape "
                f"{x_shape} on axis {axis}: expected {b}, received {a}"
            )


def check_modality_values(name, inputs, layer_name, ranks=3, index_dims=None, channels=None, aligned=False):
    """Raise unless every value of the modality dict `inputs` ({m: (B, M_m, C_m)}) is a tensor that fits.

    Checked for each modality m: not None, a numeric dtype, rank `ranks`
    (int or tuple), M_m equal to `index_dims[m]` and C_m to `channels[m]`
    where given. With `aligned`, every modality must also share the first
    one's batch size, rank and (for rank 3) channel count, as when they are
    concatenated into one array.

    Raises:
        ValueError: naming `name[m]` and its received shape (or None).
        TypeError: for a non-numeric dtype.
    """
    first = None
    for modality, x in inputs.items():
        label = f"{name}[{modality!r}]"
        if x is None:
            raise ValueError(f"{layer_name}: `{label}` must be a tensor. Received: {label}=None")
        check_numeric_dtype(label, x, layer_name)
        check_rank(label, x, ranks, layer_name)
        shape = static_shape(x)
        size = (index_dims or {}).get(modality)
        if size is not None and shape[1] is not None and shape[1] != size:
            raise ValueError(
                f"{layer_name}: `{label}` must have M={size} elements on axis 1 (index_dims). "
                f"Received: {label}.shape={shape}"
            )
        check_channels(label, x, (channels or {}).get(modality), layer_name)
        if not aligned:
            continue
        if first is None:
            first = (label, x)
            continue
        check_same_batch(label, x, first[0], first[1], layer_name)
        other = static_shape(first[1])
        if len(shape) != len(other) or (
            len(shape) == 3 and None not in (shape[-1], other[-1]) and shape[-1] != other[-1]
        ):
            raise ValueError(
                f"{layer_name}: every modality must have the same rank and channel count. "
                f"Received: {label}.shape={shape}, {first[0]}.shape={other}"
            )


def check_integer_dtype(name, x, layer_name):
    """Raise a TypeError unless `x` has an integer dtype (token ids, indices)."""
    dtype = keras.backend.standardize_dtype(x.dtype)
    if "int" not in dtype:
        raise TypeError(
            f"{layer_name}: `{name}` must be an integer tensor (e.g. int32). Received: dtype={dtype}"
        )


def pop_renamed_argument(kwargs, old_name, new_name, value, default):
    """The value of the argument `new_name`, taking `old_name` (its name before a rename) from `kwargs`.

    Old configs and calls keep working: `kwargs[old_name]` is used when the
    new argument still has its default. Both given differently raise.

    Raises:
        TypeError: if `old_name` and `new_name` are both given, differently.
    """
    if old_name not in kwargs:
        return value
    old_value = kwargs.pop(old_name)
    if value != default and value != old_value:
        raise TypeError(
            f"`{old_name}` is the old name of `{new_name}`: give one of them. "
            f"Received: {old_name}={old_value!r}, {new_name}={value!r}"
        )
    return old_value


def check_attention_chunk_size(value):
    """`attention_chunk_size`: None (chunk automatically), 0 (never chunk) or a positive int.

    Raises:
        ValueError: for other values, naming the received one.
    """
    if value != 0:
        check_positive_int("attention_chunk_size", value, allow_none=True)
