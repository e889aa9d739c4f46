"""HiP's modality grouping: a dict of modalities {m: (B, M_m, C)} <-> one grouped array (B, G, N, C)."""

import math

import keras
import numpy as np
from keras import ops

from keras_perceiver.layers.regroup import batch_size
from keras_perceiver.validation import (
    check_mask,
    check_modality_values,
    check_numeric_dtype,
    check_positive_int,
    check_rank,
    check_same_batch,
)


def padding_to_make_divisible(index_dim, num_groups):
    """How many elements to append so that `index_dim` splits into `num_groups` equal groups."""
    return num_groups * math.ceil(index_dim / num_groups) - index_dim


def assign_groups_to_modalities(num_groups, index_dims):
    """Split `num_groups` groups among modalities of `index_dims` elements (official algorithm).

    Every modality starts with one group; each remaining group goes, greedily,
    to the modality with the most elements per group so far (the first one on
    ties), which minimizes the largest group.

    Args:
        num_groups: int, G.
        index_dims: sequence of ints, M_m per modality, in group order.

    Returns:
        (list of groups per modality, N = ceil(the largest elements per group)).

    Raises:
        ValueError: if there are more modalities than groups (a group never
            mixes modalities).

    Example:
    >>> from keras_perceiver.layers.modality_grouper import assign_groups_to_modalities
    >>> assign_groups_to_modalities(16, [1024, 32])
    ([15, 1], 69)
    """
    index_dims = [int(m) for m in index_dims]
    if len(index_dims) > num_groups:
        raise ValueError(
            f"There are more modalities than groups: a group never mixes modalities. Expected at most "
            f"num_groups={num_groups} modalities. Received: {len(index_dims)} modalities"
        )
    groups = [1] * len(index_dims)
    per_group = [float(m) for m in index_dims]
    for _ in range(num_groups - len(index_dims)):
        modality = int(np.argmax(per_group))
        groups[modality] += 1
        per_group[modality] = index_dims[modality] / groups[modality]
    return groups, math.ceil(max(per_group))


def group_layout(num_groups, index_dims):
    """The official `ConstNumGrouper` map of modalities {name: M_m} into `num_groups` groups.

    Returns:
        (rows, N): `rows` a list of dicts `name`, `first_group`,
        `num_groups`, `final_padding` (zeros appended to the modality to fill
        its groups evenly) and `group_padding` (zeros appended to each of its
        groups to reach N), in the order of `index_dims`.
    """
    groups, index_dim = assign_groups_to_modalities(num_groups, list(index_dims.values()))
    rows, first = [], 0
    for (name, size), count in zip(index_dims.items(), groups):
        final_padding = padding_to_make_divisible(size, count)
        rows.append(
            {
                "name": name,
                "first_group": first,
                "num_groups": count,
                "final_padding": final_padding,
                "group_padding": index_dim - (size + final_padding) // count,
            }
        )
        first += count
    return rows, index_dim


def _python_stop(length, stop):
    """`len(x[:stop])` for a Python slice of a length-`length` axis (a negative stop counts from the end)."""
    return max(0, length + stop) if stop < 0 else min(stop, length)


def check_index_dims(index_dims, layer_name):
    """Raise unless `index_dims` is a non-empty dict of modality name -> positive int."""
    if not isinstance(index_dims, dict) or not index_dims:
        raise ValueError(
            f"{layer_name}: `index_dims` must be a non-empty dict of modality name -> M. "
            f"Received: index_dims={index_dims!r}"
        )
    for name, size in index_dims.items():
        check_positive_int(f"index_dims[{name!r}]", size)


def _check_modalities(name, inputs, index_dims, layer_name):
    if not isinstance(inputs, dict):
        raise ValueError(
            f"{layer_name}: `{name}` must be a dict of modality name -> tensor. "
            f"Received: {type(inputs).__name__}"
        )
    missing = [m for m in index_dims if m not in inputs]
    unexpected = [m for m in inputs if m not in index_dims]
    if missing or unexpected:
        raise ValueError(
            f"{layer_name}: `{name}` must hold exactly the modalities {list(index_dims)}. "
            f"Received: {list(inputs)} (missing {missing}, unexpected {unexpected})"
        )


