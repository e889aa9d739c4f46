"""Raw audio samples -> the audio model's input: padded or cut to its length."""

import keras
import tensorflow as tf

from keras_perceiver.task_preprocessors.task_preprocessor import TaskPreprocessor
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class AudioTaskPreprocessor(TaskPreprocessor):
    """Float samples (B, S') in [-1, 1] -> {input_name: (B, S) or (B, S, 1)}: zero-padded or cut to S.

    Source: keras-hub `AudioConverter` (fixed-length audio); the Perceiver's
    raw-audio models take a fixed number of samples (Perceiver IO appendix,
    AudioSet).

    Args:
        num_samples: int, S.
        input_name: str, the model's input. Defaults to `"audio"`.
        audio_key: str, the raw input's name. Defaults to `"audio"`.
        channel_axis: bool, add a trailing channel axis (models whose input
            is (S, 1)). Defaults to False.

    Call arguments:
        x: samples (B, S') or (S',), or a dict holding them under
            `audio_key`.
        y, sample_weight: passed through.

    Example:
    >>> import numpy as np
    >>> from keras_perceiver.task_preprocessors import AudioTaskPreprocessor
    >>> tuple(AudioTaskPreprocessor(8)(np.ones((2, 5), "float32"))["audio"].shape)
    (2, 8)
    """

    def __init__(self, num_samples, input_name="audio", audio_key="audio", channel_axis=False, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_samples", num_samples)
        self.num_samples = num_samples
        self.input_name = input_name
        self.audio_key = audio_key
        self.channel_axis = channel_axis

    @property
    def input_signature(self):
        return {self.audio_key: tf.TensorSpec((None, None), tf.float32, name=self.audio_key)}

    def convert(self, x):
        audio = self._numeric(x, self.audio_key)
        if audio.shape.rank not in (1, 2):
            raise ValueError(
                "AudioTaskPreprocessor: expected samples (B, S) or (S,). "
                f"Received: shape {tuple(audio.shape)}"
            )
        audio = tf.cast(audio, tf.float32)[..., : self.num_samples]
        padding = self.num_samples - tf.shape(audio)[-1]
        widths = [[0, 0]] * (audio.shape.rank - 1) + [[0, padding]]
        audio = tf.ensure_shape(tf.pad(audio, widths), [None] * (audio.shape.rank - 1) + [self.num_samples])
        return {self.input_name: audio[..., None] if self.channel_axis else audio}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_samples": self.num_samples,
                "input_name": self.input_name,
                "audio_key": self.audio_key,
                "channel_axis": self.channel_axis,
            }
        )
        return config
