"""HiP regrouping: grouped arrays (B, G, N, C) -> (B, G', G*N/G', C), and folding groups into the batch."""

import keras
from keras import ops

from keras_perceiver.validation import check_choice, check_positive_int, check_rank

REGROUP_TYPES = ("reshape", "transpose_reshape")


def _dim(x, axis):
    """The static size of `x` on `axis`, or its dynamic size when unknown."""
    size = x.shape[axis]
    return size if size is not None else ops.shape(x)[axis]


def batch_size(x):
    """The size of axis 0: static, dynamic, or -1 for a symbolic tensor of unknown batch.

    Reshapes name the batch explicitly rather than -1, so that arrays with a
    zero-sized axis (an empty batch, a modality with no rows left) reshape on
    every backend.
    """
    size = x.shape[0]
    if size is not None:
        return size
    return -1 if isinstance(x, keras.KerasTensor) else ops.shape(x)[0]


def fold_groups(x):
    """(B, G, N, ...) -> (B*G, N, ...): groups folded into the batch, an example's groups adjacent.

    Row b*G + g of the result is group g of example b, so rank-3 layers
    (`CrossAttentionEncoder`, `LatentProcessor`, `QueryDecoder`) act on every
    group independently.
    """
    batch = batch_size(x)
    rows = -1 if isinstance(batch, int) and batch < 0 else batch * _dim(x, 1)
    return ops.reshape(x, (rows,) + tuple(_dim(x, axis) for axis in range(2, len(x.shape))))


def unfold_groups(x, num_groups):
    """(B*G, N, ...) -> (B, G, N, ...), the inverse of `fold_groups`."""
    rows = batch_size(x)
    batch = -1 if isinstance(rows, int) and rows < 0 else rows // num_groups
    return ops.reshape(x, (batch, num_groups) + tuple(_dim(x, axis) for axis in range(1, len(x.shape))))


def check_regroup(num_input_groups, index_dim, num_groups, name="regroup"):
    """Raise unless G * N splits evenly into `num_groups` groups (static sizes; None is not checked)."""
    if num_input_groups is None or index_dim is None:
        return
    if (num_input_groups * index_dim) % num_groups:
        raise ValueError(
            f"{name}: G x N = {num_input_groups} x {index_dim} = {num_input_groups * index_dim} elements "
            f"cannot be split into {num_groups} equal groups. Expected G x N divisible by num_groups. "
            f"Received: G={num_input_groups}, N={index_dim}, num_groups={num_groups}"
        )


def regroup(x, num_groups, regroup_type="reshape"):
    """Regroup x (B, G, N, C) into (B, G', G*N/G', C) (official `perceiver_blocks.regroup`).

    Args:
        x: (B, G, N, C) tensor (or (B, G, N) for a mask).
        num_groups: int, G'.
        regroup_type: `"reshape"` (row-major: consecutive groups merge or
            split) or `"transpose_reshape"` (N and G swapped first, so every
            new group mixes all old groups).

    Returns:
        (B, G', G*N/G', C) tensor.

    Raises:
        ValueError: for an unknown `regroup_type` or G*N not divisible by G'.
    """
    check_choice("regroup_type", regroup_type, REGROUP_TYPES)
    check_regroup(x.shape[1], x.shape[2], num_groups)
    trailing = tuple(_dim(x, axis) for axis in range(3, len(x.shape)))
    size = _dim(x, 1) * _dim(x, 2)
    if regroup_type == "transpose_reshape":
        x = ops.swapaxes(x, 1, 2)
    return ops.reshape(x, (batch_size(x), num_groups, size // num_groups) + trailing)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class Regroup(keras.layers.Layer):
    """Regroup a grouped array (B, G, N, C) into (B, G', G*N/G', C).

    `"reshape"` (the official default) is a row-major reshape: going from
    16 to 4 groups merges groups 0-3 into the new group 0, going from 4 to 16
    splits each group into 4 consecutive ones. `"transpose_reshape"` swaps
    the G and N axes first, so that each new group takes elements of all old
    groups. Elements in different groups never interact in HiP except
    through a regroup.

    Source: HiP (arXiv 2202.10890) section 3; official `perceiver_blocks.py`
    `regroup`.

    Args:
        num_groups: int, G', the number of output groups.
        regroup_type: `"reshape"` (default) or `"transpose_reshape"`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: (B, G, N, C) tensor (or (B, G, N), e.g. a mask).

    Returns:
        (B, G', G*N/G', C) tensor.

    Raises:
        ValueError: for an unknown `regroup_type`, inputs of rank other than
            3 or 4, or G*N not divisible by G'.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import Regroup
    >>> tuple(Regroup(num_groups=2)(keras.ops.ones((3, 8, 5, 4))).shape)
    (3, 2, 20, 4)
    """

    def __init__(self, num_groups, regroup_type="reshape", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_groups", num_groups)
        check_choice("regroup_type", regroup_type, REGROUP_TYPES)
        self.num_groups = num_groups
        self.regroup_type = regroup_type

    def call(self, inputs):
        check_rank("inputs", inputs, (3, 4), self.__class__.__name__)
        check_regroup(inputs.shape[1], inputs.shape[2], self.num_groups, self.__class__.__name__)
        return regroup(inputs, self.num_groups, self.regroup_type)

    def compute_output_shape(self, inputs_shape):
        groups, index = inputs_shape[1], inputs_shape[2]
        check_regroup(groups, index, self.num_groups, self.__class__.__name__)
        new_index = None if groups is None or index is None else groups * index // self.num_groups
        return (inputs_shape[0], self.num_groups, new_index) + tuple(inputs_shape[3:])

    def get_config(self):
        config = super().get_config()
        config.update({"num_groups": self.num_groups, "regroup_type": self.regroup_type})
        return config
