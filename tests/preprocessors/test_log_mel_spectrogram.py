"""Tests of `LogMelSpectrogram`: values against Keras' mel spectrogram, per-example dB, shapes, errors."""

import keras
import numpy as np
import pytest

from keras_perceiver.preprocessors.log_mel_spectrogram import LogMelSpectrogram
from tests.test_case import TestCase

MEL = dict(sampling_rate=8000, fft_length=64, sequence_stride=50, num_mel_bins=6, min_freq=50.0)


def _audio(batch=2, num_samples=400, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / 8000.0
    tones = np.sin(2 * np.pi * rng.uniform(200, 2000, size=(batch, 1)) * t)
    return (tones + 0.1 * rng.normal(size=(batch, num_samples))).astype("float32")


class LogMelSpectrogramTest(TestCase):
    def test_layer(self):
        # 1 + 400 // 50 = 9 frames x 6 mel bins, a channel axis; no weights. Computed in float32 by
        # default (the mixed precision check below), so the generic mixed precision test is not run.
        x = _audio()
        layer, outputs = self.run_layer_test(
            LogMelSpectrogram,
            MEL,
            x,
            expected_output_shape=(2, 9, 6, 1),
            expected_num_trainable_weights=0,
            run_mixed_precision_test=False,
        )
        power = np.asarray(keras.layers.MelSpectrogram(**MEL, power_to_db=False)(x))  # (B, N, F)
        expected = 10.0 * np.log10(np.maximum(power.transpose(0, 2, 1), 1e-10))[..., None]
        self.assertAllClose(outputs, expected, atol=1e-4, rtol=1e-5)
        self.assertEqual(layer.compute_output_shape((None, 400)), (None, 9, 6, 1))
        self.assertEqual(layer.num_frames(400), 9)

    def test_float32_under_a_mixed_policy_and_examples_are_independent(self):
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy("mixed_float16")
        try:
            layer = LogMelSpectrogram(**MEL)
        finally:
            keras.config.set_dtype_policy(previous)
        self.assertEqual(layer.compute_dtype, "float32")
        x = _audio(3)
        loud = np.concatenate([x[:1], 1000.0 * x[1:]])  # dB of each example on its own (no batch top_db)
        self.assertAllClose(layer(loud)[0], layer(x[:1])[0], atol=1e-5)
        silent = np.asarray(layer(np.zeros((1, 400), "float32")))
        np.testing.assert_array_equal(silent, np.full_like(silent, -100.0))  # the 1e-10 floor


def test_errors():
    with pytest.raises(ValueError, match="sequence_stride.*Received: sequence_stride=0"):
        LogMelSpectrogram(sequence_stride=0)
    with pytest.raises(ValueError, match="num_mel_bins"):
        LogMelSpectrogram(num_mel_bins=-1)
    with pytest.raises(ValueError, match=r"rank"):
        LogMelSpectrogram(**MEL)(np.zeros((2, 400, 1), "float32"))
    with pytest.raises(ValueError, match=r"\(B, S\).*inputs.shape=\(None, 400, 1\)"):
        LogMelSpectrogram(**MEL).compute_output_shape((None, 400, 1))
