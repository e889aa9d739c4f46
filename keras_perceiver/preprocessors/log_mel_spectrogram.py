"""Waveforms (B, S) -> log-mel spectrograms (B, F, N, 1) in dB, each example on its own."""

import keras
from keras import ops

from keras_perceiver.validation import check_numeric_dtype, check_positive_int, check_rank

# Floor of the mel power before the log (-100 dB), as `keras.layers.MelSpectrogram`'s `min_power`.
LOG_MEL_FLOOR = 1e-10


@keras.saving.register_keras_serializable(package="keras_perceiver")
class LogMelSpectrogram(keras.layers.Layer):
    """Raw audio (B, S) -> log-mel spectrogram (B, F frames, N mel bins, 1) in dB.

    `keras.layers.MelSpectrogram` (centred STFT with a Hann window, power
    spectrum, mel filter bank), transposed to time x frequency, then
    10 log10 with a floor of 1e-10 (-100 dB), and a trailing channel axis,
    so that `ImagePreprocessor(prep_type="patches")` cuts it into time x
    frequency patches. Keras' own dB option is not used: its `top_db`
    clipping is relative to the maximum over the whole batch, which would
    make each example's features depend on the others; here each example is
    computed on its own. F = 1 + S // `sequence_stride`. No weights.
    Computed in float32 by default (also under a mixed precision policy).

    Source: Perceiver (arXiv 2103.03206) section 4.3 (AudioSet from mel
    spectrograms); `keras.layers.MelSpectrogram`.

    Args:
        sampling_rate: int, Hz, for the mel scale. Defaults to 48,000.
        fft_length: int, FFT size. Defaults to 1024.
        sequence_length: int or None, STFT window length; None uses
            `fft_length`. Defaults to None.
        sequence_stride: int, STFT hop. Defaults to 480 (10 ms at 48 kHz).
        num_mel_bins: int, N. Defaults to 128.
        min_freq, max_freq: float, mel filter bank range in Hz; `max_freq`
            None is `sampling_rate / 2`. Defaults to 20.0 and None.
        **kwargs: base layer arguments (`name`, `dtype`: defaults to
            `"float32"`).

    Call arguments:
        inputs: (B, S) float waveform.

    Returns:
        (B, 1 + S // sequence_stride, num_mel_bins, 1) float tensor, dB.

    Raises:
        ValueError: for non-positive sizes, or inputs that are not (B, S).

    Example:
    >>> import keras
    >>> from keras_perceiver.preprocessors import LogMelSpectrogram
    >>> layer = LogMelSpectrogram(sampling_rate=8000, fft_length=64, sequence_stride=50, num_mel_bins=6)
    >>> tuple(layer(keras.ops.ones((2, 400))).shape)
    (2, 9, 6, 1)
    """

    def __init__(
        self,
        sampling_rate=48_000,
        fft_length=1024,
        sequence_length=None,
        sequence_stride=480,
        num_mel_bins=128,
        min_freq=20.0,
        max_freq=None,
        **kwargs,
    ):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        for name, value in (
            ("sampling_rate", sampling_rate),
            ("fft_length", fft_length),
            ("sequence_stride", sequence_stride),
            ("num_mel_bins", num_mel_bins),
        ):
            check_positive_int(name, value)
        check_positive_int("sequence_length", sequence_length, allow_none=True)
        self.sampling_rate = sampling_rate
        self.fft_length = fft_length
        self.sequence_length = sequence_length
        self.sequence_stride = sequence_stride
        self.num_mel_bins = num_mel_bins
        self.min_freq = min_freq
        self.max_freq = max_freq
        self.mel_spectrogram = keras.layers.MelSpectrogram(
            fft_length=fft_length,
            sequence_stride=sequence_stride,
            sequence_length=sequence_length,
            sampling_rate=sampling_rate,
            num_mel_bins=num_mel_bins,
            min_freq=min_freq,
            max_freq=max_freq,
            power_to_db=False,  # its dB scale clips at the max over the whole batch (top_db)
            dtype=self.dtype_policy,
            name="mel_spectrogram",
        )

    def num_frames(self, num_samples):
        """F of a waveform of `num_samples` samples: 1 + num_samples // sequence_stride."""
        return self.mel_spectrogram.compute_output_shape((None, num_samples))[-1]

    def call(self, inputs):
        name = self.__class__.__name__
        check_numeric_dtype("inputs", inputs, name)
        check_rank("inputs", inputs, 2, name)
        if inputs.shape[0] == 0:  # an empty batch (TensorFlow's STFT padding cannot take one)
            return ops.zeros(self.compute_output_shape(tuple(inputs.shape)), self.compute_dtype)
        mel = ops.transpose(self.mel_spectrogram(inputs), (0, 2, 1))  # (B, F, N) power
        spectrogram = 10.0 * ops.log10(ops.maximum(mel, LOG_MEL_FLOOR))  # dB, per example
        return ops.expand_dims(spectrogram, -1)

    def compute_output_shape(self, inputs_shape):
        if len(inputs_shape) != 2:
            raise ValueError(
                f"{self.__class__.__name__}: `inputs` must be (B, S) audio samples. "
                f"Received: inputs.shape={tuple(inputs_shape)}"
            )
        frames = None if inputs_shape[1] is None else self.num_frames(inputs_shape[1])
        return (inputs_shape[0], frames, self.num_mel_bins, 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sampling_rate": self.sampling_rate,
                "fft_length": self.fft_length,
                "sequence_length": self.sequence_length,
                "sequence_stride": self.sequence_stride,
                "num_mel_bins": self.num_mel_bins,
                "min_freq": self.min_freq,
                "max_freq": self.max_freq,
            }
        )
        return config
