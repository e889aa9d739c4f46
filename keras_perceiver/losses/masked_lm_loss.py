"""Masked language modelling loss: cross-entropy at the masked positions only."""

import keras
import numpy as np
from keras import ops

from keras_perceiver.validation import check_numeric_dtype


def static_shape(x):
    """The static shape of a tensor, array or nested list as a tuple of ints/None."""
    return tuple(x.shape) if hasattr(x, "shape") else tuple(ops.convert_to_tensor(x).shape)


def shapes_compatible(shape, expected):
    """Same rank and equal dimensions wherever both are known."""
    return len(shape) == len(expected) and all(
        a is None or b is None or a == b for a, b in zip(shape, expected)
    )


def check_masked_lm_shapes(y_true, y_pred, sample_weight, owner):
    """Raise a ValueError unless labels (B, L), logits (B, L, V) and weights (B, L) agree.

    Only static dimensions are compared; unknown (`None`) ones are skipped.
    """
    check_numeric_dtype("y_pred", y_pred, owner, floating=True)
    check_numeric_dtype("y_true", y_true, owner)
    if sample_weight is not None:
        check_numeric_dtype("sample_weight", sample_weight, owner)
    pred_shape = static_shape(y_pred)
    if len(pred_shape) != 3:
        raise ValueError(
            f"{owner}: `y_pred` must be logits of shape (B, L, V). Received: y_pred.shape={pred_shape}"
        )
    expected = pred_shape[:2]
    for name, x in (("y_true", y_true), ("sample_weight", sample_weight)):
        if x is None:
            continue
        shape = static_shape(x)
        if not shapes_compatible(shape, expected):
            raise ValueError(
                f"{owner}: `{name}` must have shape (B, L) = {expected} to match "
                f"y_pred.shape={pred_shape} (B, L, V). Received: {name}.shape={shape}"
            )
    check_label_range(y_true, pred_shape[-1], owner)


def check_label_range(y_true, vocab_size, owner):
    """Raise a ValueError unless concrete (NumPy or eager) labels lie in [0, V).

    Symbolic labels (inside `tf.function`) are not read: there TensorFlow's
    kernel reports an out-of-range id itself.
    """
    if vocab_size is None or keras.backend.is_keras_tensor(y_true):
        return
    try:
        labels = np.asarray(y_true.numpy() if hasattr(y_true, "numpy") else y_true)
    except (AttributeError, NotImplementedError, TypeError, ValueError, RuntimeError):
        return  # a graph tensor or a JAX tracer: nothing to read
    if labels.size and (labels.min() < 0 or labels.max() >= vocab_size):
        raise ValueError(
            f"{owner}: `y_true` must hold token ids in [0, {vocab_size}) (the logits' V). "
            f"Received: min={labels.min()}, max={labels.max()}"
        )


@keras.saving.register_keras_serializable(package="keras_perceiver")
class MaskedLMLoss(keras.losses.Loss):
    """Sparse categorical cross-entropy from logits, averaged over the masked positions.

    The masked language modelling objective of Perceiver IO (arXiv 2107.14795,
    section 4.1; BERT-style masking of UTF-8 bytes or SentencePiece tokens):
    the model predicts every position, but only the positions that were masked
    in the input are scored.

    Masking convention (the Keras / keras-hub one): the scored positions are
    given as `sample_weight` (B, L), 1 for a masked position that is scored and
    0 elsewhere (other non-negative weights weight the positions). In `fit` and
    `evaluate` pass it as the third element of each `(x, y, sample_weight)`
    batch. The loss is `sum(w * ce) / sum(w)` (Keras's
    `"mean_with_sample_weight"` reduction), a mean over the scored positions
    only, not over all B * L positions; with no scored position in the batch it
    is 0. Without `sample_weight` every position is scored, which is also the
    right call for logits already gathered at the masked positions (keras-hub
    `MaskedLMHead` outputs (B, P, V) with labels `mask_ids` and weights
    `mask_weights` (B, P)). A Keras mask on `y_pred` (e.g. from
    `Embedding(mask_zero=True)`) is multiplied into the weights. Under a
    `tf.distribute` strategy Keras averages the per-replica means, which equals
    the global mean only when the replicas hold equally many scored positions.

    Labels at unscored positions are not used but must still be valid ids in
    [0, V) (e.g. the original token, or 0): the TensorFlow CPU kernel raises on
    out-of-range ids such as the -100 of Hugging Face transformers.

    Args:
        reduction: Keras reduction, default `"mean_with_sample_weight"`
            (mean over the scored positions). `"sum_over_batch_size"` divides
            by B * L instead; `"none"` returns the (B, L) weighted losses.
        name: name of the loss.
        dtype: dtype of the computation, default `keras.backend.floatx()`;
            float16/bfloat16 logits are cast to it.

    Call arguments:
        y_true: (B, L) integer token ids.
        y_pred: (B, L, V) logits (unnormalized).
        sample_weight: optional (B, L) weights, 1 = masked and scored.

    Returns:
        Scalar loss in nats per scored position (natural logarithm).

    Raises:
        ValueError: `y_pred` is not of rank 3, or `y_true`/`sample_weight` do
            not have the shape (B, L) of `y_pred`.

    Example:
    >>> import keras
    >>> from keras_perceiver.losses import MaskedLMLoss
    >>> logits = keras.ops.zeros((2, 3, 4))
    >>> labels = keras.ops.zeros((2, 3), "int32")
    >>> weights = keras.ops.convert_to_tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> round(float(MaskedLMLoss()(labels, logits, sample_weight=weights)), 4)  # log(4)
    1.3863
    """

    def __init__(self, reduction="mean_with_sample_weight", name="masked_lm_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def __call__(self, y_true, y_pred, sample_weight=None):
        check_masked_lm_shapes(y_true, y_pred, sample_weight, type(self).__name__)
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        logits = ops.cast(y_pred, self.dtype)
        return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)

    def get_config(self):
        config = super().get_config()
        config["dtype"] = self.dtype
        return config
