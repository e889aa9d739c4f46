"""Task preprocessors: raw data -> a task model's inputs in `tf.data` (keras-hub's `Preprocessor` side).

A task model carrying one (`model.preprocessor`) predicts, fits and
evaluates on raw data; `keras_perceiver.export.ClientInputs.from_preprocessor`
makes it the serving signature of an exported SavedModel.
"""

from keras_perceiver.task_preprocessors.audio_task_preprocessor import AudioTaskPreprocessor
from keras_perceiver.task_preprocessors.byte_tagging_task_preprocessor import ByteTaggingTaskPreprocessor
from keras_perceiver.task_preprocessors.frame_pair_task_preprocessor import FramePairTaskPreprocessor
from keras_perceiver.task_preprocessors.image_task_preprocessor import ImageTaskPreprocessor
from keras_perceiver.task_preprocessors.task_preprocessor import TaskPreprocessor
from keras_perceiver.task_preprocessors.text_task_preprocessor import TextTaskPreprocessor

__all__ = [
    "AudioTaskPreprocessor",
    "ByteTaggingTaskPreprocessor",
    "FramePairTaskPreprocessor",
    "ImageTaskPreprocessor",
    "TaskPreprocessor",
    "TextTaskPreprocessor",
]
