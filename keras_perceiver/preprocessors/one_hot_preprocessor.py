"""Label input side of the Perceiver: one-hot or soft labels (B, K) -> one input element (B, 1, K)."""

import keras
from keras import ops

from keras_perceiver.validation import check_numeric_dtype, check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class OneHotPreprocessor(keras.layers.Layer):
    """Labels (B, K) -> (B, 1, K): a class distribution as a single input element.

    Adds an index axis of size 1 and casts to the compute dtype; no position
    encoding and no weights. Used for the label modality of multimodal
    autoencoding, where the label is an input that is masked (mask
    probability 1 in the published Kinetics model) and reconstructed.

    Source: Perceiver IO (arXiv 2107.14795) section 4.3 (Kinetics-700
    multimodal autoencoding); transformers `PerceiverOneHotPreprocessor`.

    Args:
        num_classes: int or None, K; when given, inputs must have K channels.
            Defaults to None (any K, fixed at build time).

    Call arguments:
        inputs: (B, K) one-hot or soft labels (any real or integer dtype).

    Returns:
        (B, 1, K) tensor of the compute dtype.

    Raises:
        ValueError: for inputs that are not rank 2, or whose K differs from
            `num_classes` or from the K the layer was built for.
        TypeError: for inputs that are not numbers (e.g. strings).

    Example:
    >>> import keras
    >>> from keras_perceiver.preprocessors import OneHotPreprocessor
    >>> tuple(OneHotPreprocessor()(keras.ops.one_hot([1, 3], 5)).shape)
    (2, 1, 5)
    """

    def __init__(self, num_classes=None, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_classes", num_classes, allow_none=True)
        self.num_classes = num_classes
        self._built_classes = None

    def _check(self, inputs_shape):
        name = self.__class__.__name__
        inputs_shape = tuple(inputs_shape)
        if len(inputs_shape) != 2:
            raise ValueError(
                f"{name}: `inputs` must have rank 2 (B, K). "
                f"Received: inputs.shape={inputs_shape} (rank {len(inputs_shape)})"
            )
        expected = self._built_classes or self.num_classes
        if expected is not None and inputs_shape[1] is not None and inputs_shape[1] != expected:
            raise ValueError(
                f"{name}: expected {expected} classes (K). Received: inputs.shape={inputs_shape}"
            )
        return inputs_shape

    def build(self, inputs_shape):
        self._built_classes = self._check(inputs_shape)[1]
        self.built = True

    def call(self, inputs):
        self._check(inputs.shape)
        check_numeric_dtype("inputs", inputs, self.__class__.__name__)
        return ops.expand_dims(ops.cast(inputs, self.compute_dtype), 1)

    def compute_output_shape(self, inputs_shape):
        inputs_shape = self._check(inputs_shape)
        return (inputs_shape[0], 1, inputs_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config
