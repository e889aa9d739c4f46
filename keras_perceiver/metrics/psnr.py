"""Peak signal-to-noise ratio (PSNR) in dB, per example then averaged."""

import math

import keras
from keras import ops

from keras_perceiver.losses.masked_lm_loss import shapes_compatible, static_shape
from keras_perceiver.validation import check_numeric_dtype


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PeakSignalToNoiseRatio(keras.metrics.Metric):
    """Mean over examples of `10 * log10(max_value**2 / MSE)`, in decibels.

    The reconstruction metric of the Perceiver IO multimodal auto-encoding
    experiment (arXiv 2107.14795, section 4.4: video PSNR on Kinetics-700).
    Definition as `tf.image.psnr`: the MSE of each example is taken over all
    its non-batch axes (e.g. (T, H, W, C) of a video or (H, W, C) of an image),
    converted to dB, and the per-example values are averaged over all examples
    seen since the last reset. Averaging per example (not pooling the MSE over
    the dataset) is the usual protocol of image/video benchmarks; the two differ
    because the logarithm does not commute with the mean.

    Identical inputs: the per-example MSE is clipped below at
    `epsilon * max_value**2`, so a perfect reconstruction gives the finite
    value `10 * log10(1 / epsilon)` = 100 dB by default instead of inf (one
    perfect example would otherwise make the mean inf); every PSNR is capped
    at that value.

    Args:
        max_value: float, the largest possible signal value (dynamic range):
            1.0 (default) for images in [0, 1], 255.0 for uint8 ranges.
        epsilon: float, the smallest MSE relative to `max_value**2`
            (default 1e-10, i.e. a 100 dB cap).
        name: name of the metric.
        dtype: dtype of the computation and accumulators, default
            `keras.backend.floatx()`.

    Call arguments (`update_state`):
        y_true: (B, ...) reference signal, at least rank 2.
        y_pred: (B, ...) reconstruction of the same shape.
        sample_weight: optional (B,) weight of each example.

    Raises:
        ValueError: `max_value` or `epsilon` not positive; `y_true` and
            `y_pred` of different shapes or rank < 2; `sample_weight` not (B,).

    Example:
    >>> import keras
    >>> from keras_perceiver.metrics import PeakSignalToNoiseRatio
    >>> metric = PeakSignalToNoiseRatio()
    >>> metric.update_state(keras.ops.zeros((1, 4)), keras.ops.full((1, 4), 0.1))
    >>> round(float(metric.result()), 3)  # 10 * log10(1 / 0.01)
    20.0
    """

    def __init__(self, max_value=1.0, epsilon=1e-10, name="psnr", dtype=None):
        for arg_name, value in (("max_value", max_value), ("epsilon", epsilon)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"`{arg_name}` must be a positive number. Received: {arg_name}={value!r}")
        super().__init__(name=name, dtype=dtype)
        self.max_value = float(max_value)
        self.epsilon = float(epsilon)
        self.total_psnr = self.add_variable(shape=(), initializer="zeros", name="total_psnr")
        self.num_examples = self.add_variable(shape=(), initializer="zeros", name="num_examples")

    def update_state(self, y_true, y_pred, sample_weight=None):
        owner = type(self).__name__
        check_numeric_dtype("y_true", y_true, owner)
        check_numeric_dtype("y_pred", y_pred, owner)
        true_shape, pred_shape = static_shape(y_true), static_shape(y_pred)
        if len(pred_shape) < 2 or not shapes_compatible(true_shape, pred_shape):
            raise ValueError(
                f"{owner}: `y_true` and `y_pred` must have the same shape (B, ...) of rank >= 2. "
                f"Received: y_true.shape={true_shape}, y_pred.shape={pred_shape}"
            )
        if sample_weight is not None:
            weight_shape = static_shape(sample_weight)
            if not shapes_compatible(weight_shape, pred_shape[:1]):
                raise ValueError(
                    f"{owner}: `sample_weight` must have shape (B,) = ({pred_shape[0]},), one weight per "
                    f"example. Received: sample_weight.shape={weight_shape}"
                )
        y_true = ops.cast(y_true, self.dtype)
        y_pred = ops.cast(y_pred, self.dtype)
        mse = ops.mean(ops.square(y_pred - y_true), axis=tuple(range(1, len(pred_shape))))
        max_squared = self.max_value**2
        mse = ops.maximum(mse, self.epsilon * max_squared)
        psnr = (10.0 / math.log(10.0)) * ops.log(max_squared / mse)
        weights = ops.ones_like(psnr) if sample_weight is None else ops.cast(sample_weight, self.dtype)
        self.total_psnr.assign_add(ops.sum(psnr * weights))
        self.num_examples.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total_psnr, self.num_examples)

    def get_config(self):
        config = super().get_config()
        config.update({"max_value": self.max_value, "epsilon": self.epsilon})
        return config
