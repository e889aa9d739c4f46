"""The convolutional stem of the conv-processing vision perceiver: 4x spatial downsampling."""

import keras

from keras_perceiver.validation import (
    check_channels,
    check_choice,
    check_positive_int,
    check_rank,
    pop_renamed_argument,
)

PADDINGS = ("transformers", "deepmind")


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ConvDownsample(keras.layers.Layer):
    """7x7 stride-2 conv (no bias) -> BatchNorm -> ReLU -> 3x3 stride-2 max-pool, channels last.

    Two padding conventions, both published:
    - `"transformers"`: zero-pad 3 on every side, then a VALID conv and a
      VALID max-pool (224 -> 112 -> 55), as transformers'
      `Conv2dSamePadding` + `nn.MaxPool2d(3, 2)`; its checkpoints need it.
    - `"deepmind"`: SAME conv and SAME max-pool (224 -> 112 -> 56), as
      DeepMind's `io_processors.Conv2DDownsample`.

    BatchNorm uses epsilon 1e-5 and momentum 0.9 (torch's momentum 0.1).

    Source: Perceiver IO (arXiv 2107.14795) appendix (ImageNet conv
    preprocessing); transformers `Conv2DDownsample`.

    Args:
        output_channels: int, conv filters. Defaults to 64.
        use_batchnorm: bool. Defaults to True.
        padding: `"transformers"` (default) or `"deepmind"`.
        kernel_initializer: initializer of the conv kernel.

    Call arguments:
        inputs: (B, H, W, C) images.
        training: bool, BatchNorm uses batch statistics when True.

    Returns:
        (B, H', W', output_channels) with H' = 55 (transformers) or 56
        (deepmind) for H = 224.

    Raises:
        ValueError: for inputs that are not rank 4 or whose channel count
            differs from the built one.

    Example:
    >>> import keras
    >>> from keras_perceiver.preprocessors.conv_downsample import ConvDownsample
    >>> tuple(ConvDownsample(output_channels=8)(keras.ops.ones((1, 32, 32, 3))).shape)
    (1, 7, 7, 8)
    """

    def __init__(
        self,
        output_channels=64,
        use_batchnorm=True,
        padding="transformers",
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        output_channels = pop_renamed_argument(kwargs, "out_channels", "output_channels", output_channels, 64)
        super().__init__(**kwargs)
        check_positive_int("output_channels", output_channels)
        check_choice("padding", padding, PADDINGS)
        self.output_channels = output_channels
        self.use_batchnorm = use_batchnorm
        self.padding = padding
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        same = padding == "deepmind"
        self.zero_padding = None if same else keras.layers.ZeroPadding2D(3, dtype=self.dtype_policy)
        self.conv = keras.layers.Conv2D(
            output_channels,
            7,
            strides=2,
            padding="same" if same else "valid",
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="conv",
        )
        self.batchnorm = (
            keras.layers.BatchNormalization(
                epsilon=1e-5, momentum=0.9, dtype=self.dtype_policy, name="batchnorm"
            )
            if use_batchnorm
            else None
        )
        self.max_pool = keras.layers.MaxPooling2D(
            3, strides=2, padding="same" if same else "valid", dtype=self.dtype_policy
        )

    def build(self, inputs_shape):
        self._channels = inputs_shape[-1]
        shape = inputs_shape
        if self.zero_padding is not None:
            shape = self.zero_padding.compute_output_shape(shape)
        self.conv.build(shape)
        if self.batchnorm is not None:
            self.batchnorm.build(self.conv.compute_output_shape(shape))
        self.built = True

    def call(self, inputs, training=None):
        name = self.__class__.__name__
        check_rank("inputs", inputs, 4, name)
        check_channels("inputs", inputs, self._channels, name)
        x = inputs if self.zero_padding is None else self.zero_padding(inputs)
        x = self.conv(x)
        if self.batchnorm is not None:
            x = self.batchnorm(x, training=training)
        return self.max_pool(keras.activations.relu(x))

    def compute_output_shape(self, inputs_shape):
        shape = inputs_shape
        if self.zero_padding is not None:
            shape = self.zero_padding.compute_output_shape(shape)
        return self.max_pool.compute_output_shape(self.conv.compute_output_shape(shape))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_channels": self.output_channels,
                "use_batchnorm": self.use_batchnorm,
                "padding": self.padding,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
