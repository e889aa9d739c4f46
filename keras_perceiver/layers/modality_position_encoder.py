"""HiP's learned positions per modality: {m: x} -> ({m: x + pos_m}, {m: pos_m}), pos_m the MAE queries."""

import keras
import numpy as np
from keras import ops

from keras_perceiver.layers.fourier_position_encoding import fourier_features
from keras_perceiver.layers.initializers import clone_initializer
from keras_perceiver.layers.modality_embedder import check_modality_name, hip_initializer
from keras_perceiver.layers.modality_grouper import check_index_dims
from keras_perceiver.layers.trainable_position_encoding import TrainablePositionEncoding
from keras_perceiver.validation import check_choice, check_modality_values, check_positive_int

POSITION_ENCODING_TYPES = ("learned", "fourier")


def _check_fourier_positions(layer_name, fourier_positions, index_dims):
    """{m: float32 (M_m, d) array} from `fourier_positions`, checked against `index_dims`."""
    if not isinstance(fourier_positions, dict) or set(fourier_positions) != set(index_dims):
        received = list(fourier_positions) if isinstance(fourier_positions, dict) else fourier_positions
        raise ValueError(
            f"{layer_name}: position_encoding_type='fourier' needs `fourier_positions`, a dict of every "
            f"modality {list(index_dims)} -> its (M_m, d) coordinates. Received: {received!r}"
        )
    positions = {}
    for m, size in index_dims.items():
        x = np.asarray(fourier_positions[m], dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != size or x.shape[1] < 1 or not np.all(np.isfinite(x)):
            raise ValueError(
                f"{layer_name}: `fourier_positions[{m!r}]` must be finite coordinates of shape (M_m, d) = "
                f"({size}, d). Received: shape={x.shape}"
            )
        positions[m] = x
    return positions


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ModalityPositionEncoder(keras.layers.Layer):
    """Add a learned position encoding to every modality and return the encodings too.

    For each modality m (inputs (B, M_m, E)): a `TrainablePositionEncoding`
    `positions_<m>` of shape (M_m, E), optionally followed by a bias-free
    Dense E -> E `projection_<m>`; the result pos_m (B, M_m, E) is added to
    the inputs and also returned: HiP uses it as the masked auto-encoding
    (MAE) queries of its reconstruction head.

    This is exactly the official `PositionEncoder`, including two quirks:
    the raw encodings always have E channels (the official
    `num_position_encoding_channels` only switches the projection on when it
    differs from E, see `HiPBackbone`), and the projection is not shared
    between modalities: Haiku names the k-th one `position_encoding_linear_k`
    after the modality's position in the input dict.

    HiP-Fourier (`position_encoding_type="fourier"`, the paper's ablation
    with Fourier features; not in the official release): pos_m is a
    bias-free Dense `fourier_projection_<m>` of the fixed Fourier features
    (Perceiver's `fourier_features`, positions concatenated) of every
    element's coordinates `fourier_positions[m]` (M_m, d), e.g. a pixel's
    original (row, column) in [-1, 1]. Only the projection is learned.

    Source: HiP (arXiv 2202.10890) section 3 (learned position embeddings
    with MAE) and its Fourier-feature ablation; official
    `perceiver_blocks.py` `PositionEncoder`.

    Args:
        index_dims: dict of modality name -> M_m, in the input dict's order.
        use_projection: bool, add the bias-free E x E projection. Defaults
            to False.
        initializer: initializer of the position tables; defaults to HiP's
            `VarianceScaling(1.0, "fan_in", "truncated_normal")` (fan_in M_m).
        kernel_initializer: initializer of the projections; defaults to the
            same VarianceScaling (fan_in E, or the Fourier channels).
        position_encoding_type: `"learned"` (default, HiP's) or `"fourier"`.
        fourier_positions: dict of modality name -> (M_m, d) coordinates
            (nested lists or arrays), required for `"fourier"`; the
            coordinates are stored in the config.
        num_bands: int, Fourier frequency bands per axis. Defaults to 16.
        max_resolution: None or a tuple of d ints, the resolution per axis
            (frequencies up to max_resolution / 2). Defaults to None: per
            modality, round(M_m ** (1 / d)) on every axis (the side of a
            d-dimensional grid of M_m points).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: dict of modality name -> (B, M_m, E) tensor.

    Returns:
        (dict of name -> inputs + pos_m, dict of name -> pos_m), both
        (B, M_m, E).

    Raises:
        ValueError: for missing or unexpected modalities, inputs that are not
            rank 3, an M other than `index_dims`, modalities of different
            widths, an unknown `position_encoding_type`, or Fourier positions
            missing or not of shape (M_m, d).

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import ModalityPositionEncoder
    >>> encoder = ModalityPositionEncoder(index_dims={"image": 10}, use_projection=True)
    >>> with_positions, positions = encoder({"image": keras.ops.zeros((2, 10, 8))})
    >>> tuple(with_positions["image"].shape), tuple(positions["image"].shape)
    ((2, 10, 8), (2, 10, 8))
    """

    def __init__(
        self,
        index_dims,
        use_projection=False,
        initializer=None,
        kernel_initializer=None,
        position_encoding_type="learned",
        fourier_positions=None,
        num_bands=16,
        max_resolution=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = self.__class__.__name__
        check_index_dims(index_dims, name)
        for modality in index_dims:
            check_modality_name(modality, name)
        self.index_dims = {str(m): int(size) for m, size in index_dims.items()}
        check_choice("position_encoding_type", position_encoding_type, POSITION_ENCODING_TYPES)
        check_positive_int("num_bands", num_bands)
        self.position_encoding_type = position_encoding_type
        self.num_bands = int(num_bands)
        self.max_resolution = None if max_resolution is None else tuple(int(r) for r in max_resolution)
        self.fourier_positions = None
        if position_encoding_type == "fourier":
            self.fourier_positions = _check_fourier_positions(name, fourier_positions, self.index_dims)
        self.use_projection = bool(use_projection)
        self.initializer = keras.initializers.get(initializer or hip_initializer())
        self.kernel_initializer = keras.initializers.get(kernel_initializer or hip_initializer())

    def build(self, inputs_shape):
        name = self.__class__.__name__
        self._check_modalities(inputs_shape)
        widths = {inputs_shape[m][-1] for m in self.index_dims}
        if len(widths) != 1:
            raise ValueError(
                f"{name}: every modality must have the same width E. "
                f"Received: { {m: inputs_shape[m][-1] for m in self.index_dims} }"
            )
        self._width = widths.pop()
        self.positions, self.projections = {}, {}
        if self.position_encoding_type == "fourier":
            self._build_fourier()
            self.built = True
            return
        for modality, size in self.index_dims.items():
            positions = TrainablePositionEncoding(
                index_dims=size,
                num_channels=self._width,
                initializer=clone_initializer(self.initializer),
                dtype=self.dtype_policy,
                name=f"positions_{modality}",
            )
            positions.build(inputs_shape[modality])
            self.positions[modality] = positions
            if self.use_projection:
                projection = self._projection(f"projection_{modality}")
                projection.build((None, size, self._width))
                self.projections[modality] = projection
        self.built = True

    def _projection(self, name):
        """A bias-free Dense to the position width (learned positions' projection, Fourier features')."""
        return keras.layers.Dense(
            self._width,
            use_bias=False,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def _fourier_features(self, modality):
        coordinates = self.fourier_positions[modality]
        size, dims = coordinates.shape
        resolution = self.max_resolution or (max(int(round(size ** (1.0 / dims))), 1),) * dims
        if len(resolution) != dims:
            raise ValueError(
                f"{self.__class__.__name__}: `max_resolution` needs one entry per coordinate axis, "
                f"d={dims} for {modality!r}. Received: max_resolution={self.max_resolution}"
            )
        return fourier_features(coordinates, self.num_bands, resolution)

    def _build_fourier(self):
        self.features = {}
        for modality, size in self.index_dims.items():
            features = self._fourier_features(modality)
            self.features[modality] = features
            projection = self._projection(f"fourier_projection_{modality}")
            projection.build((None, size, features.shape[-1]))
            self.projections[modality] = projection

    def _check_modalities(self, inputs):
        name = self.__class__.__name__
        if not isinstance(inputs, dict) or set(inputs) != set(self.index_dims):
            received = list(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(
                f"{name}: `inputs` must be a dict of the modalities {list(self.index_dims)}. "
                f"Received: {received}"
            )

    def call(self, inputs):
        name = self.__class__.__name__
        self._check_modalities(inputs)
        widths = {m: self._width for m in self.index_dims}
        check_modality_values("inputs", inputs, name, index_dims=self.index_dims, channels=widths)
        with_positions, positions = {}, {}
        for modality, size in self.index_dims.items():
            x = inputs[modality]
            if self.position_encoding_type == "fourier":
                features = ops.cast(self.features[modality][None], self.compute_dtype)
                pos = ops.broadcast_to(
                    self.projections[modality](features), (ops.shape(x)[0], size, self._width)
                )
            else:
                pos = self.positions[modality](x)
            if self.use_projection and self.position_encoding_type == "learned":
                pos = self.projections[modality](pos)
            positions[modality] = pos
            with_positions[modality] = x + ops.cast(pos, x.dtype)  # `+`: see MLPBlock.call
        return with_positions, positions

    def compute_output_shape(self, inputs_shape):
        shapes = {m: tuple(inputs_shape[m]) for m in self.index_dims}
        return shapes, dict(shapes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "index_dims": dict(self.index_dims),
                "use_projection": self.use_projection,
                "initializer": keras.initializers.serialize(self.initializer),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "position_encoding_type": self.position_encoding_type,
                "fourier_positions": None
                if self.fourier_positions is None
                else {m: x.tolist() for m, x in self.fourier_positions.items()},
                "num_bands": self.num_bands,
                "max_resolution": self.max_resolution,
            }
        )
        return config
