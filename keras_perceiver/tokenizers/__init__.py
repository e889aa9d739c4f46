"""Tokenizers: the detachable `tf.data` side that turns raw text into token ids (keras-hub's Tokenizer).

They hold no trained weights and are not part of a Keras model's graph (the in-graph embeddings are the
backbone's `keras_perceiver.preprocessors.TextPreprocessor`). They use TensorFlow string ops and are
imported lazily, so the keras.ops-only package loads without TensorFlow on other backends.
"""

__all__ = ["ByteTokenizer", "SentencePieceTokenizer", "train_sentencepiece"]


def __getattr__(name):
    if name == "ByteTokenizer":
        from keras_perceiver.tokenizers.byte_tokenizer import ByteTokenizer

        return ByteTokenizer
    if name in ("SentencePieceTokenizer", "train_sentencepiece"):
        from keras_perceiver.tokenizers import sentencepiece_tokenizer

        return getattr(sentencepiece_tokenizer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
