"""Output side: a Dense projection of every decoder output to `out_channels` (e.g. RGB values or logits)."""

import keras

from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.validation import check_channels, check_numeric_dtype, check_positive_int, check_rank


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ProjectionPostprocessor(keras.layers.Layer):
    """Decoder outputs (B, O, E) -> (B, O, out_channels) by one Dense layer.

    Used for the video modality of multimodal autoencoding (E -> 3 RGB
    values per pixel) and for the label modality (E -> K logits, a
    (B, 1, K) output; take `[:, 0]` for (B, K)).

    Sublayer (weight) name: `classifier` (transformers' name).

    Source: transformers `PerceiverProjectionPostprocessor`; DeepMind
    `io_processors.ProjectionPostprocessor`.

    Args:
        out_channels: int, the output width.
        kernel_initializer: initializer of the Dense kernel; truncated normal
            with stddev 0.02 by default.

    Call arguments:
        inputs: (B, O, E) decoder outputs.

    Returns:
        (B, O, out_channels) tensor.

    Raises:
        ValueError: for a non-positive `out_channels` or inputs that are not
            rank 3.

    Example:
    >>> import keras
    >>> from keras_perceiver.postprocessors import ProjectionPostprocessor
    >>> tuple(ProjectionPostprocessor(3)(keras.ops.ones((2, 10, 16))).shape)
    (2, 10, 3)
    """

    def __init__(self, out_channels, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("out_channels", out_channels)
        self.out_channels = out_channels
        self.kernel_initializer = keras.initializers.get(kernel_initializer or default_kernel_initializer())
        self.classifier = keras.layers.Dense(
            out_channels,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="classifier",
        )

    def build(self, inputs_shape):
        self._channels = inputs_shape[-1]
        self.classifier.build(inputs_shape)
        self.built = True

    def call(self, inputs):
        name = self.__class__.__name__
        check_numeric_dtype("inputs", inputs, name)
        check_rank("inputs", inputs, 3, name)
        check_channels("inputs", inputs, self._channels, name)
        return self.classifier(inputs)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape[:-1]) + (self.out_channels,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "out_channels": self.out_channels,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
