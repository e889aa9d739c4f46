"""Output-side processing per task."""

from keras_perceiver.postprocessors.audio_postprocessor import AudioPostprocessor
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.postprocessors.logits_bias import LogitsBias
from keras_perceiver.postprocessors.multimodal_postprocessor import MultimodalPostprocessor
from keras_perceiver.postprocessors.projection_postprocessor import ProjectionPostprocessor

__all__ = [
    "AudioPostprocessor",
    "ClassificationPostprocessor",
    "LogitsBias",
    "MultimodalPostprocessor",
    "ProjectionPostprocessor",
]
