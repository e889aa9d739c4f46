"""1-D patch features of embedded inputs for per-position decoder queries."""

import keras
from keras import ops

from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class QueryPatches(keras.layers.Conv1D):
    """Embedded inputs (B, L, E) -> (B, L, filters): a linear map of the inputs around each position.

    A `keras.layers.Conv1D` with `padding="same"` (zero padding at the
    sequence's ends) whose padded positions (padding_mask False) are zeroed
    before the convolution, so that padding never reaches a real position's
    features. The language models add it to their position queries
    (`decoder_query_patch_size`): the optical-flow model's 3x3 patch features
    (Perceiver IO section 4.2) in one dimension, so that each output sees its
    neighbours directly instead of through the latents only.

    Args:
        filters: int, output width (the queries' width E).
        kernel_size: odd int, the patch width P in positions.
        **kwargs: other `keras.layers.Conv1D` arguments (initializers,
            `dtype`, `name`); `padding` is always "same".

    Call arguments:
        inputs: (B, L, E) float embedded inputs.
        padding_mask: optional (B, L) bool, True for real positions.

    Returns:
        (B, L, filters).

    Raises:
        ValueError: for a `filters` or `kernel_size` that is not a positive
            int, or an even `kernel_size` (a patch must be centred on its
            position).
    """

    def __init__(self, filters, kernel_size, **kwargs):
        kwargs.pop("padding", None)
        check_positive_int("filters", filters)
        size = kernel_size
        if isinstance(kernel_size, (tuple, list)) and len(kernel_size) == 1:  # a deserialized config
            size = kernel_size[0]
        check_positive_int("kernel_size", size)
        if size % 2 == 0:
            raise ValueError(
                f"QueryPatches: the patch must be centred on each position (an odd kernel_size). "
                f"Received: kernel_size={kernel_size}"
            )
        super().__init__(filters, kernel_size, padding="same", **kwargs)

    def call(self, inputs, padding_mask=None):
        if padding_mask is not None:
            inputs = inputs * ops.expand_dims(ops.cast(padding_mask, inputs.dtype), -1)
        return super().call(inputs)

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return super().compute_output_shape(inputs_shape)
