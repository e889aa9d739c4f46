"""Position encodings of a preprocessor: Fourier features or a learned table, projected, concat or add."""

from keras_perceiver.layers.fourier_position_encoding import FourierPositionEncoding
from keras_perceiver.layers.position_combiner import PositionCombiner
from keras_perceiver.layers.trainable_position_encoding import TrainablePositionEncoding
from keras_perceiver.validation import check_choice, check_positive_int

POSITION_ENCODING_TYPES = ("fourier", "trainable")


class PositionEncodingMixin:
    """The position-encoding half of a `keras.layers.Layer` preprocessor (image, audio).

    A preprocessor maps its input to features on a grid G (B, *G, C') and
    flattens them to (B, M = prod(G), C'); this mixin adds the positions of
    G: a `FourierPositionEncoding` (`"fourier"`) or a
    `TrainablePositionEncoding` (`"trainable"`), optionally projected to
    `project_pos_dim` and concatenated to, or added to, the features by a
    `PositionCombiner`. The layer calls `_init_position_encoding` in
    `__init__`, `_build_position_encoding` in `build`, `position_combiner`
    and `position_encoding` in `call`, `_position_channels` in
    `compute_output_shape`, and adds `_position_encoding_config()` to its
    config.

    Sublayer (weight) names: `position_encoding` (the learned table, made
    in `build`) and `position_combiner/projection` (transformers'
    `positions_projection`, made in `__init__`), attributes of the layer
    itself, so checkpoints and SavedModels of the preprocessors keep their
    variable paths.

    Source: transformers `PerceiverImagePreprocessor` /
    `PerceiverAudioPreprocessor` (`position_encoding_type`,
    `concat_or_add_pos`, `project_pos_dim`); DeepMind
    `io_processors.ImagePreprocessor` / `AudioPreprocessor`.

    Arguments of `_init_position_encoding` (the preprocessors' arguments of
    the same names):
        position_encoding_type: `"fourier"` or `"trainable"`.
        num_bands: int, Fourier bands K per axis (`"fourier"` only).
        max_resolution: the preprocessor's own value (stored as given; the
            per-axis resolutions are passed to `_build_position_encoding`).
        concat_pos: bool, prepend the raw positions to the Fourier features.
        sine_only: bool, sine features only.
        num_channels: int, width of the learned table (`"trainable"` only).
        concat_or_add_pos: `"concat"` or `"add"`.
        project_pos_dim: int or None, Dense projection width of the position
            encodings; None leaves them as they are.

    Raises:
        ValueError: (`_init_position_encoding`) for an unknown
            `position_encoding_type` or `concat_or_add_pos`, or non-positive
            `num_bands`, `num_channels` or `project_pos_dim`;
            (`_build_position_encoding`) for Fourier `max_resolution` without
            one entry per grid axis, or `"add"` with widths that differ.

    Example:
    >>> from keras_perceiver.preprocessors.position_encoding_mixin import PositionEncodingMixin
    >>> import keras
    >>> class Positions(PositionEncodingMixin, keras.layers.Layer):
    ...     def __init__(self, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self._init_position_encoding("fourier", 2, None, True, False, 8, "concat", None)
    ...     def build(self, inputs_shape):
    ...         self._build_position_encoding(inputs_shape, inputs_shape, None)
    ...     def call(self, inputs):
    ...         return self.position_combiner(inputs, self.position_encoding(inputs))
    >>> tuple(Positions()(keras.ops.ones((2, 5, 3))).shape)
    (2, 5, 8)
    """

    def _init_position_encoding(
        self,
        position_encoding_type,
        num_bands,
        max_resolution,
        concat_pos,
        sine_only,
        num_channels,
        concat_or_add_pos,
        project_pos_dim,
    ):
        check_choice("position_encoding_type", position_encoding_type, POSITION_ENCODING_TYPES)
        check_positive_int("num_bands", num_bands)
        check_positive_int("num_channels", num_channels)
        check_choice("concat_or_add_pos", concat_or_add_pos, ("concat", "add"))
        check_positive_int("project_pos_dim", project_pos_dim, allow_none=True)
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

    def _position_channels(self, num_dims):
        """C_pos': the width of the (projected) position encodings of a `num_dims`-D grid."""
        if self.project_pos_dim is not None:
            return self.project_pos_dim
        if self.position_encoding_type == "trainable":
            return self.num_channels
        width = num_dims * self.num_bands * (1 if self.sine_only else 2)
        return width + (num_dims if self.concat_pos else 0)

    def _build_position_encoding(self, features_shape, flat_shape, max_resolution):
        """Make and build `position_encoding` for the grid of `features_shape` (B, *G, C'), and build
        `position_combiner` for the flat features `flat_shape` (B, M, C').

        `max_resolution`: per-axis Fourier resolutions (one per axis of G) or
        None (the grid size G).
        """
        index_dims = tuple(int(n) for n in features_shape[1:-1])
        if self.position_encoding_type == "fourier":
            if max_resolution is not None and len(max_resolution) != len(index_dims):
                raise ValueError(
                    f"{self.__class__.__name__}: `max_resolution` needs one entry per axis of the "
                    f"{len(index_dims)}-D position grid {index_dims}. "
                    f"Received: max_resolution={max_resolution}"
                )
            self.position_encoding = FourierPositionEncoding(
                num_bands=self.num_bands,
                index_dims=index_dims,
                max_resolution=max_resolution,
                concat_pos=self.concat_pos,
                sine_only=self.sine_only,
                dtype=self.dtype_policy,
                name="position_encoding",
            )
        else:
            self.position_encoding = TrainablePositionEncoding(
                index_dims=index_dims,
                num_channels=self.num_channels,
                dtype=self.dtype_policy,
                name="position_encoding",
            )
        self.position_encoding.build(features_shape)
        position_shape = self.position_encoding.compute_output_shape(features_shape)
        self.position_combiner.build(flat_shape, position_shape)

    def _position_encoding_config(self):
        """The position-encoding entries of the preprocessor's `get_config()`."""
        return {
            "position_encoding_type": self.position_encoding_type,
            "num_bands": self.num_bands,
            "max_resolution": self.max_resolution,
            "concat_pos": self.concat_pos,
            "sine_only": self.sine_only,
            "num_channels": self.num_channels,
            "concat_or_add_pos": self.concat_or_add_pos,
            "project_pos_dim": self.project_pos_dim,
        }
