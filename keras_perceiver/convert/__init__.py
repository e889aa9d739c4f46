"""Converters from official checkpoints."""

from keras_perceiver.convert.from_deepmind import from_deepmind
from keras_perceiver.convert.from_deepmind_hip import from_deepmind_hip
from keras_perceiver.convert.from_transformers import from_transformers

__all__ = ["from_deepmind", "from_deepmind_hip", "from_transformers"]
