"""Decoder queries made of Fourier features of an output grid."""

import keras

from keras_perceiver.layers.fourier_position_encoding import FourierPositionEncoding
from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class FourierQueries(keras.layers.Layer):
    """Queries (B, O, E) = Fourier features of output positions, optionally projected.

    Used for dense outputs (optical flow, video/audio reconstruction): one
    query per output point, and a subset of points can be decoded with
    `output_indices` (training on subsampled outputs).

    Source: transformers `PerceiverBasicDecoder(position_encoding_type="fourier")`.

    Args:
        index_dims: tuple of ints, the output grid shape.
        num_bands: int, frequency bands per axis.
        max_resolution: tuple of ints or None; defaults to `index_dims`.
        concat_pos: bool, prepend raw positions. Defaults to True.
        sine_only: bool. Defaults to False.
        project_pos_dim: int or None, Dense projection width E; None keeps
            the Fourier width.
        kernel_initializer: initializer of the projection.

    Call arguments:
        inputs: tensor whose leading dimension is the batch B.
        output_indices: optional (O,) or (B, O) integer indices into the
            flattened grid.

    Returns:
        (B, O, E) tensor.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import FourierQueries
    >>> tuple(FourierQueries(index_dims=(4, 4), num_bands=2)(keras.ops.ones((2, 3, 1))).shape)
    (2, 16, 10)
    """

    def __init__(
        self,
        index_dims,
        num_bands,
        max_resolution=None,
        concat_pos=True,
        sine_only=False,
        project_pos_dim=None,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("project_pos_dim", project_pos_dim, allow_none=True)
        self.index_dims = tuple(index_dims)
        self.num_bands = num_bands
        self.max_resolution = tuple(max_resolution) if max_resolution else None
        self.concat_pos = concat_pos
        self.sine_only = sine_only
        self.project_pos_dim = project_pos_dim
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_kernel_initializer()
        )
        self.position_encoding = FourierPositionEncoding(
            num_bands,
            index_dims=index_dims,
            max_resolution=max_resolution,
            concat_pos=concat_pos,
            sine_only=sine_only,
            dtype=self.dtype_policy,
            name="position_encoding",
        )
        self.projection = None
        if project_pos_dim is not None:
            self.projection = keras.layers.Dense(
                project_pos_dim,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name="projection",
            )

    def build(self, inputs_shape=None, output_indices_shape=None):
        if self.projection is not None:
            self.projection.build((None, None, self.position_encoding.output_channels))
        self.built = True

    def call(self, inputs, output_indices=None):
        queries = self.position_encoding(inputs, output_indices=output_indices)
        if self.projection is not None:
            queries = self.projection(queries)
        return queries

    def compute_output_shape(self, inputs_shape, output_indices_shape=None):
        shape = self.position_encoding.compute_output_shape(
            inputs_shape, output_indices_shape=output_indices_shape
        )
        return shape[:2] + (self.project_pos_dim or shape[2],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "index_dims": self.index_dims,
                "num_bands": self.num_bands,
                "max_resolution": self.max_resolution,
                "concat_pos": self.concat_pos,
                "sine_only": self.sine_only,
                "project_pos_dim": self.project_pos_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
