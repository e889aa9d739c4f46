"""Output side for audio: each decoder output becomes a patch of samples, (B, O, E) -> (B, O * P)."""

import keras
from keras import ops

from keras_perceiver.postprocessors.projection_postprocessor import ProjectionPostprocessor
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class AudioPostprocessor(ProjectionPostprocessor):
    """Decoder outputs (B, O, E) -> waveform (B, O * P), P = `samples_per_patch`.

    A Dense layer maps each output query (one audio patch) to its P samples
    and the patches are laid end to end, the inverse layout of
    `AudioPreprocessor`.

    Sublayer (weight) name: `classifier` (transformers' name).

    Source: Perceiver IO (arXiv 2107.14795) section 4.3 (audio
    reconstruction); transformers `PerceiverAudioPostprocessor`
    (`postproc_type="patches"`, the only type there is); DeepMind
    `io_processors.AudioPostprocessor`.

    Args:
        samples_per_patch: int, P. Defaults to 16 (the published multimodal
            model).
        kernel_initializer: initializer of the Dense kernel; truncated normal
            with stddev 0.02 by default.

    Call arguments:
        inputs: (B, O, E) decoder outputs, one per audio patch.

    Returns:
        (B, O * P) samples (O * P is None when O is unknown).

    Raises:
        ValueError: for a non-positive `samples_per_patch` or inputs that are
            not rank 3.

    Example:
    >>> import keras
    >>> from keras_perceiver.postprocessors import AudioPostprocessor
    >>> tuple(AudioPostprocessor(samples_per_patch=4)(keras.ops.ones((2, 8, 16))).shape)
    (2, 32)
    """

    def __init__(self, samples_per_patch=16, kernel_initializer=None, **kwargs):
        check_positive_int("samples_per_patch", samples_per_patch)
        super().__init__(out_channels=samples_per_patch, kernel_initializer=kernel_initializer, **kwargs)
        self.samples_per_patch = samples_per_patch

    def call(self, inputs):
        samples = super().call(inputs)  # (B, O, P), rank checked there
        num_outputs = inputs.shape[1]
        if num_outputs is not None:
            return ops.reshape(samples, (-1, num_outputs * self.samples_per_patch))
        return ops.reshape(samples, (ops.shape(samples)[0], -1))

    def compute_output_shape(self, inputs_shape):
        num_outputs = inputs_shape[1]
        return (inputs_shape[0], None if num_outputs is None else num_outputs * self.samples_per_patch)

    def get_config(self):
        config = super().get_config()
        del config["out_channels"]
        config["samples_per_patch"] = self.samples_per_patch
        return config
