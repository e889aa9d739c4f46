"""Input-side processing per modality.

`ByteTokenizer` uses TensorFlow string ops and is imported lazily, so the
keras.ops-only preprocessors load without TensorFlow on other backends.
"""

from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.preprocessors.text_preprocessor import TextPreprocessor

__all__ = ["ByteTokenizer", "ImagePreprocessor", "TextPreprocessor"]


def __getattr__(name):
    if name == "ByteTokenizer":
        from keras_perceiver.preprocessors.byte_tokenizer import ByteTokenizer

        return ByteTokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
