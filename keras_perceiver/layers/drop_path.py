"""Stochastic depth: drop a residual branch for whole examples (DeepMind's `StochasticDepth`)."""

import keras
from keras import ops

from keras_perceiver.validation import check_numeric_dtype, check_positive_int


def check_drop_path_rate(rate):
    """Raise unless `rate` is a float in [0, 1)."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise ValueError(f"`drop_path_rate` must be a float in [0, 1). Received: drop_path_rate={rate!r}")


@keras.saving.register_keras_serializable(package="keras_perceiver")
class DropPath(keras.layers.Layer):
    """Zero a residual branch for randomly chosen examples at training time.

    Training: `x * floor(keep + U[0, 1))` with one draw per example (mask
    shape (B, 1, ..., 1)), `keep = 1 - rate`. DeepMind's HiP does not rescale
    the kept examples by 1/keep (`scale_by_keep=False`, the default); timm's
    DropPath does (`scale_by_keep=True`). Inference: the identity.

    When groups are folded into the batch, x is (B*G, ...) with the G groups of
    an example adjacent (`fold_groups`): with `num_groups=G` the mask is drawn
    per example and shared by its groups, as HiP's mask (B, 1, 1, 1) on
    (B, G, N, C) arrays.

    Source: HiP (arXiv 2202.10890), official `perceiver_helpers.py`
    `StochasticDepth`; Huang et al. 2016 "Deep Networks with Stochastic Depth".

    Args:
        rate: float in [0, 1), probability of dropping an example's branch.
        scale_by_keep: bool, divide the kept branches by `1 - rate`.
            Defaults to False (DeepMind's).
        num_groups: int, G, groups folded into the batch axis. Defaults to 1.
        seed: optional int, seed of the layer's `keras.random.SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        x: (B*G, ...) tensor, a residual branch.
        training: bool, drop only when True.

    Returns:
        Tensor of the shape of x.

    Raises:
        ValueError: for a rate outside [0, 1), a non-positive `num_groups`, or
            a batch that is not a multiple of `num_groups`.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import DropPath
    >>> x = keras.ops.ones((4, 3, 2))
    >>> bool(keras.ops.all(DropPath(0.5)(x) == x))  # identity at inference
    True
    """

    def __init__(self, rate, scale_by_keep=False, num_groups=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        check_drop_path_rate(rate)
        check_positive_int("num_groups", num_groups)
        self.rate = float(rate)
        self.scale_by_keep = scale_by_keep
        self.num_groups = num_groups
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if rate > 0 else None
        self.supports_masking = True

    def call(self, x, training=None):
        check_numeric_dtype("x", x, self.__class__.__name__, floating=True)
        if not training or self.rate == 0:
            return x
        rows = x.shape[0]
        if rows is not None and rows % self.num_groups:
            raise ValueError(
                f"DropPath: the batch axis must hold B x num_groups rows. Expected a multiple of "
                f"{self.num_groups}. Received: x.shape={tuple(x.shape)}"
            )
        keep = 1.0 - self.rate
        num_examples = ops.shape(x)[0] // self.num_groups
        shape = (num_examples,) + (1,) * (len(x.shape) - 1)
        draws = keras.random.uniform(shape, seed=self.seed_generator, dtype="float32")
        mask = ops.floor(keep + draws)
        if self.num_groups > 1:
            mask = ops.repeat(mask, self.num_groups, axis=0)
        if self.scale_by_keep:
            x = x / ops.cast(keep, x.dtype)
        return x * ops.cast(mask, x.dtype)

    def compute_output_shape(self, x_shape):
        return x_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rate": self.rate,
                "scale_by_keep": self.scale_by_keep,
                "num_groups": self.num_groups,
                "seed": self.seed,
            }
        )
        return config