def check_padding_mask_dict(layer_name, padding_mask, index_dims, inputs):
    """Raise unless `padding_mask` is a dict whose keys are modalities of `index_dims` and whose masks
    (B, M_m) fit `inputs[m]` in dtype and shape (`check_mask`; None entries pass)."""
    if not isinstance(padding_mask, dict):
        raise ValueError(
            f"{layer_name}: `padding_mask` must be a dict of modality name -> (B, M_m) bool tensor or "
            f"None. Received: {type(padding_mask).__name__}"
        )
    unexpected = [m for m in padding_mask if m not in index_dims]
    if unexpected:
        raise ValueError(
            f"{layer_name}: `padding_mask` names modalities {unexpected} that are not in index_dims "
            f"{list(index_dims)}."
        )
    for modality, mask in padding_mask.items():
        check_mask(f"padding_mask[{modality!r}]", mask, inputs[modality], f"inputs[{modality!r}]", layer_name)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ModalityGrouper(keras.layers.Layer):
    """Group a dict of modalities {m: (B, M_m, C)} into one array (B, G, N, C).

    Each modality gets whole groups (a group never mixes modalities), by the
    official `assign_groups_to_modalities`; the modalities follow the order
    of `index_dims` (the dict order of the model's inputs). A modality's
    elements are zero-padded at the end to a multiple of its groups
    (`final_padding`) and split into consecutive groups, and each group is
    zero-padded at the end to the common size N (`group_padding`).

    Like the official code, the padded elements are plain zeros and not
    masked: without `padding_mask` the result equals the official
    `ConstNumGrouper.group`. With `padding_mask` (a dict of (B, M_m) bool,
    True = real; a missing or None entry: every element real) the layer also
    returns the grouped mask (B, G, N), False at padded elements and at the
    grouping's own zero padding, so that they are neither attended to nor
    counted.

    Source: HiP (arXiv 2202.10890) section 3; official `perceiver_blocks.py`
    `ConstNumGrouper`, `perceiver_helpers.py` `assign_groups_to_modalities`.

    Args:
        num_groups: int, G.
        index_dims: dict of modality name -> M_m, in group order.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: dict of modality name -> (B, M_m, C) tensor (the same C for
            every modality), or (B, M_m) tensors (e.g. masks; bool padding
            is False).
        padding_mask: optional dict of modality name -> (B, M_m) bool tensor
            or None.

    Returns:
        (B, G, N, C) tensor; with `padding_mask`, a tuple of it and the
        (B, G, N) bool mask (None when every entry of `padding_mask` is None).

    Raises:
        ValueError: for more modalities than groups, missing or unexpected
            modalities, or inputs/masks whose index size differs from
            `index_dims`.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import ModalityGrouper
    >>> grouper = ModalityGrouper(num_groups=4, index_dims={"image": 10, "label": 2})
    >>> x = {"image": keras.ops.ones((2, 10, 8)), "label": keras.ops.ones((2, 2, 8))}
    >>> tuple(grouper(x).shape)  # the image gets 3 groups of 4 (2 zeros appended), the label 1
    (2, 4, 4, 8)
    """

    def __init__(self, num_groups, index_dims, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_groups", num_groups)
        check_index_dims(index_dims, self.__class__.__name__)
        self.num_groups = num_groups
        self.index_dims = {str(name): int(size) for name, size in index_dims.items()}
        self.layout, self.index_dim = group_layout(num_groups, self.index_dims)
        self.supports_masking = False

    def _group(self, x, row):
        padded_value = False if keras.backend.standardize_dtype(x.dtype) == "bool" else 0
        as_bool = padded_value is False
        if as_bool:
            x = ops.cast(x, "int32")
        rank = len(x.shape)
        size = self.index_dims[row["name"]] + row["final_padding"]
        trailing = tuple(x.shape[2:])
        x = ops.pad(x, [(0, 0), (0, row["final_padding"])] + [(0, 0)] * (rank - 2))
        x = ops.reshape(x, (batch_size(x), row["num_groups"], size // row["num_groups"]) + trailing)
        x = ops.pad(x, [(0, 0), (0, 0), (0, row["group_padding"])] + [(0, 0)] * (rank - 2))
        return ops.cast(x, "bool") if as_bool else x

    def _check(self, name, inputs, ranks):
        layer_name = self.__class__.__name__
        _check_modalities(name, inputs, self.index_dims, layer_name)
        check_modality_values(name, inputs, layer_name, ranks, index_dims=self.index_dims, aligned=True)

    def call(self, inputs, padding_mask=None):
        self._check("inputs", inputs, (2, 3))
        grouped = ops.concatenate([self._group(inputs[row["name"]], row) for row in self.layout], axis=1)
        if padding_mask is None:
            return grouped
        name = self.__class__.__name__
        check_padding_mask_dict(name, padding_mask, self.index_dims, inputs)
        masks = {m: padding_mask.get(m) for m in self.index_dims}
        if all(mask is None for mask in masks.values()):
            return grouped, None
        filled = {}
        for modality, mask in masks.items():
            if mask is None:
                reference = inputs[modality]
                reference = reference if len(reference.shape) == 2 else reference[..., 0]
                mask = ops.ones_like(reference, dtype="bool")
            filled[modality] = ops.cast(mask, "bool")
        self._check("padding_mask", filled, 2)
        grouped_mask = ops.concatenate([self._group(filled[row["name"]], row) for row in self.layout], axis=1)
        return grouped, grouped_mask

    def compute_output_spec(self, inputs, padding_mask=None):
        first = next(iter(inputs.values()))
        shape = (first.shape[0], self.num_groups, self.index_dim) + tuple(first.shape[2:])
        grouped = keras.KerasTensor(shape, dtype=first.dtype)
        if padding_mask is None:
            return grouped
        if all(padding_mask.get(m) is None for m in self.index_dims):
            return grouped, None
        return grouped, keras.KerasTensor(shape[:3], dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update({"num_groups": self.num_groups, "index_dims": dict(self.index_dims)})
        return config


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ModalityUngrouper(keras.layers.Layer):
    """Split a grouped array (B, G, N', C) back into modalities {m: (B, M'_m, C)}.

    The inverse bookkeeping of `ModalityGrouper` with the same `num_groups`
    and `index_dims` (official `ConstNumGrouper.ungroup`): take each
    modality's groups, drop `group_padding` rows from the end of every group,
    flatten the groups, drop `final_padding` rows from the end. On the
    reconstruction (N' = N) this returns M'_m = M_m, aligned with the inputs.
    On other arrays (e.g. the final latents, N' latents per group) the same
    slices are applied with Python's semantics (a negative end counts from
    the end), as the official code does: the rows are then not aligned with
    the inputs.

    Source: HiP (arXiv 2202.10890); official `perceiver_blocks.py`
    `ConstNumGrouper.ungroup`.

    Args:
        num_groups: int, G.
        index_dims: dict of modality name -> M_m, in group order (as the
            grouper's).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: (B, G, N', C) tensor with a static N'.

    Returns:
        dict of modality name -> (B, M'_m, C), in the order of `index_dims`.

    Raises:
        ValueError: for more modalities than groups, inputs that are not rank
            4, a G other than `num_groups`, or an unknown N'.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import ModalityUngrouper
    >>> ungrouper = ModalityUngrouper(num_groups=4, index_dims={"image": 10, "label": 2})
    >>> {m: tuple(x.shape) for m, x in ungrouper(keras.ops.ones((2, 4, 4, 8))).items()}
    {'image': (2, 10, 8), 'label': (2, 2, 8)}
    """

    def __init__(self, num_groups, index_dims, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_groups", num_groups)
        check_index_dims(index_dims, self.__class__.__name__)
        self.num_groups = num_groups
        self.index_dims = {str(name): int(size) for name, size in index_dims.items()}
        self.layout, self.index_dim = group_layout(num_groups, self.index_dims)

    def _sizes(self, index_dim, row):
        per_group = _python_stop(index_dim, index_dim - row["group_padding"])
        total = row["num_groups"] * per_group
        return per_group, _python_stop(total, total - row["final_padding"])

    def call(self, inputs):
        name = self.__class__.__name__
        check_rank("inputs", inputs, 4, name)
        groups, index_dim = inputs.shape[1], inputs.shape[2]
        if groups is not None and groups != self.num_groups:
            raise ValueError(
                f"{name}: `inputs` must have num_groups={self.num_groups} groups. "
                f"Received: inputs.shape={tuple(inputs.shape)}"
            )
        if index_dim is None:
            raise ValueError(
                f"{name}: `inputs` needs a static index size N'. Received: inputs.shape={tuple(inputs.shape)}"
            )
        outputs = {}
        for row in self.layout:
            per_group, length = self._sizes(index_dim, row)
            first = row["first_group"]
            x = inputs[:, first : first + row["num_groups"], :per_group]
            x = ops.reshape(x, (batch_size(inputs), row["num_groups"] * per_group, inputs.shape[-1]))
            outputs[row["name"]] = x[:, :length]
        return outputs

    def compute_output_shape(self, inputs_shape):
        return {
            row["name"]: (inputs_shape[0], self._sizes(inputs_shape[2], row)[1], inputs_shape[-1])
            for row in self.layout
        }

    def get_config(self):
        config = super().get_config()
        config.update({"num_groups": self.num_groups, "index_dims": dict(self.index_dims)})
        return config


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ModalityConcatenation(keras.layers.Layer):
    """Append modalities {m: (B, M_m, C)} to one-group latents (B, 1, N, C): (B, 1, N + sum M_m, C).

    How `HiPClassBottleneck` feeds its label modalities to the processor:
    each one is grouped into a single group of its own (the official
    `ConstNumGrouper(num_groups=1)`, which adds no padding) and concatenated
    on the index axis after the regrouped latents, in the order of
    `index_dims`.

    With `padding_mask` (a dict of (B, M_m) bool, True = real; a missing or
    None entry: every element real) the layer also returns the mask of the
    result (B, 1, N + sum M_m), True on the latents; None when every entry
    is None.

    Source: HiP (arXiv 2202.10890); official `perceiver.py`
    `HiPClassBottleneck.__call__`.

    Args:
        index_dims: dict of modality name -> M_m, in concatenation order.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        latents: (B, 1, N, C) tensor.
        inputs: dict of modality name -> (B, M_m, C) tensor.
        padding_mask: optional dict of modality name -> (B, M_m) bool tensor
            or None.

    Returns:
        (B, 1, N + sum M_m, C) tensor; with `padding_mask`, a tuple of it
        and the (B, 1, N + sum M_m) bool mask (or None).

    Raises:
        ValueError: for latents that are not (B, 1, N, C), missing or
            unexpected modalities, inputs that are not rank 3, or an M or C
            other than expected.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import ModalityConcatenation
    >>> concatenation = ModalityConcatenation(index_dims={"label": 2})
    >>> tuple(concatenation(keras.ops.ones((3, 1, 8, 16)), {"label": keras.ops.ones((3, 2, 16))}).shape)
    (3, 1, 10, 16)
    """

    def __init__(self, index_dims, **kwargs):
        super().__init__(**kwargs)
        check_index_dims(index_dims, self.__class__.__name__)
        self.index_dims = {str(name): int(size) for name, size in index_dims.items()}
        self.supports_masking = False

    def _check(self, latents, inputs, padding_mask):
        name = self.__class__.__name__
        check_numeric_dtype("latents", latents, name)
        check_rank("latents", latents, 4, name)
        if latents.shape[1] is not None and latents.shape[1] != 1:
            raise ValueError(
                f"{name}: `latents` must have 1 group (the processor's). "
                f"Received: latents.shape={tuple(latents.shape)}"
            )
        _check_modalities("inputs", inputs, self.index_dims, name)
        widths = {m: latents.shape[-1] for m in self.index_dims}  # the latents' width C
        check_modality_values("inputs", inputs, name, index_dims=self.index_dims, channels=widths)
        for modality, x in inputs.items():
            check_same_batch(f"inputs[{modality!r}]", x, "latents", latents, name)
        if padding_mask is not None:
            check_padding_mask_dict(name, padding_mask, self.index_dims, inputs)

    def call(self, latents, inputs, padding_mask=None):
        self._check(latents, inputs, padding_mask)
        parts = [latents] + [ops.expand_dims(ops.cast(inputs[m], latents.dtype), 1) for m in self.index_dims]
        concatenated = ops.concatenate(parts, axis=2)
        if padding_mask is None:
            return concatenated
        masks = {m: padding_mask.get(m) for m in self.index_dims}
        if all(mask is None for mask in masks.values()):
            return concatenated, None
        pieces = [ops.ones_like(latents[..., 0], dtype="bool")]
        for modality, mask in masks.items():
            if mask is None:
                mask = ops.ones_like(inputs[modality][..., 0], dtype="bool")
            pieces.append(ops.expand_dims(ops.cast(mask, "bool"), 1))
        return concatenated, ops.concatenate(pieces, axis=2)

    def compute_output_spec(self, latents, inputs, padding_mask=None):
        size = latents.shape[2]
        size = None if size is None else size + sum(self.index_dims.values())
        shape = (latents.shape[0], 1, size, latents.shape[-1])
        concatenated = keras.KerasTensor(shape, dtype=latents.dtype)
        if padding_mask is None:
            return concatenated
        if all(padding_mask.get(m) is None for m in self.index_dims):
            return concatenated, None
        return concatenated, keras.KerasTensor(shape[:3], dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update({"index_dims": dict(self.index_dims)})
        return config
