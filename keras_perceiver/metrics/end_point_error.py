"""Optical-flow end-point error (EPE) over the valid pixels."""

import keras
from keras import ops

from keras_perceiver.losses.masked_lm_loss import shapes_compatible, static_shape
from keras_perceiver.validation import check_numeric_dtype


def check_flow_shapes(y_true, y_pred, sample_weight, owner):
    """Raise a ValueError unless flows are (B, H, W, 2) alike and the mask is (B, H, W)."""
    check_numeric_dtype("y_true", y_true, owner)
    check_numeric_dtype("y_pred", y_pred, owner)
    true_shape, pred_shape = static_shape(y_true), static_shape(y_pred)
    if len(pred_shape) != 4 or pred_shape[-1] not in (2, None):
        raise ValueError(
            f"{owner}: `y_pred` must have shape (B, H, W, 2). Received: y_pred.shape={pred_shape}"
        )
    if not shapes_compatible(true_shape, pred_shape):
        raise ValueError(
            f"{owner}: `y_true` must have the shape of `y_pred` (B, H, W, 2). "
            f"Expected: {pred_shape}, received: y_true.shape={true_shape}"
        )
    if sample_weight is not None:
        weight_shape = static_shape(sample_weight)
        if not shapes_compatible(weight_shape, pred_shape[:3]):
            raise ValueError(
                f"{owner}: `sample_weight` (the valid mask) must have shape (B, H, W). "
                f"Expected: {pred_shape[:3]}, received: sample_weight.shape={weight_shape}"
            )


@keras.saving.register_keras_serializable(package="keras_perceiver")
class EndPointError(keras.metrics.Metric):
    """Mean Euclidean distance between predicted and true flow vectors, in pixels.

    The optical-flow metric of Perceiver IO (arXiv 2107.14795, section 4.2,
    Sintel clean/final and KITTI), as defined by Baker et al., "A Database and
    Evaluation Methodology for Optical Flow" (Middlebury, IJCV 2011):
    `EPE = mean over valid pixels of ||flow_pred - flow_true||_2`.

    Valid pixels: `sample_weight` (B, H, W) is the valid mask (1 = valid, 0 =
    excluded, e.g. the sparse ground truth of KITTI or the unknown / infinite
    flow of Middlebury); other non-negative values weight the pixels. Pixels
    whose ground truth has a non-finite component (NaN or inf) are always
    excluded, also without a mask, and never make the result NaN. Predictions
    are not sanitized: a non-finite prediction at a valid pixel shows in the
    result.

    Averaging: per pixel over everything seen since the last reset,
    `sum(w * epe) / sum(w)`, so larger images and images with more valid pixels
    count more (the Sintel protocol of RAFT's evaluation; KITTI results are
    sometimes averaged per image first instead). 0 when no valid pixel was seen.

    Args:
        name: name of the metric.
        dtype: dtype of the computation and accumulators, default
            `keras.backend.floatx()`.

    Call arguments (`update_state`):
        y_true: (B, H, W, 2) ground-truth flow in pixels (u, v).
        y_pred: (B, H, W, 2) predicted flow in pixels.
        sample_weight: optional (B, H, W) valid mask.

    Raises:
        ValueError: shapes other than (B, H, W, 2) / (B, H, W), or mismatched.

    Example:
    >>> import keras
    >>> from keras_perceiver.metrics import EndPointError
    >>> metric = EndPointError()
    >>> metric.update_state(keras.ops.zeros((1, 1, 2, 2)), keras.ops.full((1, 1, 2, 2), [3.0, 4.0]))
    >>> float(metric.result())
    5.0
    """

    def __init__(self, name="end_point_error", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total_error = self.add_variable(shape=(), initializer="zeros", name="total_error")
        self.num_valid = self.add_variable(shape=(), initializer="zeros", name="num_valid")

    def update_state(self, y_true, y_pred, sample_weight=None):
        check_flow_shapes(y_true, y_pred, sample_weight, type(self).__name__)
        y_true = ops.cast(y_true, self.dtype)
        y_pred = ops.cast(y_pred, self.dtype)
        valid = ops.all(ops.isfinite(y_true), axis=-1)
        weights = ops.cast(valid, self.dtype)
        if sample_weight is not None:
            weights = weights * ops.cast(sample_weight, self.dtype)
        # Zero the invalid ground truth before the difference: NaN * 0 is NaN.
        y_true = ops.where(ops.expand_dims(valid, -1), y_true, ops.zeros_like(y_true))
        error = ops.sqrt(ops.sum(ops.square(y_pred - y_true), axis=-1))
        error = ops.where(weights > 0, error * weights, ops.zeros_like(error))
        self.total_error.assign_add(ops.sum(error))
        self.num_valid.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total_error, self.num_valid)
