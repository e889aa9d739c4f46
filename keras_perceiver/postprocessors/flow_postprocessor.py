"""Output side of the optical-flow perceiver: per-pixel outputs -> a flow field in pixels."""

import keras
from keras import ops

from keras_perceiver.validation import check_rank


@keras.saving.register_keras_serializable(package="keras_perceiver")
class FlowPostprocessor(keras.layers.Layer):
    """Decoder outputs (B, H*W, 2) -> flow (B, H, W, 2) in pixels, divided by `rescale_factor`.

    With `image_size=None` the outputs stay per query, (B, O, 2) (subsampled
    training outputs), only rescaled.

    Source: transformers `PerceiverOpticalFlowDecoder` (`rescale_factor=100`).

    Args:
        image_size: tuple (H, W) or None.
        rescale_factor: float, the network predicts flow * rescale_factor.
            Defaults to 100.

    Call arguments:
        inputs: (B, O, 2) tensor, O = H*W when `image_size` is given.

    Returns:
        (B, H, W, 2) or (B, O, 2) flow in pixels (u right, v down).

    Raises:
        ValueError: for inputs that are not rank 3 or whose O is not H*W.

    Example:
    >>> import keras
    >>> from keras_perceiver.postprocessors.flow_postprocessor import FlowPostprocessor
    >>> tuple(FlowPostprocessor(image_size=(4, 5))(keras.ops.ones((1, 20, 2))).shape)
    (1, 4, 5, 2)
    """

    def __init__(self, image_size=None, rescale_factor=100.0, **kwargs):
        super().__init__(**kwargs)
        self.image_size = tuple(image_size) if image_size is not None else None
        self.rescale_factor = rescale_factor
        self.built = True

    def call(self, inputs):
        check_rank("inputs", inputs, 3, self.__class__.__name__)
        flow = inputs / ops.cast(self.rescale_factor, inputs.dtype)
        if self.image_size is None:
            return flow
        height, width = self.image_size
        if inputs.shape[1] is not None and inputs.shape[1] != height * width:
            raise ValueError(
                f"FlowPostprocessor: expected {height * width} outputs (H*W for image_size="
                f"{self.image_size}). Received: inputs.shape={tuple(inputs.shape)}"
            )
        return ops.reshape(flow, (-1, height, width, inputs.shape[-1]))

    def compute_output_shape(self, inputs_shape):
        if self.image_size is None:
            return inputs_shape
        return (inputs_shape[0], *self.image_size, inputs_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"image_size": self.image_size, "rescale_factor": self.rescale_factor})
        return config
