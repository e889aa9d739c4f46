"""Converters from official checkpoints."""

from keras_perceiver.convert.from_deepmind import from_deepmind
from keras_perceiver.convert.from_deepmind_hip import from_deepmind_hip
from keras_perceiver.convert.from_transformers import from_transformers
from keras_perceiver.convert.to_transformers import export_to_transformers

__all__ = ["export_to_transformers", "from_deepmind", "from_deepmind_hip", "from_transformers"]
