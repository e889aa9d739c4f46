"""Functional-API task models."""

from keras_perceiver.models.perceiver import Perceiver
from keras_perceiver.models.perceiver_audio_classifier import PerceiverAudioClassifier
from keras_perceiver.models.perceiver_io import PerceiverIO
from keras_perceiver.models.perceiver_masked_lm import PerceiverMaskedLM
from keras_perceiver.models.perceiver_multimodal_autoencoder import PerceiverMultimodalAutoencoder

__all__ = [
    "Perceiver",
    "PerceiverAudioClassifier",
    "PerceiverIO",
    "PerceiverMaskedLM",
    "PerceiverMultimodalAutoencoder",
]
