"""Output side of a Perceiver classifier: the single decoder query's output becomes the logits."""

import keras

from keras_perceiver.validation import check_nonempty_index, check_numeric_dtype, check_rank


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ClassificationPostprocessor(keras.layers.Layer):
    """Decoder outputs (B, O, K) -> logits (B, K), the output of the first query.

    A classifier decodes one learned query (O = 1) whose output the decoder
    already projects to K classes (`output_channels=K`); this layer drops
    the query axis. It has no weights: the class projection that
    transformers' postprocessor applies (`nn.Linear(in_channels,
    num_labels)` before `logits[:, 0, :]`) is the decoder's
    `output_projection` here, as in transformers' `final_project=True`
    classification decoder.

    Source: transformers `PerceiverClassificationPostprocessor` and
    `PerceiverClassificationDecoder` (`logits[:, 0, :]`).

    Call arguments:
        inputs: (B, O, K) decoder outputs, O >= 1 (normally 1).

    Returns:
        (B, K) logits, `inputs[:, 0, :]`.

    Raises:
        ValueError: if `inputs` is not rank 3, or has no queries (O = 0).

    Example:
    >>> import keras
    >>> from keras_perceiver.postprocessors import ClassificationPostprocessor
    >>> tuple(ClassificationPostprocessor()(keras.ops.ones((2, 1, 10))).shape)
    (2, 10)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def call(self, inputs):
        name = self.__class__.__name__
        check_numeric_dtype("inputs", inputs, name)
        check_rank("inputs", inputs, 3, name)
        check_nonempty_index("inputs", inputs, name)
        return inputs[:, 0, :]
