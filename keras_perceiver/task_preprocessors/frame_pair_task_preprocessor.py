"""Two uint8 frames -> the optical-flow model's frames (B, 2, H, W, 3) in [-1, 1]."""

import keras
import tensorflow as tf

from keras_perceiver.task_preprocessors.task_preprocessor import TaskPreprocessor


@keras.saving.register_keras_serializable(package="keras_perceiver")
class FramePairTaskPreprocessor(TaskPreprocessor):
    """Frames `frame0`, `frame1` uint8 (B, H, W, 3) -> {input_name: (B, 2, H, W, 3) float32 in [-1, 1]}.

    The flow is from the first frame to the second. The scaling x / 127.5 - 1
    is the reference's (DeepMind's optical-flow colab; transformers' flow
    example).

    Source: Perceiver IO (arXiv 2107.14795) section 4.2; DeepMind
    `optical_flow.ipynb`.

    Args:
        input_name: str, the model's input. Defaults to `"frames"`.
        frame_keys: two str, the raw inputs' names. Defaults to
            `("frame0", "frame1")`.

    Call arguments:
        x: a dict with the two frames, or a pair (frame0, frame1).
        y, sample_weight: passed through.

    Example:
    >>> import numpy as np
    >>> from keras_perceiver.task_preprocessors import FramePairTaskPreprocessor
    >>> frames = np.full((1, 4, 4, 3), 255, "uint8")
    >>> float(FramePairTaskPreprocessor()({"frame0": frames, "frame1": frames})["frames"][0, 1, 0, 0, 0])
    1.0
    """

    def __init__(self, input_name="frames", frame_keys=("frame0", "frame1"), **kwargs):
        super().__init__(**kwargs)
        self.input_name = input_name
        self.frame_keys = tuple(frame_keys)

    @property
    def input_signature(self):
        return {key: tf.TensorSpec((None, None, None, 3), tf.uint8, name=key) for key in self.frame_keys}

    def convert(self, x):
        if isinstance(x, dict):
            pair = [self._numeric(x, key) for key in self.frame_keys]
        else:
            pair = [self._numeric(frame, key) for frame, key in zip(x, self.frame_keys)]
        shapes = [tuple(frame.shape) for frame in pair]
        if len(pair) != 2 or shapes[0] != shapes[1] or len(shapes[0]) not in (3, 4) or shapes[0][-1] != 3:
            raise ValueError(
                "FramePairTaskPreprocessor: expected two frames of one shape (B, H, W, 3) or (H, W, 3). "
                f"Received: shapes {shapes}"
            )
        frames = tf.stack([tf.cast(frame, tf.float32) for frame in pair], axis=-4)
        return {self.input_name: frames / 127.5 - 1.0}

    def get_config(self):
        config = super().get_config()
        config.update({"input_name": self.input_name, "frame_keys": self.frame_keys})
        return config
