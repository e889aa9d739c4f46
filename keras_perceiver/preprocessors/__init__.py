"""Input-side processing per modality.

`ByteTokenizer` and `SentencePieceTokenizer` use TensorFlow string ops and are imported
lazily, so the keras.ops-only preprocessors load without TensorFlow on other backends.
"""

from keras_perceiver.preprocessors.audio_preprocessor import AudioPreprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.preprocessors.multimodal_preprocessor import MultimodalPreprocessor
from keras_perceiver.preprocessors.one_hot_preprocessor import OneHotPreprocessor
from keras_perceiver.preprocessors.text_preprocessor import TextPreprocessor

__all__ = [
    "AudioPreprocessor",
    "ByteTokenizer",
    "ImagePreprocessor",
    "MultimodalPreprocessor",
    "OneHotPreprocessor",
    "SentencePieceTokenizer",
    "TextPreprocessor",
]


def __getattr__(name):
    if name == "ByteTokenizer":
        from keras_perceiver.preprocessors.byte_tokenizer import ByteTokenizer

        return ByteTokenizer
    if name == "SentencePieceTokenizer":
        from keras_perceiver.preprocessors.sentencepiece_tokenizer import SentencePieceTokenizer

        return SentencePieceTokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
