"""HiP's groupwise masking for masked auto-encoding: the same within-group positions masked in every group.

HiP (arXiv 2202.10890, appendix on MAE pretraining) learns its low-dimensional
position embeddings by masked auto-encoding with *groupwise* masking: one
mask over the N positions of a group, applied to all G groups of the first
block. Which input element sits at which position of which group is
`ModalityGrouper`'s business (greedy assignment of groups to modalities,
zero padding to a multiple of the groups, then to the common group size
N); `GroupwiseMasking` reads that map from the grouper's own inverse,
`ModalityUngrouper`, applied once to the position indices 0 .. N-1, so the
two can never disagree.

The mask is a pure function of a seed (`tf.random.stateless_uniform`), for
use inside `tf.data` map functions with the pipeline's per-example seeds
(`training/pipeline.py`): the same seed gives the same mask on any
machine, and a resumed run masks exactly as an uninterrupted one.

This library's choices (the paper gives neither the ratio nor how a masked
element is hidden; see the `hip_mae` task): exactly `round(mask_ratio * N)`
of the N group positions are masked, and all elements of every modality at
those positions are masked.
"""

import numpy as np
import tensorflow as tf

from keras_perceiver.layers.modality_grouper import ModalityUngrouper, check_index_dims


class GroupwiseMasking:
    """Seeded, stateless groupwise masks for a dict of modalities {m: M_m elements}.

    Source: HiP (arXiv 2202.10890) appendix B (MAE with groupwise masking);
    the grouping is the official `ConstNumGrouper` (`ModalityGrouper`).

    Args:
        num_groups: int, G, the groups of HiP's first block (`num_groups[0]`).
        index_dims: dict of modality name -> M_m, in the model's input order
            (the order decides the grouping).
        mask_ratio: float in (0, 1), the fraction of the N group positions
            that are masked (rounded to a whole number, at least 1 and at
            most N - 1).

    Call arguments:
        seed: int32/int64 tensor (2,), a `tf.random.stateless_*` seed.

    Returns:
        dict of modality name -> (M_m,) bool tensor, True where the element
        is masked (hidden from the encoder and scored by the loss).

    Raises:
        ValueError: for a `mask_ratio` outside (0, 1), `index_dims` that is
            not a dict of positive ints, or more modalities than groups.

    Example:
    >>> import tensorflow as tf
    >>> from training.groupwise_masking import GroupwiseMasking
    >>> masking = GroupwiseMasking(num_groups=4, index_dims={"image": 16}, mask_ratio=0.5)
    >>> mask = masking(tf.constant([0, 1], tf.int64))["image"]
    >>> int(tf.reduce_sum(tf.cast(mask, tf.int32)))
    8
    """

    def __init__(self, num_groups, index_dims, mask_ratio):
        check_index_dims(index_dims, self.__class__.__name__)
        if not 0.0 < float(mask_ratio) < 1.0:
            raise ValueError(
                f"{self.__class__.__name__}: `mask_ratio` must be in (0, 1). "
                f"Received: mask_ratio={mask_ratio!r}"
            )
        ungrouper = ModalityUngrouper(num_groups, index_dims)
        self.num_groups = int(num_groups)
        self.index_dims = dict(ungrouper.index_dims)
        self.mask_ratio = float(mask_ratio)
        # N, the elements per group, and k, the positions masked in every group.
        self.group_size = ungrouper.index_dim
        self.num_masked = min(max(int(round(self.mask_ratio * self.group_size)), 1), self.group_size - 1)
        # Within-group position of every element: the ungrouped position indices (1, G, N, 1) -> {m: (M_m,)}.
        indices = np.broadcast_to(
            np.arange(self.group_size, dtype=np.float32)[None, None, :, None],
            (1, self.num_groups, self.group_size, 1),
        )
        self.positions = {
            m: np.asarray(x)[0, :, 0].astype(np.int32) for m, x in ungrouper(indices).items()
        }

    def group_mask(self, seed):
        """(N,) bool: the `num_masked` positions with the smallest stateless uniform scores of `seed`."""
        scores = tf.random.stateless_uniform((self.group_size,), seed=tf.cast(seed, tf.int64))
        ranks = tf.argsort(tf.argsort(scores))
        return ranks < self.num_masked

    def __call__(self, seed):
        mask = self.group_mask(seed)
        return {m: tf.gather(mask, positions) for m, positions in self.positions.items()}
