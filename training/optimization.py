"""Optimizers and learning-rate schedules of the Perceiver training recipes.

The reference recipe (Perceiver IO, arXiv 2107.14795, appendix; DeepMind
`perceiver/train/experiment.py`): LAMB, a linear warm-up to the peak rate,
then constant, then cosine decay to zero ("constant_cosine"), weight decay on
every weight except biases and normalization scales/offsets, gradient
clipping by global norm. `build_optimizer` makes that (or AdamW / Adam / SGD)
from keyword arguments; `build_schedule` makes the schedules.
"""

import math

import keras

OPTIMIZERS = ("lamb", "adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "constant_cosine", "linear")
# Weights left out of weight decay: biases and the scales/offsets of normalization layers
# (LayerNormalization and BatchNormalization call them gamma/beta).
NO_WEIGHT_DECAY_NAMES = ("bias", "gamma", "beta")


@keras.saving.register_keras_serializable(package="keras_perceiver")
class WarmupConstantCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then constant, then cosine decay ("constant_cosine" of the reference).

    With `s` the step (the optimizer's `iterations`), `w = warmup_steps`,
    `c = constant_steps` and `T = total_steps`:

    - `s < w`: `peak * (s + 1) / w` (linear warm-up, never exactly 0);
    - `w <= s < w + c`: `peak`;
    - `s >= w + c`: `alpha*peak + (1-alpha)*peak * 0.5 * (1 + cos(pi * min(s - w - c, d) / d))` with
      `d = T - w - c`, reaching `alpha * peak` at step `T` and staying there.

    `constant_steps=0` is the usual warm-up + cosine schedule; `warmup_steps=0`
    starts at the peak.

    Args:
        peak_learning_rate: float, the rate after warm-up.
        total_steps: int, the step at which the decay ends.
        warmup_steps: int, length of the linear warm-up. Defaults to 0.
        constant_steps: int, steps at the peak between warm-up and decay.
            Defaults to 0.
        alpha: float in [0, 1], the final rate as a fraction of the peak.
            Defaults to 0.

    Call arguments:
        step: scalar integer or float tensor, the optimizer step.

    Returns:
        The learning rate at `step`, a float32 scalar.

    Raises:
        ValueError: for a non-positive peak or total, negative step counts,
            `warmup_steps + constant_steps > total_steps`, or `alpha` outside
            [0, 1].

    Example:
    >>> from training.optimization import WarmupConstantCosineDecay
    >>> schedule = WarmupConstantCosineDecay(1.0, total_steps=10, warmup_steps=2, constant_steps=4)
    >>> [round(float(schedule(s)), 3) for s in (0, 1, 2, 5, 6, 8, 10)]
    [0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0]
    """

    def __init__(self, peak_learning_rate, total_steps, warmup_steps=0, constant_steps=0, alpha=0.0):
        if not peak_learning_rate > 0:
            raise ValueError(
                f"`peak_learning_rate` must be positive. Received: peak_learning_rate={peak_learning_rate!r}"
            )
        for name, value in (("warmup_steps", warmup_steps), ("constant_steps", constant_steps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative integer. Received: {name}={value!r}")
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(
                f"`total_steps` must be a positive integer. Received: total_steps={total_steps!r}"
            )
        if warmup_steps + constant_steps > total_steps:
            raise ValueError(
                "`warmup_steps + constant_steps` must not exceed `total_steps`. Received: "
                f"warmup_steps={warmup_steps}, constant_steps={constant_steps}, total_steps={total_steps}"
            )
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must be in [0, 1]. Received: alpha={alpha!r}")
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.constant_steps = constant_steps
        self.alpha = float(alpha)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        warmup = ops.cast(self.warmup_steps, "float32")
        decay_start = float(self.warmup_steps + self.constant_steps)
        decay_steps = float(max(self.total_steps - self.warmup_steps - self.constant_steps, 1))
        progress = ops.clip((step - decay_start) / decay_steps, 0.0, 1.0)
        cosine = peak * (self.alpha + (1.0 - self.alpha) * 0.5 * (1.0 + ops.cos(math.pi * progress)))
        if self.warmup_steps == 0:
            return cosine
        warm = peak * ops.minimum((step + 1.0) / warmup, 1.0)
        return ops.where(step < warmup, warm, cosine)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "constant_steps": self.constant_steps,
            "alpha": self.alpha,
        }


def build_schedule(name, learning_rate, total_steps, warmup_steps=0, decay_start_fraction=2 / 3):
    """A learning-rate schedule by name.

    Args:
        name: one of `SCHEDULES`: `"constant"` (the float `learning_rate`),
            `"cosine"` (cosine decay from the start), `"warmup_cosine"`
            (linear warm-up then cosine), `"constant_cosine"` (warm-up,
            constant until `decay_start_fraction` of the steps, then cosine:
            the reference's ImageNet schedule), `"linear"` (linear decay to
            0 from the start: Keras' `PolynomialDecay` with power 1, the GLUE
            fine-tuning schedule of TF Model Garden; no warm-up).
        learning_rate: float, the peak rate.
        total_steps: int, steps of the whole run.
        warmup_steps: int, capped at `total_steps`. Defaults to 0 (not used
            by `"constant"` and `"cosine"`).
        decay_start_fraction: float in [0, 1], where the cosine decay of
            `"constant_cosine"` starts. Defaults to 2/3.

    Returns:
        A float or a `keras.optimizers.schedules.LearningRateSchedule`.

    Raises:
        ValueError: for an unknown name or invalid step counts.
    """
    if name not in SCHEDULES:
        raise ValueError(f"`schedule` must be one of {list(SCHEDULES)}. Received: schedule={name!r}")
    if name == "constant":
        return float(learning_rate)
    if name == "linear":
        return keras.optimizers.schedules.PolynomialDecay(
            float(learning_rate), decay_steps=max(int(total_steps), 1), end_learning_rate=0.0, power=1.0
        )
    if name == "cosine":
        warmup_steps = 0
    warmup_steps = min(warmup_steps, total_steps)  # runs shorter than the warm-up (smoke tests)
    if not 0.0 <= decay_start_fraction <= 1.0:
        raise ValueError(
            "`decay_start_fraction` must be in [0, 1]. "
            f"Received: decay_start_fraction={decay_start_fraction!r}"
        )
    constant_steps = 0
    if name == "constant_cosine":
        constant_steps = max(int(round(decay_start_fraction * total_steps)) - warmup_steps, 0)
    return WarmupConstantCosineDecay(
        learning_rate, total_steps=total_steps, warmup_steps=warmup_steps, constant_steps=constant_steps
    )


def build_optimizer(
    name="lamb",
    learning_rate=1e-3,
    weight_decay=0.0,
    global_clipnorm=None,
    exclude_from_weight_decay=NO_WEIGHT_DECAY_NAMES,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-6,
):
    """An optimizer of the reference recipe.

    Weight decay (decoupled, as in AdamW/LAMB) skips every variable whose name
    is in `exclude_from_weight_decay` (biases and normalization scales and
    offsets by default); `global_clipnorm` clips the gradients by their global
    norm.

    Args:
        name: one of `OPTIMIZERS`. Defaults to `"lamb"` (`keras.optimizers.Lamb`).
        learning_rate: float or schedule. Defaults to 1e-3.
        weight_decay: float >= 0. Defaults to 0. Not available with `"adam"`
            and `"sgd"` (use `"adamw"`).
        global_clipnorm: optional float > 0.
        exclude_from_weight_decay: names of variables without weight decay.
        beta_1, beta_2, epsilon: Adam/LAMB moments and epsilon.

    Returns:
        A `keras.optimizers.Optimizer`.

    Raises:
        ValueError: for an unknown name, a negative weight decay, weight decay
            with `"adam"`/`"sgd"`, or a non-positive `global_clipnorm`.

    Example:
    >>> from training.optimization import build_optimizer
    >>> optimizer = build_optimizer("lamb", 1e-3, weight_decay=0.1, global_clipnorm=1.0)
    >>> type(optimizer).__name__
    'Lamb'
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"`optimizer` must be one of {list(OPTIMIZERS)}. Received: optimizer={name!r}")
    if not weight_decay >= 0:
        raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={weight_decay!r}")
    if weight_decay and name in ("adam", "sgd"):
        raise ValueError(
            f"optimizer={name!r} has no decoupled weight decay; use 'adamw' or 'lamb'. "
            f"Received: weight_decay={weight_decay}"
        )
    if global_clipnorm is not None and not global_clipnorm > 0:
        raise ValueError(f"`global_clipnorm` must be positive or None. Received: {global_clipnorm!r}")
    common = {"learning_rate": learning_rate, "global_clipnorm": global_clipnorm}
    if name == "sgd":
        return keras.optimizers.SGD(momentum=beta_1, **common)
    moments = {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon}
    if name == "adam":
        return keras.optimizers.Adam(**moments, **common)
    if name == "lamb":
        optimizer = keras.optimizers.Lamb(weight_decay=weight_decay or None, **moments, **common)
    else:
        optimizer = keras.optimizers.AdamW(weight_decay=float(weight_decay), **moments, **common)
    if weight_decay and exclude_from_weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(exclude_from_weight_decay))
    return optimizer
