"""Masked language modelling accuracy: top-1 accuracy at the masked positions only."""

import keras
from keras import ops

from keras_perceiver.losses.masked_lm_loss import check_masked_lm_shapes


@keras.saving.register_keras_serializable(package="keras_perceiver")
class MaskedLMAccuracy(keras.metrics.Metric):
    """Fraction of masked positions whose arg-max logit is the true token.

    The masked language modelling accuracy of Perceiver IO (arXiv 2107.14795,
    section 4.1), with the masking convention of `MaskedLMLoss`: the scored
    positions are given as `sample_weight` (B, L), 1 = masked and scored, 0 =
    not scored. The result is `sum(w * correct) / sum(w)` accumulated over all
    batches since the last reset, a fraction in [0, 1] (0 when nothing was
    scored yet). It equals `keras.metrics.SparseCategoricalAccuracy` called with
    the same `sample_weight`; this class adds the shape checks and refuses to
    run without weights.

    In `model.compile` put it under `weighted_metrics=[...]`: Keras passes the
    batch's `sample_weight` to weighted metrics only, so under `metrics=[...]`
    it would see no mask. Calling it without `sample_weight` therefore raises a
    ValueError rather than silently scoring every position (for logits
    already gathered at the masked positions, pass weights of ones).

    Args:
        name: name of the metric.
        dtype: dtype of the accumulators, default `keras.backend.floatx()`.

    Call arguments (`update_state`):
        y_true: (B, L) integer token ids.
        y_pred: (B, L, V) logits or probabilities.
        sample_weight: (B, L) weights, 1 = masked and scored.

    Raises:
        ValueError: no `sample_weight`, `y_pred` not of rank 3, or
            `y_true`/`sample_weight` not of the shape (B, L) of `y_pred`.

    Example:
    >>> import keras
    >>> from keras_perceiver.metrics import MaskedLMAccuracy
    >>> metric = MaskedLMAccuracy()
    >>> logits = keras.ops.one_hot(keras.ops.convert_to_tensor([[1, 2, 3]]), 4)
    >>> metric.update_state([[1, 0, 3]], logits, sample_weight=[[1.0, 1.0, 0.0]])
    >>> float(metric.result())
    0.5
    """

    def __init__(self, name="masked_lm_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_correct = self.add_variable(shape=(), initializer="zeros", name="num_correct")
        self.num_scored = self.add_variable(shape=(), initializer="zeros", name="num_scored")

    def update_state(self, y_true, y_pred, sample_weight=None):
        owner = type(self).__name__
        if sample_weight is None:
            raise ValueError(
                f"{owner} needs the (B, L) mask of scored positions as `sample_weight`. In "
                "`model.compile` pass it under `weighted_metrics=[...]` (Keras gives no sample_weight "
                "to `metrics=[...]`). Received: sample_weight=None"
            )
        check_masked_lm_shapes(y_true, y_pred, sample_weight, owner)
        predicted = ops.argmax(y_pred, axis=-1)
        correct = ops.cast(ops.equal(predicted, ops.cast(y_true, predicted.dtype)), self.dtype)
        weights = ops.cast(sample_weight, self.dtype)
        self.num_correct.assign_add(ops.sum(correct * weights))
        self.num_scored.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.num_correct, self.num_scored)
