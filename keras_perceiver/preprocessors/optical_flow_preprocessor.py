"""Input side of the optical-flow perceiver: 3x3 patches of both frames, linear, Fourier positions."""

import keras
from keras import ops

from keras_perceiver.layers.fourier_position_encoding import FourierPositionEncoding
from keras_perceiver.layers.initializers import default_kernel_initializer
from keras_perceiver.layers.position_combiner import PositionCombiner
from keras_perceiver.validation import check_numeric_dtype, check_positive_int, pop_renamed_argument


def extract_patches(frames, patch_size):
    """(..., H, W, C) -> (..., H, W, patch_size**2 * C): the zero-padded neighbourhood of every pixel.

    Channel order (row offset, column offset, channel), the order of
    `tf.image.extract_patches` with SAME padding and of the extraction in the
    reference's optical-flow colab.
    """
    pad = patch_size // 2
    rank = len(frames.shape)
    padding = [(0, 0)] * (rank - 3) + [(pad, patch_size - 1 - pad), (pad, patch_size - 1 - pad), (0, 0)]
    padded = ops.pad(frames, padding)
    height, width = frames.shape[-3], frames.shape[-2]
    shifted = [
        padded[..., dy : dy + height, dx : dx + width, :]
        for dy in range(patch_size)
        for dx in range(patch_size)
    ]
    return ops.concatenate(shifted, axis=-1)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class OpticalFlowPreprocessor(keras.layers.Layer):
    """Frame pairs (B, 2, H, W, C) -> inputs (B, H*W, output_channels + C_pos).

    Each pixel of each frame becomes its `patch_size` x `patch_size`
    neighbourhood (27 values for RGB and 3x3); the two frames are stacked on
    the channel axis (temporal downsampling by 2: 54 values), a Dense layer
    maps them to `output_channels` (64), and Fourier features of the (H, W) grid
    with frequencies set by `train_size` are concatenated.

    Source: Perceiver IO (arXiv 2107.14795) section 4.2 and appendix;
    transformers `PerceiverForOpticalFlow` (`PerceiverImagePreprocessor` with
    `prep_type="patches"`, `temporal_downsample=2`, `conv_after_patching`).

    Args:
        train_size: tuple (H, W), the training resolution that sets the
            Fourier frequencies (`max_resolution`). Defaults to (368, 496).
        num_bands: int, Fourier bands per axis. Defaults to 64.
        output_channels: int, width of the Dense layer after patching. Defaults to 64.
        patch_size: int, neighbourhood size. Defaults to 3.
        kernel_initializer: initializer of the Dense layer.

    Call arguments:
        frames: (B, 2, H, W, C) float tensor, the two frames.

    Returns:
        (B, H*W, output_channels + 2 + 4 * num_bands) tensor.

    Raises:
        ValueError: for frames that are not (B, 2, H, W, C) with static H, W, C,
            or whose shape differs from the built one.
        TypeError: for frames that are not numbers (e.g. strings).

    Example:
    >>> import keras
    >>> from keras_perceiver.preprocessors.optical_flow_preprocessor import OpticalFlowPreprocessor
    >>> layer = OpticalFlowPreprocessor(train_size=(8, 8), num_bands=4, output_channels=16)
    >>> tuple(layer(keras.ops.ones((1, 2, 8, 8, 3))).shape)
    (1, 64, 34)
    """

    def __init__(
        self,
        train_size=(368, 496),
        num_bands=64,
        output_channels=64,
        patch_size=3,
        kernel_initializer=None,
        **kwargs,
    ):
        output_channels = pop_renamed_argument(kwargs, "out_channels", "output_channels", output_channels, 64)
        super().__init__(**kwargs)
        check_positive_int("num_bands", num_bands)
        check_positive_int("output_channels", output_channels)
        check_positive_int("patch_size", patch_size)
        self.train_size = tuple(train_size)
        self.num_bands = num_bands
        self.output_channels = output_channels
        self.patch_size = patch_size
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_kernel_initializer()
        )
        self.projection = keras.layers.Dense(
            output_channels,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="projection",
        )
        self.position_combiner = PositionCombiner(dtype=self.dtype_policy, name="position_combiner")

    def build(self, frames_shape):
        frames_shape = tuple(frames_shape)
        if len(frames_shape) != 5 or frames_shape[1] != 2 or None in frames_shape[2:]:
            raise ValueError(
                "OpticalFlowPreprocessor: `frames` must be (B, 2, H, W, C) with known H, W, C. "
                f"Received: frames.shape={frames_shape}"
            )
        self._frames_shape = frames_shape[1:]
        height, width, channels = frames_shape[2:]
        self.position_encoding = FourierPositionEncoding(
            self.num_bands,
            index_dims=(height, width),
            max_resolution=self.train_size,
            dtype=self.dtype_policy,
            name="position_encoding",
        )
        self.projection.build((None, height * width, 2 * self.patch_size**2 * channels))
        self.position_combiner.build(
            (None, height * width, self.output_channels),
            (None, height * width, self.position_encoding.output_channels),
        )
        self.built = True

    def call(self, frames):
        check_numeric_dtype("frames", frames, self.__class__.__name__)
        if tuple(frames.shape[1:]) != self._frames_shape:
            expected = ", ".join(map(str, self._frames_shape))
            raise ValueError(
                f"OpticalFlowPreprocessor: expected frames of shape (B, {expected}), the shape the layer "
                f"was built for. Received: frames.shape={tuple(frames.shape)}"
            )
        _, height, width, channels = self._frames_shape
        frames = ops.cast(frames, self.compute_dtype)
        patches = extract_patches(frames, self.patch_size)  # (B, 2, H, W, k*k*C)
        # Temporal downsampling by 2: both frames' patches on the channel axis, frame-major.
        pairs = ops.concatenate([patches[:, 0], patches[:, 1]], axis=-1)
        features = self.projection(ops.reshape(pairs, (-1, height * width, pairs.shape[-1])))
        return self.position_combiner(features, self.position_encoding(features))

    def compute_output_shape(self, frames_shape):
        height, width = frames_shape[2], frames_shape[3]
        width_pos = 2 + 4 * self.num_bands
        return (frames_shape[0], height * width, self.output_channels + width_pos)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "train_size": self.train_size,
                "num_bands": self.num_bands,
                "output_channels": self.output_channels,
                "patch_size": self.patch_size,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
