"""Functional-API task models."""

from keras_perceiver.models.hierarchical_perceiver import HierarchicalPerceiver
from keras_perceiver.models.hip_backbone import HiPBackbone
from keras_perceiver.models.hip_class_bottleneck import HiPClassBottleneck
from keras_perceiver.models.hip_classifier import HiPClassifier
from keras_perceiver.models.optical_flow_tiling import predict_flow_tiled
from keras_perceiver.models.perceiver import Perceiver
from keras_perceiver.models.perceiver_audio_classifier import PerceiverAudioClassifier
from keras_perceiver.models.perceiver_backbone import PerceiverBackbone
from keras_perceiver.models.perceiver_classifier import PerceiverClassifier
from keras_perceiver.models.perceiver_entity_encoder import PerceiverEntityEncoder
from keras_perceiver.models.perceiver_image_classifier import PerceiverImageClassifier
from keras_perceiver.models.perceiver_io import PerceiverIO
from keras_perceiver.models.perceiver_masked_lm import PerceiverMaskedLM
from keras_perceiver.models.perceiver_multimodal_autoencoder import PerceiverMultimodalAutoencoder
from keras_perceiver.models.perceiver_optical_flow import PerceiverOpticalFlow
from keras_perceiver.models.perceiver_text_classifier import PerceiverTextClassifier
from keras_perceiver.models.perceiver_token_classifier import PerceiverTokenClassifier
from keras_perceiver.models.task_model import PerceiverTaskModel

__all__ = [
    "HiPBackbone",
    "HiPClassBottleneck",
    "HiPClassifier",
    "HierarchicalPerceiver",
    "Perceiver",
    "PerceiverAudioClassifier",
    "PerceiverBackbone",
    "PerceiverClassifier",
    "PerceiverEntityEncoder",
    "PerceiverIO",
    "PerceiverImageClassifier",
    "PerceiverMaskedLM",
    "PerceiverMultimodalAutoencoder",
    "PerceiverOpticalFlow",
    "PerceiverTaskModel",
    "PerceiverTextClassifier",
    "PerceiverTokenClassifier",
    "predict_flow_tiled",
]
