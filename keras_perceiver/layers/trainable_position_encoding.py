"""Learned (trainable) position encoding."""

import keras
import numpy as np
from keras import ops

from keras_perceiver.layers.bicubic_interpolation import bicubic_resize_grid
from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.layers.position_selection import select_positions
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class TrainablePositionEncoding(keras.layers.Layer):
    """A learned vector per position of an index grid, broadcast over the batch.

    For 1-D `index_dims` (text), inputs shorter than the table use its first
    M rows. For a 2-D grid, inputs of another (H, W) get the table resampled
    bicubically to (H, W) (transformers' `interpolate_pos_encoding`, PyTorch's
    bicubic with `align_corners=False`), so that an image model runs on other
    image sizes; other N-D grids must equal `index_dims`.

    Source: transformers `PerceiverTrainablePositionEncoding` (and its
    `interpolate_pos_encoding`); DeepMind
    `position_encoding.TrainablePositionEncoding`.

    Args:
        index_dims: int or tuple of ints, the grid shape (P = prod).
        num_channels: int, C_pos.
        initializer: initializer of the (P, C_pos) table; truncated normal
            with stddev 0.02 by default.

    Call arguments:
        inputs: (B, *index_shape, C) tensor whose positions are encoded.
        output_indices: optional (O,) or (B, O) integer indices into the
            flattened table.

    Returns:
        (B, M, C_pos) with M = prod(index_shape), or (B, O, C_pos).

    Raises:
        ValueError: if the inputs have more positions than the table, an
            unknown (None) 2-D grid size that differs from `index_dims`, or a
            3-D or larger index shape other than `index_dims`.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import TrainablePositionEncoding
    >>> pe = TrainablePositionEncoding(index_dims=16, num_channels=8)
    >>> tuple(pe(keras.ops.ones((2, 10, 3))).shape)
    (2, 10, 8)
    """

    def __init__(self, index_dims, num_channels, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(index_dims, (list, tuple)) and index_dims:
            for i, n in enumerate(index_dims):
                check_positive_int(f"index_dims[{i}]", n)
        else:
            check_positive_int("index_dims", index_dims)
        index_dims = tuple(index_dims) if isinstance(index_dims, (list, tuple)) else (index_dims,)
        check_positive_int("num_channels", num_channels)
        self.index_dims = index_dims
        self.num_channels = num_channels
        self.initializer = keras.initializers.get(initializer or default_kernel_initializer())

    @property
    def num_positions(self):
        return int(np.prod(self.index_dims))

    def build(self, inputs_shape=None, output_indices_shape=None):
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(self.num_positions, self.num_channels),
            initializer=clone_initializer(self.initializer),
        )
        self.built = True

    def _num_used(self, inputs):
        index_shape = tuple(inputs.shape[1:-1])
        name = self.__class__.__name__
        if len(self.index_dims) == 1 and len(index_shape) == 1:
            length = index_shape[0]
            if length is not None and length > self.num_positions:
                raise ValueError(
                    f"{name}: inputs have {length} positions but the table holds "
                    f"{self.num_positions}. Received: inputs.shape={tuple(inputs.shape)}"
                )
            return length if length is not None else ops.shape(inputs)[1]
        if index_shape != self.index_dims and not self._resamples(index_shape):
            raise ValueError(
                f"{name}: inputs' index shape must equal index_dims={self.index_dims}. "
                f"Received: inputs.shape={tuple(inputs.shape)}"
            )
        return self.num_positions

    def _resamples(self, index_shape):
        """Whether inputs of grid `index_shape` use the table resampled (a 2-D grid of another size)."""
        return (
            len(self.index_dims) == 2
            and len(index_shape) == 2
            and None not in index_shape
            and index_shape != self.index_dims
        )

    def call(self, inputs, output_indices=None):
        table = ops.cast(self.position_embeddings, self.compute_dtype)
        batch_size = ops.shape(inputs)[0]
        index_shape = tuple(inputs.shape[1:-1])
        if output_indices is None and self._resamples(index_shape):
            table = bicubic_resize_grid(table, self.index_dims, index_shape)
        elif output_indices is None:
            table = table[: self._num_used(inputs)]
        return select_positions(table, batch_size, output_indices)

    def compute_output_shape(self, inputs_shape, output_indices_shape=None):
        if output_indices_shape is not None:
            return (inputs_shape[0], output_indices_shape[-1], self.num_channels)
        if len(self.index_dims) == 1 and len(inputs_shape) == 3:
            return (inputs_shape[0], inputs_shape[1], self.num_channels)
        if self._resamples(tuple(inputs_shape[1:-1])):
            return (inputs_shape[0], int(np.prod(inputs_shape[1:-1])), self.num_channels)
        return (inputs_shape[0], self.num_positions, self.num_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "index_dims": self.index_dims,
                "num_channels": self.num_channels,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
