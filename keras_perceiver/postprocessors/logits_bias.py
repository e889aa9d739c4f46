"""Learned per-token bias of tied output logits (the masked LM's output bias)."""

import keras
from keras import ops

from keras_perceiver.validation import check_numeric_dtype, check_positive_int, check_rank


@keras.saving.register_keras_serializable(package="keras_perceiver")
class LogitsBias(keras.layers.Layer):
    """Logits (B, O, vocab_size) -> logits + bias, with a learned (vocab_size,) bias (zeros at first).

    The masked LM decodes its hidden states with the transposed token
    embedding of the backbone's `TextPreprocessor` (tied weights:
    `text_preprocessor(hidden, reverse=True)`). The embedding belongs to the
    backbone, shared by every head on it; this bias belongs to the masked-LM
    head. Together they are transformers' `PerceiverEmbeddingDecoder`
    (`matmul(hidden, embeddings^T) + bias`).

    Source: transformers `PerceiverEmbeddingDecoder` (its `bias`); DeepMind
    `io_processors.EmbeddingDecoder` (`embedding_decoder/bias`).

    Args:
        vocab_size: int, V, the width of the logits.

    Call arguments:
        inputs: (B, O, vocab_size) logits.

    Returns:
        (B, O, vocab_size) logits, `inputs + bias`.

    Raises:
        ValueError: for a non-positive `vocab_size`, or inputs that are not
            rank 3 with `vocab_size` channels.

    Example:
    >>> import keras
    >>> from keras_perceiver.postprocessors import LogitsBias
    >>> layer = LogitsBias(vocab_size=262)
    >>> tuple(layer(keras.ops.ones((2, 5, 262))).shape), tuple(layer.bias.shape)
    ((2, 5, 262), (262,))
    """

    def __init__(self, vocab_size, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("vocab_size", vocab_size)
        self.vocab_size = vocab_size

    def build(self, inputs_shape=None):
        self.bias = self.add_weight(name="bias", shape=(self.vocab_size,), initializer="zeros")
        self.built = True

    def call(self, inputs):
        name = self.__class__.__name__
        check_numeric_dtype("inputs", inputs, name, floating=True)
        check_rank("inputs", inputs, 3, name)
        if inputs.shape[-1] != self.vocab_size:
            raise ValueError(
                f"{name}: logits must have vocab_size={self.vocab_size} channels. "
                f"Received: inputs.shape={tuple(inputs.shape)}"
            )
        return inputs + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config["vocab_size"] = self.vocab_size
        return config
