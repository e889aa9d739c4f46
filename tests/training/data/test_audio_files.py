"""Audio decoding in tf.data: WAV on every stack; FLAC/OGG with tensorflow-io (the tfio extra's environment).

The default environment (TensorFlow 2.21, no tensorflow-io) checks WAV and the
install hint for the compressed formats; `make test` also runs this file in the
`tfio` environment (TensorFlow 2.17 + tensorflow-io 0.37.1), where the
compressed formats decode.
"""

import importlib.util
import io
import wave

import numpy as np
import pytest
import tensorflow as tf

from training.data.audio_files import decode_audio, read_audio

HAS_TFIO = importlib.util.find_spec("tensorflow_io") is not None
SAMPLE_RATE = 16000


def pcm16(seconds=0.25, channels=2):
    """A two-tone int16 signal (S, C), the second channel an octave above the first."""
    time = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tones = [np.sin(2 * np.pi * 440.0 * (k + 1) * time) * 0.5 for k in range(channels)]
    return np.round(np.stack(tones, axis=1) * 32767).astype(np.int16)


def write_wav(path, samples):
    with wave.open(str(path), "wb") as file:
        file.setnchannels(samples.shape[1])
        file.setsampwidth(2)
        file.setframerate(SAMPLE_RATE)
        file.writeframes(samples.tobytes())


def decode_in_dataset(paths, file_format):
    dataset = tf.data.Dataset.from_tensor_slices([str(path) for path in paths])
    return [clip.numpy() for clip in dataset.map(lambda path: read_audio(path, file_format))]


def test_wav_decodes_in_tf_data_exactly(tmp_path):
    samples = pcm16()
    write_wav(tmp_path / "tone.wav", samples)
    write_wav(tmp_path / "mono.wav", samples[:, :1])
    stereo, mono = decode_in_dataset([tmp_path / "tone.wav", tmp_path / "mono.wav"], "WAV")
    np.testing.assert_array_equal(stereo, samples / 32768.0)
    np.testing.assert_array_equal(mono, samples[:, :1] / 32768.0)
    assert stereo.dtype == np.float32


def test_unknown_format_names_the_formats():
    with pytest.raises(ValueError, match=r"one of \('wav', 'flac', 'ogg', 'mp3'\).*file_format='aiff'"):
        decode_audio(tf.constant(b""), "aiff")


def test_compressed_formats(tmp_path):
    """With tensorflow-io (the tfio environment) FLAC and OGG decode in tf.data; without it, the error says
    how to install it. `make test` runs this file in both environments, so both branches run in CI."""
    if not HAS_TFIO:
        with pytest.raises(ImportError, match=r"keras-perceiver\[tfio\].*Received: TensorFlow 2\."):
            decode_audio(tf.constant(b""), "ogg")
        return
    import soundfile

    samples = pcm16()
    soundfile.write(tmp_path / "tone.flac", samples, SAMPLE_RATE, subtype="PCM_16")
    soundfile.write(tmp_path / "tone.ogg", samples / 32768.0, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    (flac,) = decode_in_dataset([tmp_path / "tone.flac"], "flac")
    np.testing.assert_array_equal(flac, samples / 32768.0)  # lossless
    (ogg,) = decode_in_dataset([tmp_path / "tone.ogg"], "ogg")
    reference, _ = soundfile.read(io.BytesIO((tmp_path / "tone.ogg").read_bytes()), dtype="float32")
    print(f"ogg: tensorflow-io vs libsndfile max |diff| {np.abs(ogg - reference).max():.2e}")
    assert ogg.shape == reference.shape == samples.shape
    np.testing.assert_allclose(ogg, reference, atol=1e-4)
    # Lossy, but the tones survive: the decoded signal is close to the original.
    assert np.abs(ogg - samples / 32768.0).mean() < 0.02
