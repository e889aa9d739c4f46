"""Output-side processing per task."""

from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor

__all__ = ["ClassificationPostprocessor"]
