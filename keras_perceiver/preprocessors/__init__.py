"""Input preprocessors: in-graph Keras layers that map a modality to the encoder inputs (B, M, C).

DeepMind's and transformers' "input preprocessors"; part of a `PerceiverBackbone`. The `tf.data`-side
tokenizers are in `keras_perceiver.tokenizers`.
"""

from keras_perceiver.preprocessors.audio_preprocessor import AudioPreprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.preprocessors.log_mel_spectrogram import LogMelSpectrogram
from keras_perceiver.preprocessors.multimodal_preprocessor import MultimodalPreprocessor
from keras_perceiver.preprocessors.one_hot_preprocessor import OneHotPreprocessor
from keras_perceiver.preprocessors.optical_flow_preprocessor import OpticalFlowPreprocessor
from keras_perceiver.preprocessors.text_preprocessor import TextPreprocessor

__all__ = [
    "AudioPreprocessor",
    "ImagePreprocessor",
    "LogMelSpectrogram",
    "MultimodalPreprocessor",
    "OneHotPreprocessor",
    "OpticalFlowPreprocessor",
    "TextPreprocessor",
]

