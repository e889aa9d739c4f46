"""HiP's learned positions per modality: {m: x} -> ({m: x + pos_m}, {m: pos_m}), pos_m the MAE queries."""

import keras
from keras import ops

from keras_perceiver.layers.initializers import clone_initializer
from keras_perceiver.layers.modality_embedder import check_modality_name, hip_initializer
from keras_perceiver.layers.modality_grouper import check_index_dims
from keras_perceiver.layers.trainable_position_encoding import TrainablePositionEncoding
from keras_perceiver.validation import check_rank


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

    Source: HiP (arXiv 2202.10890) section 3 (learned position embeddings
    with MAE); official `perceiver_blocks.py` `PositionEncoder`.

    Args:
        index_dims: dict of modality name -> M_m, in the input dict's order.
        use_projection: bool, add the bias-free E x E projection. Defaults
            to False.
        initializer: initializer of the position tables; defaults to HiP's
            `VarianceScaling(1.0, "fan_in", "truncated_normal")` (fan_in M_m).
        kernel_initializer: initializer of the projections; defaults to the
            same VarianceScaling (fan_in E).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: dict of modality name -> (B, M_m, E) tensor.

    Returns:
        (dict of name -> inputs + pos_m, dict of name -> pos_m), both
        (B, M_m, E).

    Raises:
        ValueError: for missing or unexpected modalities, inputs that are not
            rank 3, an M other than `index_dims`, or modalities of different
            widths.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import ModalityPositionEncoder
    >>> encoder = ModalityPositionEncoder(index_dims={"image": 10}, use_projection=True)
    >>> with_positions, positions = encoder({"image": keras.ops.zeros((2, 10, 8))})
    >>> tuple(with_positions["image"].shape), tuple(positions["image"].shape)
    ((2, 10, 8), (2, 10, 8))
    """

    def __init__(self, index_dims, use_projection=False, initializer=None, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        name = self.__class__.__name__
        check_index_dims(index_dims, name)
        for modality in index_dims:
            check_modality_name(modality, name)
        self.index_dims = {str(m): int(size) for m, size in index_dims.items()}
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
                projection = keras.layers.Dense(
                    self._width,
                    use_bias=False,
                    kernel_initializer=clone_initializer(self.kernel_initializer),
                    dtype=self.dtype_policy,
                    name=f"projection_{modality}",
                )
                projection.build((None, size, self._width))
                self.projections[modality] = projection
        self.built = True

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
        with_positions, positions = {}, {}
        for modality, size in self.index_dims.items():
            x = inputs[modality]
            check_rank(f"inputs[{modality!r}]", x, 3, name)
            if x.shape[1] is not None and x.shape[1] != size:
                raise ValueError(
                    f"{name}: `inputs[{modality!r}]` must have M={size} elements (index_dims). "
                    f"Received: shape={tuple(x.shape)}"
                )
            pos = self.positions[modality](x)
            if self.use_projection:
                pos = self.projections[modality](pos)
            positions[modality] = pos
            with_positions[modality] = ops.add(x, ops.cast(pos, x.dtype))
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
            }
        )
        return config
