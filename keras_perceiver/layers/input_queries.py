"""Decoder queries taken from the preprocessed inputs."""

import keras
from keras import ops

from keras_perceiver.validation import check_numeric_dtype, check_rank


@keras.saving.register_keras_serializable(package="keras_perceiver")
class InputQueries(keras.layers.Layer):
    """Queries = the preprocessed inputs (B, M, C), optionally with positions appended.

    One output per input element: optical flow (queries are the
    preprocessed frame-pair patches) and entity sets. With `output_indices`
    only those elements are decoded.

    Source: transformers `PerceiverOpticalFlowDecoder` /
    `PerceiverBasicDecoder(concat_preprocessed_input=True)`.

    Call arguments:
        inputs: (B, M, C) tensor.
        position_encodings: optional (B, M, P) tensor concatenated on the
            channel axis.
        output_indices: optional (O,) or (B, O) integer indices along M.

    Returns:
        (B, M or O, C [+ P]) tensor.

    Raises:
        ValueError: if `inputs` or `position_encodings` is not rank 3, or
            `position_encodings` does not have the same (B, M).
        TypeError: for a non-numeric dtype.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import InputQueries
    >>> tuple(InputQueries()(keras.ops.ones((2, 5, 3))).shape)
    (2, 5, 3)
    """

    def call(self, inputs, position_encodings=None, output_indices=None):
        name = self.__class__.__name__
        check_numeric_dtype("inputs", inputs, name)
        check_rank("inputs", inputs, 3, name)
        queries = inputs
        if position_encodings is not None:
            check_numeric_dtype("position_encodings", position_encodings, name)
            check_rank("position_encodings", position_encodings, 3, name)
            if tuple(position_encodings.shape[:2]) != tuple(inputs.shape[:2]) and None not in (
                tuple(position_encodings.shape[:2]) + tuple(inputs.shape[:2])
            ):
                raise ValueError(
                    "InputQueries: `position_encodings` must match `inputs` on (B, M). Received: "
                    f"position_encodings.shape={tuple(position_encodings.shape)}, "
                    f"inputs.shape={tuple(inputs.shape)}"
                )
            queries = ops.concatenate([queries, ops.cast(position_encodings, queries.dtype)], axis=-1)
        if output_indices is not None:
            indices = ops.cast(output_indices, "int32")
            if len(indices.shape) == 1:
                queries = ops.take(queries, indices, axis=1)
            else:
                queries = ops.take_along_axis(queries, indices[..., None], axis=1)
        return queries

    def compute_output_shape(self, inputs_shape, position_encodings_shape=None, output_indices_shape=None):
        channels = inputs_shape[-1]
        if position_encodings_shape is not None:
            channels += position_encodings_shape[-1]
        num = inputs_shape[1] if output_indices_shape is None else output_indices_shape[-1]
        return (inputs_shape[0], num, channels)
