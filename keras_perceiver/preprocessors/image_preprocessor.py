"""Image and video input side of the Perceiver: (B, H, W, C) or (B, T, H, W, C) -> (B, M, C')."""

import math

import keras
from keras import ops

from keras_perceiver.layers.fourier_position_encoding import linear_positions
from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.preprocessors.conv_downsample import PADDINGS, ConvDownsample
from keras_perceiver.preprocessors.position_encoding_mixin import PositionEncodingMixin
from keras_perceiver.validation import (
    check_choice,
    check_numeric_dtype,
    check_positive_int,
    check_rank,
    pop_renamed_argument,
)

PREP_TYPES = ("pixels", "conv1x1", "conv", "patches")


def space_to_depth(frames, spatial_block_size=1, temporal_block_size=1):
    """Blocks of pixels (and frames) moved to the channel axis, channels last.

    (B, H, W, C) -> (B, H/s, W/s, s*s*C) with channel order (row offset,
    column offset, channel), the order of `tf.nn.space_to_depth`;
    (B, T, H, W, C) -> (B, T/t, H/s, W/s, t*s*s*C) with channel order (frame
    offset, row offset, column offset, channel). The sizes must be divisible
    by the block sizes (checked by `ImagePreprocessor`).

    Source: transformers `space_to_depth` (channels-first inputs, same output
    channel order); DeepMind `io_processors.space_to_depth`.
    """
    s, t = spatial_block_size, temporal_block_size
    if len(frames.shape) == 4:
        _, height, width, channels = frames.shape
        x = ops.reshape(frames, (-1, height // s, s, width // s, s, channels))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (-1, height // s, width // s, s * s * channels))
    _, time, height, width, channels = frames.shape
    x = ops.reshape(frames, (-1, time // t, t, height // s, s, width // s, s, channels))
    x = ops.transpose(x, (0, 1, 3, 5, 2, 4, 6, 7))
    return ops.reshape(x, (-1, time // t, height // s, width // s, t * s * s * channels))


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ImagePreprocessor(PositionEncodingMixin, keras.layers.Layer):
    """Images (B, H, W, C) or videos (B, T, H, W, C) -> Perceiver inputs (B, M, C' + C_pos).

    A stem first maps the input to a feature grid (B, *G, C') with G the
    index dims: `"pixels"` keeps every pixel (G = (H, W), C' = C);
    `"conv1x1"` is a 1x1 convolution to `output_channels` with stride
    `spatial_downsample`; `"conv"` is the 4x downsampling `ConvDownsample`
    stem (7x7/2 conv, BatchNorm, ReLU, 3x3/2 max-pool) with either padding
    convention; `"patches"` is space-to-depth: each `spatial_downsample` x
    `spatial_downsample` block of pixels (of `temporal_downsample`
    consecutive frames, for videos) becomes one position, G = (H/s, W/s) or
    (T/t, H/s, W/s) and C' = t*s*s*C (channel order: frame, row, column,
    channel), optionally followed by a Dense layer to `output_channels`
    (`conv_after_patching`). A video whose T/t is 1 becomes a 2-D grid (as
    transformers does for optical flow). The grid is flattened row-major to
    (B, M = prod(G), C'), and a position encoding of G (Fourier features
    over 2 or 3 axes, or a learned table) is optionally projected to
    `project_pos_dim` and concatenated to, or added to, the features by a
    `PositionCombiner` (`PositionEncodingMixin`). The layer is built for
    one input shape (the first call); later calls may have another image
    height and width (the other sizes stay): Fourier positions are then
    computed for the actual grid (with the same `max_resolution`, as
    transformers does) and a learned table is resampled bicubically
    (transformers' `interpolate_pos_encoding`).

    Unlike transformers, which takes channels-first inputs, this layer takes
    channels-last images and videos (the Keras convention);
    `spatial_downsample` applies to `"conv1x1"` and `"patches"` only (the
    reference's pixel downsampling strides over the batch axis of 4-D
    inputs).

    Sublayer (weight) names: `conv1x1`, `conv` (stems), `conv_after_patching`
    (Dense, transformers' `conv_after_patches`), `position_encoding` (the
    learned table), `position_combiner/projection` (transformers'
    `positions_projection`).

    Source: Perceiver (arXiv 2103.03206) section 3.2 (ImageNet with
    Fourier features of the pixel grid); Perceiver IO (arXiv 2107.14795)
    section 4.3 and appendix (video patches of 4x4 pixels for multimodal
    autoencoding); transformers `PerceiverImagePreprocessor` (argument
    names, channel order `[features, positions]`); DeepMind
    `io_processors.ImagePreprocessor`.

    Args:
        prep_type: `"pixels"` (default), `"conv1x1"`, `"conv"` or `"patches"`.
        output_channels: int, stem output width C' for `"conv1x1"`/`"conv"`, and
            for `"patches"` with `conv_after_patching`. Defaults to 64.
        spatial_downsample: int, stride of the `"conv1x1"` stem and patch size
            of `"patches"`. Defaults to 1.
        temporal_downsample: int, frames per patch of `"patches"` (videos
            only); must be 1 for the other types. Defaults to 1.
        conv_after_patching: bool, a Dense layer to `output_channels` after
            `"patches"`. Defaults to False.
        conv_padding: `"transformers"` (default, 55x55 at 224) or
            `"deepmind"` (SAME, 56x56) for the `"conv"` stem.
        conv2d_use_batchnorm: bool, BatchNorm in the `"conv"` stem.
            Defaults to True.
        position_encoding_type: `"fourier"` (default) or `"trainable"`.
        num_bands: int, Fourier bands K per axis (`"fourier"` only).
            Defaults to 64, the published ImageNet value.
        max_resolution: tuple of 2 (images) or 3 (videos: T, H, W) ints, or
            None: per-axis resolution that sets the highest Fourier frequency
            (`"fourier"` only); None uses the grid size G. Defaults to None.
            (The published multimodal model uses (16, 56, 56), its patch
            grid: transformers' `image_size` default 56, DeepMind's colab
            `IMG_SZ = 56`.)
        concat_pos: bool, prepend the raw positions to the Fourier features.
            Defaults to True.
        sine_only: bool, sine features only. Defaults to False.
        num_channels: int, width of the learned position table
            (`"trainable"` only). Defaults to 256.
        concat_or_add_pos: `"concat"` (default) or `"add"`; `"add"` needs
            position encodings as wide as C' (use `project_pos_dim=C'`).
        project_pos_dim: int or None, Dense projection width of the position
            encodings before combining; None (default) leaves them as they
            are (transformers' -1).
        kernel_initializer: initializer of `conv_after_patching` (truncated
            normal, stddev 0.02, by default).

    Call arguments:
        inputs: (B, H, W, C) images, or (B, T, H, W, C) videos with
            `"patches"`; any real or integer dtype (cast to the layer's
            compute dtype); all sizes but B must be static; H and W may
            differ from the built shape.

    Returns:
        (B, M, C' + C_pos') for `"concat"`, (B, M, C') for `"add"`, where M =
        prod(G) and C_pos' is `project_pos_dim` or the encoding width: for
        Fourier features `d * num_bands * (1 if sine_only else 2) + (d if
        concat_pos else 0)` with d = len(G), for `"trainable"`
        `num_channels`.

    Raises:
        ValueError: for an unknown `prep_type`, `position_encoding_type` or
            `concat_or_add_pos`, non-positive sizes, `temporal_downsample`
            other than 1 without `"patches"`, a `max_resolution` that is not 2
            or 3 ints or does not match the grid rank, inputs of the wrong
            rank, unknown (None) sizes, sizes not divisible by the patch
            sizes, or inputs whose shape differs from the one the layer was
            built for in more than H and W.

    Example:
    >>> import keras
    >>> from keras_perceiver.preprocessors import ImagePreprocessor
    >>> layer = ImagePreprocessor(num_bands=4)
    >>> tuple(layer(keras.ops.ones((2, 8, 8, 1))).shape)
    (2, 64, 19)
    >>> video = ImagePreprocessor(prep_type="patches", spatial_downsample=4, num_bands=2)
    >>> tuple(video(keras.ops.ones((1, 2, 8, 8, 3))).shape)
    (1, 8, 63)
    """

    def __init__(
        self,
        prep_type="pixels",
        output_channels=64,
        spatial_downsample=1,
        temporal_downsample=1,
        conv_after_patching=False,
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
        kernel_initializer=None,
        **kwargs,
    ):
        output_channels = pop_renamed_argument(kwargs, "out_channels", "output_channels", output_channels, 64)
        super().__init__(**kwargs)
        check_choice("prep_type", prep_type, PREP_TYPES)
        check_positive_int("output_channels", output_channels)
        check_positive_int("spatial_downsample", spatial_downsample)
        check_positive_int("temporal_downsample", temporal_downsample)
        if temporal_downsample != 1 and prep_type != "patches":
            raise ValueError(
                "ImagePreprocessor: `temporal_downsample` applies to prep_type='patches' only. "
                f"Expected temporal_downsample=1. Received: prep_type={prep_type!r}, "
                f"temporal_downsample={temporal_downsample}"
            )
        check_choice("conv_padding", conv_padding, PADDINGS)
        if max_resolution is not None:
            max_resolution = tuple(max_resolution)
            if len(max_resolution) not in (2, 3):
                raise ValueError(
                    "ImagePreprocessor: `max_resolution` must be 2 ints (height, width), 3 ints "
                    f"(time, height, width) or None. Received: max_resolution={max_resolution!r}"
                )
            for i, n in enumerate(max_resolution):
                check_positive_int(f"max_resolution[{i}]", n)
        self.prep_type = prep_type
        self.output_channels = output_channels
        self.spatial_downsample = spatial_downsample
        self.temporal_downsample = temporal_downsample
        self.conv_after_patching = conv_after_patching
        self.conv_padding = conv_padding
        self.conv2d_use_batchnorm = conv2d_use_batchnorm
        self.kernel_initializer = keras.initializers.get(kernel_initializer or default_kernel_initializer())
        self.stem = None
        if prep_type == "conv1x1":
            self.stem = keras.layers.Conv2D(
                output_channels, 1, strides=spatial_downsample, dtype=self.dtype_policy, name="conv1x1"
            )
        elif prep_type == "conv":
            self.stem = ConvDownsample(
                output_channels,
                use_batchnorm=conv2d_use_batchnorm,
                padding=conv_padding,
                dtype=self.dtype_policy,
                name="conv",
            )
        self.patch_projection = None
        if prep_type == "patches" and conv_after_patching:
            self.patch_projection = keras.layers.Dense(
                output_channels,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name="conv_after_patching",
            )
        self._init_position_encoding(
            position_encoding_type, num_bands, max_resolution, concat_pos, sine_only, num_channels,
            concat_or_add_pos, project_pos_dim
        )
        self._index_dims = None
        self._input_shape = None

    # ------------------------------------------------------------------ shapes

    def _check_inputs_shape(self, inputs_shape):
        name = self.__class__.__name__
        inputs_shape = tuple(inputs_shape)
        ranks = (4, 5) if self.prep_type == "patches" else (4,)
        if len(inputs_shape) not in ranks:
            expected = "4 (B, H, W, C) or 5 (B, T, H, W, C)" if len(ranks) == 2 else "4 (B, H, W, C)"
            raise ValueError(
                f"{name}: `inputs` must have rank {expected} for prep_type={self.prep_type!r}. "
                f"Received: inputs.shape={inputs_shape} (rank {len(inputs_shape)})"
            )
        if None in inputs_shape[1:]:
            raise ValueError(
                f"{name}: the input sizes (all but the batch) must be known to encode positions. "
                f"Received: inputs.shape={inputs_shape}"
            )
        if self.prep_type == "patches":
            blocks = (self.spatial_downsample, self.spatial_downsample)
            axes = ("H", "W")
            if len(inputs_shape) == 5:
                blocks = (self.temporal_downsample,) + blocks
                axes = ("T",) + axes
            for axis, size, block in zip(axes, inputs_shape[1:-1], blocks):
                if size % block:
                    raise ValueError(
                        f"{name}: {axis}={size} is not divisible by its patch size {block} "
                        f"(spatial_downsample={self.spatial_downsample}, "
                        f"temporal_downsample={self.temporal_downsample}). "
                        f"Received: inputs.shape={inputs_shape}"
                    )
        return inputs_shape

    def _patch_grid_shape(self, inputs_shape):
        """(B, *G, C') after space-to-depth (before `conv_after_patching`)."""
        s, t = self.spatial_downsample, self.temporal_downsample
        if len(inputs_shape) == 4:
            batch, height, width, channels = inputs_shape
            return (batch, height // s, width // s, s * s * channels)
        batch, time, height, width, channels = inputs_shape
        if time // t == 1:  # a single time step becomes a 2-D grid, as in transformers (optical flow)
            return (batch, height // s, width // s, t * s * s * channels)
        return (batch, time // t, height // s, width // s, t * s * s * channels)

    def _features_shape(self, inputs_shape):
        """(B, *G, C'): the feature grid the positions are encoded for."""
        if self.prep_type == "patches":
            shape = self._patch_grid_shape(inputs_shape)
            if self.patch_projection is not None:
                shape = shape[:-1] + (self.output_channels,)
            return shape
        if self.stem is not None:
            return tuple(self.stem.compute_output_shape(inputs_shape))
        return tuple(inputs_shape)

    def compute_output_shape(self, inputs_shape):
        inputs_shape = self._check_inputs_shape(inputs_shape)
        features_shape = self._features_shape(inputs_shape)
        grid = features_shape[1:-1]
        channels = features_shape[-1]
        if self.concat_or_add_pos == "concat":
            channels += self._position_channels(len(grid))
        return (inputs_shape[0], math.prod(grid), channels)

    # ------------------------------------------------------------------ layer

    def build(self, inputs_shape):
        inputs_shape = self._check_inputs_shape(inputs_shape)
        self._input_shape = inputs_shape[1:]
        if self.stem is not None:
            self.stem.build(inputs_shape)
        if self.patch_projection is not None:
            self.patch_projection.build(self._patch_grid_shape(inputs_shape))
        features_shape = self._features_shape(inputs_shape)
        self._index_dims = tuple(int(n) for n in features_shape[1:-1])
        self._feature_channels = features_shape[-1]
        flat_shape = (inputs_shape[0], math.prod(self._index_dims), self._feature_channels)
        self._build_position_encoding(features_shape, flat_shape, self.max_resolution)
        self.built = True

    @property
    def index_dims(self):
        """The position grid G of the built layer, e.g. (H, W) or (T/t, H/s, W/s); None before building."""
        return self._index_dims

    def _check_call_shape(self, shape):
        """The input shape of a call: the built one, or another (H, W) with everything else equal."""
        name = self.__class__.__name__
        built = self._input_shape
        spatial = (len(built) - 3, len(built) - 2)  # the H and W axes (without the batch)
        if any(shape[i + 1] != built[i] for i in range(len(built)) if i not in spatial):
            expected = ", ".join("H" if i == spatial[0] else "W" if i == spatial[1] else str(n)
                                 for i, n in enumerate(built))
            raise ValueError(
                f"{name}: expected inputs of shape (B, {expected}): the shape the layer was built for, "
                f"with any image height H and width W. Received: inputs.shape={shape}"
            )
        return self._check_inputs_shape(shape)

    def call(self, inputs, training=None):
        name = self.__class__.__name__
        check_rank("inputs", inputs, len(self._input_shape) + 1, name)
        check_numeric_dtype("inputs", inputs, name)
        shape = self._check_call_shape(tuple(inputs.shape))
        features_shape = self._features_shape(shape)
        index_dims = tuple(int(n) for n in features_shape[1:-1])
        features = ops.cast(inputs, self.compute_dtype)
        if self.stem is not None:
            features = self.stem(features, training=training)
        elif self.prep_type == "patches":
            features = space_to_depth(features, self.spatial_downsample, self.temporal_downsample)
            features = ops.reshape(features, (-1, *index_dims, features.shape[-1]))
            if self.patch_projection is not None:
                features = self.patch_projection(features)
        flat = ops.reshape(features, (-1, math.prod(index_dims), self._feature_channels))
        if index_dims != self._index_dims and self.position_encoding_type == "fourier":
            # Another image size: Fourier features of the actual grid (transformers computes them per call).
            position_encodings = self.position_encoding(features, positions=linear_positions(index_dims))
        else:  # the built grid, or a learned table (resampled to another grid by the layer)
            position_encodings = self.position_encoding(features)
        return self.position_combiner(flat, position_encodings)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "prep_type": self.prep_type,
                "output_channels": self.output_channels,
                "spatial_downsample": self.spatial_downsample,
                "temporal_downsample": self.temporal_downsample,
                "conv_after_patching": self.conv_after_patching,
                "conv_padding": self.conv_padding,
                "conv2d_use_batchnorm": self.conv2d_use_batchnorm,
                **self._position_encoding_config(),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
