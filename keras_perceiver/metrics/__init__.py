"""Evaluation metrics of the Perceiver IO tasks (keras.ops only: TensorFlow, JAX and PyTorch backends).

Top-1 / top-5 classification accuracy is Keras's own
`keras.metrics.SparseTopKCategoricalAccuracy(k=1 or 5)` on (B, K) logits.
"""

from keras_perceiver.metrics.end_point_error import EndPointError
from keras_perceiver.metrics.masked_lm_accuracy import MaskedLMAccuracy
from keras_perceiver.metrics.psnr import PeakSignalToNoiseRatio
from keras_perceiver.metrics.word_segmentation import word_segmentation_scores, word_tag_accuracy

__all__ = [
    "EndPointError",
    "MaskedLMAccuracy",
    "PeakSignalToNoiseRatio",
    "word_segmentation_scores",
    "word_tag_accuracy",
]
