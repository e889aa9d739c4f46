"""Learned decoder queries."""

import keras
from keras import ops

from keras_perceiver.layers.position_selection import select_positions
from keras_perceiver.layers.trainable_position_encoding import TrainablePositionEncoding
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class TrainableQueries(TrainablePositionEncoding):
    """`num_queries` learned output queries (B, O, E), independent of the inputs.

    E.g. one query for classification (transformers
    `PerceiverClassificationDecoder` with a trainable position encoding of
    `index_dims=1`).

    Args:
        num_queries: int, O.
        num_channels: int, E.
        initializer: initializer of the (O, E) queries.

    Call arguments:
        inputs: tensor whose leading dimension is the batch B.
        output_indices: optional (O',) or (B, O') integer indices selecting
            a subset of the queries.

    Returns:
        (B, O, E) or (B, O', E) tensor.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import TrainableQueries
    >>> tuple(TrainableQueries(num_queries=1, num_channels=16)(keras.ops.ones((3, 7, 2))).shape)
    (3, 1, 16)
    """

    def __init__(self, num_queries, num_channels, initializer=None, **kwargs):
        kwargs.pop("index_dims", None)
        check_positive_int("num_queries", num_queries)
        super().__init__(index_dims=num_queries, num_channels=num_channels, initializer=initializer, **kwargs)
        self.num_queries = num_queries

    def call(self, inputs, output_indices=None):
        table = ops.cast(self.position_embeddings, self.compute_dtype)
        return select_positions(table, ops.shape(inputs)[0], output_indices)

    def compute_output_shape(self, inputs_shape, output_indices_shape=None):
        num = self.num_queries if output_indices_shape is None else output_indices_shape[-1]
        return (inputs_shape[0], num, self.num_channels)

    def get_config(self):
        config = super().get_config()
        del config["index_dims"]
        config["num_queries"] = self.num_queries
        return config
