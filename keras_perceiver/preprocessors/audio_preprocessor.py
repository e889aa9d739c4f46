"""Audio input side of the Perceiver: raw samples (B, S) -> patches (B, S / P, P) with positions."""

import keras
from keras import ops

from keras_perceiver.preprocessors.position_encoding_mixin import PositionEncodingMixin
from keras_perceiver.validation import check_numeric_dtype, check_positive_int, check_rank


@keras.saving.register_keras_serializable(package="keras_perceiver")
class AudioPreprocessor(PositionEncodingMixin, keras.layers.Layer):
    """Raw audio (B, S) or (B, S, 1) -> Perceiver inputs (B, M = S / P, P + C_pos).

    The waveform is cut into M non-overlapping patches of P =
    `samples_per_patch` consecutive samples (one input element per patch,
    its P samples as channels), and a 1-D position encoding of the M patches
    (Fourier features or a learned table) is optionally projected to
    `project_pos_dim` and concatenated to, or added to, the patches by a
    `PositionCombiner` (`PositionEncodingMixin`). S is fixed when the layer is built (the first call).

    Sublayer (weight) names: `position_encoding` (the learned table, shape
    (M, num_channels)), `position_combiner/projection` (transformers'
    `positions_projection`).

    Source: Perceiver IO (arXiv 2107.14795) section 4.3 and appendix
    (Kinetics audio: patches of 16 samples, 192 Fourier bands with
    `max_resolution` the number of samples); Perceiver (arXiv 2103.03206)
    section 4.3 (AudioSet); transformers `PerceiverAudioPreprocessor`;
    DeepMind `io_processors.AudioPreprocessor`.

    Args:
        samples_per_patch: int, P. Defaults to 16 (the published multimodal
            model; transformers' class default is 96).
        position_encoding_type: `"fourier"` (default) or `"trainable"`.
        num_bands: int, Fourier bands K (`"fourier"` only). Defaults to 192,
            the published value.
        max_resolution: int, 1-tuple or None, the resolution that sets the
            highest Fourier frequency (`"fourier"` only). None (default) uses
            the number of samples S, as the published model does (not the
            number of patches M).
        concat_pos: bool, prepend the raw position to the Fourier features.
            Defaults to True.
        sine_only: bool, sine features only. Defaults to False.
        num_channels: int, width of the learned position table
            (`"trainable"` only). Defaults to 64.
        concat_or_add_pos: `"concat"` (default) or `"add"`; `"add"` needs
            position encodings of width P (use `project_pos_dim=P`).
        project_pos_dim: int or None, Dense projection width of the position
            encodings; None (default) leaves them as they are
            (transformers' -1).

    Call arguments:
        inputs: (B, S) or (B, S, 1) float samples, S static and a multiple of
            P.

    Returns:
        (B, S / P, P + C_pos') for `"concat"`, (B, S / P, P) for `"add"`;
        C_pos' is `project_pos_dim` or the encoding width (`2 * num_bands +
        1` for Fourier features with cosines and `concat_pos`,
        `num_channels` for `"trainable"`).

    Raises:
        ValueError: for an unknown `position_encoding_type` or
            `concat_or_add_pos`, non-positive sizes, inputs that are not
            (B, S) or (B, S, 1), an unknown S, S not a multiple of P, or an S
            other than the one the layer was built for.
        TypeError: for inputs that are not numbers (e.g. strings).

    Example:
    >>> import keras
    >>> from keras_perceiver.preprocessors import AudioPreprocessor
    >>> layer = AudioPreprocessor(samples_per_patch=4, num_bands=3)
    >>> tuple(layer(keras.ops.ones((2, 32))).shape)
    (2, 8, 11)
    """

    def __init__(
        self,
        samples_per_patch=16,
        position_encoding_type="fourier",
        num_bands=192,
        max_resolution=None,
        concat_pos=True,
        sine_only=False,
        num_channels=64,
        concat_or_add_pos="concat",
        project_pos_dim=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("samples_per_patch", samples_per_patch)
        if max_resolution is not None:
            if isinstance(max_resolution, (tuple, list)):
                if len(max_resolution) != 1:
                    raise ValueError(
                        "AudioPreprocessor: `max_resolution` must be one int (or a 1-tuple) or None. "
                        f"Received: max_resolution={max_resolution!r}"
                    )
                max_resolution = max_resolution[0]
            check_positive_int("max_resolution", max_resolution)
        self.samples_per_patch = samples_per_patch
        self._init_position_encoding(
            position_encoding_type, num_bands, max_resolution, concat_pos, sine_only, num_channels,
            concat_or_add_pos, project_pos_dim
        )
        self._num_samples = None

    def _check_inputs_shape(self, inputs_shape):
        name = self.__class__.__name__
        inputs_shape = tuple(inputs_shape)
        if len(inputs_shape) not in (2, 3) or (len(inputs_shape) == 3 and inputs_shape[2] != 1):
            raise ValueError(
                f"{name}: `inputs` must be (B, S) or (B, S, 1) audio samples. "
                f"Received: inputs.shape={inputs_shape}"
            )
        num_samples = inputs_shape[1]
        if num_samples is None:
            raise ValueError(
                f"{name}: the number of samples S must be known to encode positions. "
                f"Received: inputs.shape={inputs_shape}"
            )
        if num_samples % self.samples_per_patch:
            raise ValueError(
                f"{name}: the number of samples S must be a multiple of samples_per_patch="
                f"{self.samples_per_patch}. Received: S={num_samples} (inputs.shape={inputs_shape}); "
                f"pad or crop the audio to {num_samples // self.samples_per_patch * self.samples_per_patch} "
                f"or {-(-num_samples // self.samples_per_patch) * self.samples_per_patch} samples."
            )
        return inputs_shape

    def build(self, inputs_shape):
        inputs_shape = self._check_inputs_shape(inputs_shape)
        self._num_samples = int(inputs_shape[1])
        patches_shape = (inputs_shape[0], self.num_patches, self.samples_per_patch)
        max_resolution = (self.max_resolution or self._num_samples,)
        self._build_position_encoding(patches_shape, patches_shape, max_resolution)
        self.built = True

    @property
    def num_patches(self):
        """M = S / P of the built layer (None before building)."""
        return None if self._num_samples is None else self._num_samples // self.samples_per_patch

    def call(self, inputs):
        name = self.__class__.__name__
        check_rank("inputs", inputs, (2, 3), name)
        check_numeric_dtype("inputs", inputs, name)
        shape = tuple(inputs.shape)
        if shape[1] != self._num_samples or (len(shape) == 3 and shape[2] != 1):
            raise ValueError(
                f"{name}: expected (B, {self._num_samples}) or (B, {self._num_samples}, 1) samples, the "
                f"length the layer was built for. Received: inputs.shape={shape}"
            )
        patches = ops.cast(inputs, self.compute_dtype)
        patches = ops.reshape(patches, (-1, self.num_patches, self.samples_per_patch))
        return self.position_combiner(patches, self.position_encoding(patches))

    def compute_output_shape(self, inputs_shape):
        inputs_shape = self._check_inputs_shape(inputs_shape)
        channels = self.samples_per_patch
        if self.concat_or_add_pos == "concat":
            channels += self._position_channels(1)
        return (inputs_shape[0], inputs_shape[1] // self.samples_per_patch, channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "samples_per_patch": self.samples_per_patch,
                **self._position_encoding_config(),
            }
        )
        return config
