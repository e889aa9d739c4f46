"""keras-perceiver: Perceiver, Perceiver IO and Hierarchical Perceiver models for Keras 3."""

from keras_perceiver import convert, layers, models, postprocessors, preprocessors, tokenizers
from keras_perceiver.convert import from_transformers

__version__ = "0.1.0"

__all__ = [
    "convert",
    "from_transformers",
    "layers",
    "models",
    "postprocessors",
    "preprocessors",
    "tokenizers",
]
