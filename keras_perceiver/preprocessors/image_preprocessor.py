"""Image input side of the Perceiver: flatten pixels (B, H, W, C) to (B, H*W, C') with positions."""

import keras
from keras import ops

from keras_perceiver.layers.fourier_position_encoding import FourierPositionEncoding
from keras_perceiver.layers.position_combiner import PositionCombiner
from keras_perceiver.layers.trainable_position_encoding import TrainablePositionEncoding
from keras_perceiver.preprocessors.conv_downsample import PADDINGS, ConvDownsample
from keras_perceiver.validation import check_channels, check_choice, check_positive_int, check_rank

PREP_TYPES = ("pixels", "conv1x1", "conv")
POSITION_ENCODING_TYPES = ("fourier", "trainable")
# Preprocessing types of the reference that this layer does not implement yet.
PLANNED_PREP_TYPES = ("patches",)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ImagePreprocessor(keras.layers.Layer):
    """Images (B, H, W, C) -> Perceiver inputs (B, M = H*W, C + C_pos) (or (B, M, C) with `"add"`).

    A stem first maps the image to a feature grid (B, H', W', C'):
    `"pixels"` keeps every pixel (H' = H, C' = C); `"conv1x1"` is a 1x1
    convolution to `out_channels` with stride `spatial_downsample`;
    `"conv"` is the 4x downsampling `ConvDownsample` stem (7x7/2 conv,
    BatchNorm, ReLU, 3x3/2 max-pool) with either padding convention. The
    grid is flattened row-major to (B, H'*W', C'), and a position encoding
    of the (H', W') grid (Fourier features or a learned table) is optionally
    projected to `project_pos_dim` and concatenated to, or added to, the
    features by a `PositionCombiner`. H, W and C are fixed when the layer
    is built (the first call).

    `"patches"` (space-to-depth, for video and optical flow) raises a
    `ValueError` for now. Unlike transformers, which takes channels-first
    images, this layer takes channels-last images (the Keras convention);
    `spatial_downsample` applies to `"conv1x1"` only (the reference's pixel
    downsampling strides over the batch axis of 4-D inputs).

    Source: Perceiver (arXiv 2103.03206) section 3.2 (ImageNet with
    Fourier features of the pixel grid); transformers
    `PerceiverImagePreprocessor` (argument names, channel order
    `[pixels, positions]`); DeepMind `io_processors.ImagePreprocessor`.

    Args:
        prep_type: `"pixels"` (default), `"conv1x1"` or `"conv"`.
        out_channels: int, stem output width C' for `"conv1x1"`/`"conv"`.
            Defaults to 64.
        spatial_downsample: int, stride of the `"conv1x1"` stem. Defaults to 1.
        conv_padding: `"transformers"` (default, 55x55 at 224) or
            `"deepmind"` (SAME, 56x56) for the `"conv"` stem.
        conv2d_use_batchnorm: bool, BatchNorm in the `"conv"` stem.
            Defaults to True.
        position_encoding_type: `"fourier"` (default) or `"trainable"`.
        num_bands: int, Fourier bands K per axis (`"fourier"` only).
            Defaults to 64, the published ImageNet value.
        max_resolution: tuple of 2 ints or None, per-axis resolution that
            sets the highest Fourier frequency (`"fourier"` only); None uses
            the image size (H, W). Defaults to None.
        concat_pos: bool, prepend the raw (y, x) positions to the Fourier
            features. Defaults to True.
        sine_only: bool, sine features only. Defaults to False.
        num_channels: int, width of the learned position table
            (`"trainable"` only). Defaults to 256.
        concat_or_add_pos: `"concat"` (default) or `"add"`; `"add"` needs
            position encodings as wide as C (use `project_pos_dim=C`).
        project_pos_dim: int or None, Dense projection width of the position
            encodings before combining; None (default) leaves them as they
            are (transformers' -1).

    Call arguments:
        inputs: (B, H, W, C) images, any real or integer dtype (cast to
            the layer's compute dtype); H, W and C must be static.

    Returns:
        (B, H*W, C + C_pos') for `"concat"`, (B, H*W, C) for `"add"`, where
        C_pos' is `project_pos_dim` or the encoding width: for Fourier
        features `2 * num_bands * (1 if sine_only else 2) + (2 if concat_pos
        else 0)`, for `"trainable"` `num_channels`.

    Raises:
        ValueError: for an unknown or not yet implemented `prep_type`, an
            unknown `position_encoding_type` or `concat_or_add_pos`,
            non-positive sizes, a `max_resolution` that is not 2 ints,
            inputs that are not rank 4, an unknown (None) H, W or C, or inputs
            whose H, W or C differ from the ones the layer was built for.

    Example:
    >>> layer = ImagePreprocessor(num_bands=4)
    >>> layer(keras.ops.ones((2, 8, 8, 1))).shape
    (2, 64, 19)
    """

    def __init__(
        self,
        prep_type="pixels",
        out_channels=64,
        spatial_downsample=1,
        conv_padding="transformers",
        conv2d_use_batchnorm=True,
        position_encoding_type="fourier",
        num_bands=64,
        max_resolution=None,
        concat_pos=True,
        sine_only=False,
        num_channels=256,
        concat_or_add_pos="concat",
        project_pos_dim=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if prep_type in PLANNED_PREP_TYPES:
            raise ValueError(
                f"ImagePreprocessor: prep_type={prep_type!r} is not implemented yet. "
                f"Expected one of {list(PREP_TYPES)}. Received: prep_type={prep_type!r}"
            )
        check_choice("prep_type", prep_type, PREP_TYPES)
        check_choice("position_encoding_type", position_encoding_type, POSITION_ENCODING_TYPES)
        check_positive_int("out_channels", out_channels)
        check_positive_int("spatial_downsample", spatial_downsample)
        check_choice("conv_padding", conv_padding, PADDINGS)
        check_choice("concat_or_add_pos", concat_or_add_pos, ("concat", "add"))
        check_positive_int("num_bands", num_bands)
        check_positive_int("num_channels", num_channels)
        check_positive_int("project_pos_dim", project_pos_dim, allow_none=True)
        if max_resolution is not None:
            max_resolution = tuple(max_resolution)
            if len(max_resolution) != 2:
                raise ValueError(
                    "ImagePreprocessor: `max_resolution` must be 2 ints (height, width) or None. "
                    f"Received: max_resolution={max_resolution!r}"
                )
            for i, n in enumerate(max_resolution):
                check_positive_int(f"max_resolution[{i}]", n)
        self.prep_type = prep_type
        self.out_channels = out_channels
        self.spatial_downsample = spatial_downsample
        self.conv_padding = conv_padding
        self.conv2d_use_batchnorm = conv2d_use_batchnorm
        self.stem = None
        if prep_type == "conv1x1":
            self.stem = keras.layers.Conv2D(
                out_channels, 1, strides=spatial_downsample, dtype=self.dtype_policy, name="conv1x1"
            )
        elif prep_type == "conv":
            self.stem = ConvDownsample(
                out_channels,
                use_batchnorm=conv2d_use_batchnorm,
                padding=conv_padding,
                dtype=self.dtype_policy,
                name="conv",
            )
        self.position_encoding_type = position_encoding_type
        self.num_bands = num_bands
        self.max_resolution = max_resolution
        self.concat_pos = concat_pos
        self.sine_only = sine_only
        self.num_channels = num_channels
        self.concat_or_add_pos = concat_or_add_pos
        self.project_pos_dim = project_pos_dim
        self.position_combiner = PositionCombiner(
            concat_or_add_pos=concat_or_add_pos,
            project_pos_dim=project_pos_dim,
            dtype=self.dtype_policy,
            name="position_combiner",
        )
        self.position_encoding = None
        self._index_dims = None
        self._input_channels = None

    def _check_inputs_shape(self, inputs_shape):
        name = self.__class__.__name__
        inputs_shape = tuple(inputs_shape)
        if len(inputs_shape) != 4:
            raise ValueError(
                f"{name}: `inputs` must have rank 4 (B, H, W, C). "
                f"Received: inputs.shape={inputs_shape} (rank {len(inputs_shape)})"
            )
        if None in inputs_shape[1:]:
            raise ValueError(
                f"{name}: the image height, width and channels must be known to encode positions. "
                f"Received: inputs.shape={inputs_shape}"
            )
        return inputs_shape

    def _build_position_encoding(self, index_dims):
        if self.position_encoding_type == "fourier":
            return FourierPositionEncoding(
                num_bands=self.num_bands,
                index_dims=index_dims,
                max_resolution=self.max_resolution,
                concat_pos=self.concat_pos,
                sine_only=self.sine_only,
                dtype=self.dtype_policy,
                name="position_encoding",
            )
        return TrainablePositionEncoding(
            index_dims=index_dims,
            num_channels=self.num_channels,
            dtype=self.dtype_policy,
            name="position_encoding",
        )

    def build(self, inputs_shape):
        inputs_shape = self._check_inputs_shape(inputs_shape)
        self._image_dims = tuple(int(n) for n in inputs_shape[1:3])
        self._input_channels = inputs_shape[3]
        features_shape = inputs_shape
        if self.stem is not None:
            self.stem.build(inputs_shape)
            features_shape = tuple(self.stem.compute_output_shape(inputs_shape))
        self._index_dims = tuple(int(n) for n in features_shape[1:3])
        self._feature_channels = features_shape[3]
        self.position_encoding = self._build_position_encoding(self._index_dims)
        self.position_encoding.build(features_shape)
        num_positions = self._index_dims[0] * self._index_dims[1]
        flat_shape = (inputs_shape[0], num_positions, self._feature_channels)
        position_shape = self.position_encoding.compute_output_shape(features_shape)
        self.position_combiner.build(flat_shape, position_shape)
        self.built = True

    def call(self, inputs, training=None):
        name = self.__class__.__name__
        check_rank("inputs", inputs, 4, name)
        shape = tuple(inputs.shape)
        if shape[1:3] != self._image_dims:
            raise ValueError(
                f"{name}: images must be {self._image_dims[0]}x{self._image_dims[1]} (H, W), the size the "
                f"layer was built for. Received: inputs.shape={shape}"
            )
        check_channels("inputs", inputs, self._input_channels, name)
        features = ops.cast(inputs, self.compute_dtype)
        if self.stem is not None:
            features = self.stem(features, training=training)
        num_positions = self._index_dims[0] * self._index_dims[1]
        flat = ops.reshape(features, (-1, num_positions, self._feature_channels))
        position_encodings = self.position_encoding(features)
        return self.position_combiner(flat, position_encodings)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "prep_type": self.prep_type,
                "out_channels": self.out_channels,
                "spatial_downsample": self.spatial_downsample,
                "conv_padding": self.conv_padding,
                "conv2d_use_batchnorm": self.conv2d_use_batchnorm,
                "position_encoding_type": self.position_encoding_type,
                "num_bands": self.num_bands,
                "max_resolution": self.max_resolution,
                "concat_pos": self.concat_pos,
                "sine_only": self.sine_only,
                "num_channels": self.num_channels,
                "concat_or_add_pos": self.concat_or_add_pos,
                "project_pos_dim": self.project_pos_dim,
            }
        )
        return config
