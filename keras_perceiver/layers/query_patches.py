"""1-D patch features of embedded inputs for per-position decoder queries: centred windows, projected."""

import keras
from keras import ops

from keras_perceiver.validation import check_positive_int

# `QueryPatches`' einsum: batch b, position l, patch offset p, input channel e, output channel f.
PATCH_EQUATION = "blpe,pef->blf"


@keras.saving.register_keras_serializable(package="keras_perceiver")
class CentredPatches(keras.layers.Layer):
    """Embedded inputs (B, L, E) -> (B, L, P, E): the P positions centred on each position.

    Offset k of position i holds position i - P // 2 + k; positions outside
    the sequence and padded positions (padding_mask False) are zeros, so that
    padding never reaches a real position's patch. With `QueryPatches` on
    top, the language models add a linear map of each position's
    neighbourhood to their position queries (`decoder_query_patch_size`):
    the optical-flow model's 3x3 patch features (Perceiver IO section 4.2)
    in one dimension, so that each output sees its neighbours directly
    instead of through the latents only.

    Args:
        patch_size: odd int, the patch width P in positions.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: (B, L, E) float embedded inputs.
        padding_mask: optional (B, L) bool, True for real positions.

    Returns:
        (B, L, P, E).

    Raises:
        ValueError: for a `patch_size` that is not a positive odd int (a
            patch must be centred on its position).
    """

    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("patch_size", patch_size)
        if patch_size % 2 == 0:
            raise ValueError(
                f"CentredPatches: the patch must be centred on each position (an odd patch_size). "
                f"Received: patch_size={patch_size}"
            )
        self.patch_size = patch_size

    def call(self, inputs, padding_mask=None):
        if padding_mask is not None:
            inputs = inputs * ops.expand_dims(ops.cast(padding_mask, inputs.dtype), -1)
        half = self.patch_size // 2
        padded = ops.pad(inputs, [[0, 0], [half, half], [0, 0]])
        # Offset k: padded positions k .. k + L - 1, i.e. up to the (P - 1 - k)-th last.
        last = self.patch_size - 1
        return ops.stack([padded[:, k : (k - last) or None] for k in range(self.patch_size)], axis=2)

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return (*inputs_shape[:2], self.patch_size, inputs_shape[2])

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package="keras_perceiver")
class QueryPatches(keras.layers.EinsumDense):
    """Centred patches (B, L, P, E) -> (B, L, filters): one linear map of each position's patch.

    A `keras.layers.EinsumDense` (`"blpe,pef->blf"`, kernel (P, E, filters),
    bias (filters,)) over `CentredPatches`: together a centred 1-D
    convolution with zero padding (the layout of a `keras.layers.Conv1D`
    kernel, whose weights load unchanged), and one that
    `keras.Model.quantize` reaches (int8 kernel with a scale per output
    channel), which Keras does not do for convolutions.

    Args:
        filters: int, output width (the queries' width E).
        use_bias: bool, default True.
        **kwargs: other `keras.layers.EinsumDense` arguments (initializers,
            regularizers, `dtype`, `name`); the equation, output shape and
            bias axes are fixed.

    Call arguments:
        inputs: (B, L, P, E) float patches (`CentredPatches`).

    Returns:
        (B, L, filters).

    Raises:
        ValueError: for a `filters` that is not a positive int.
    """

    def __init__(self, filters, use_bias=True, **kwargs):
        check_positive_int("filters", filters)
        for fixed in ("equation", "output_shape", "bias_axes"):  # in a deserialized config
            kwargs.pop(fixed, None)
        super().__init__(
            PATCH_EQUATION, output_shape=(None, filters), bias_axes="f" if use_bias else None, **kwargs
        )
        self.filters = filters
        self.use_bias = use_bias

    def compute_output_shape(self, inputs_shape):
        return (*inputs_shape[:2], self.filters)

    def quantize(self, mode=None, type_check=True, config=None):
        # Keras refuses subclasses by default; this one only fixes the equation: its quantization holds.
        super().quantize(mode, type_check=False, config=config)

    def get_config(self):
        config = super().get_config()
        for fixed in ("equation", "output_shape", "bias_axes"):
            config.pop(fixed, None)
        return {**config, "filters": self.filters, "use_bias": self.use_bias}
