"""Audio files decoded inside `tf.data`: WAV with core TensorFlow; FLAC, OGG Vorbis, MP3 with tensorflow-io.

WAV needs nothing beyond TensorFlow (`tf.audio.decode_wav`, 16-bit PCM).
The compressed formats need tensorflow-io, the optional `tfio` extra
(`pip install "keras-perceiver[tfio]"`). Its last release (0.37.1) loads its
kernels only with TensorFlow 2.17, so that extra installs the TensorFlow 2.17
line in an environment of its own (README, "Set-up").

Example (WAV, any stack):

```python
import tensorflow as tf
from training.data.audio_files import read_audio

paths = tf.data.Dataset.from_tensor_slices(["a.wav", "b.wav"])
clips = paths.map(lambda path: read_audio(path, "wav"))  # each (S, C) float32 in [-1, 1]
```
"""

import tensorflow as tf

CORE_FORMATS = ("wav",)
TFIO_FORMATS = ("flac", "ogg", "mp3")
FORMATS = CORE_FORMATS + TFIO_FORMATS
TFIO_INSTALL = 'pip install "keras-perceiver[tfio]" (TensorFlow 2.17 line, in an environment of its own)'


def tensorflow_io():
    """The `tensorflow_io` module, or an ImportError that says how to install it."""
    try:
        import tensorflow_io as tfio
    except ImportError as error:
        raise ImportError(
            f"Decoding FLAC, OGG Vorbis or MP3 audio needs tensorflow-io: {TFIO_INSTALL}. "
            f"Received: TensorFlow {tf.__version__} without tensorflow_io ({error})"
        ) from error
    return tfio


def check_format(file_format):
    """`file_format` lower-cased, or a ValueError naming the formats this module decodes."""
    if not isinstance(file_format, str) or file_format.lower() not in FORMATS:
        raise ValueError(f"file_format must be one of {FORMATS}. Received: file_format={file_format!r}")
    return file_format.lower()


def decode_audio(contents, file_format):
    """Decode the bytes of one audio file into float32 samples.

    Runs eagerly, in `tf.function`s and in `tf.data.Dataset.map`.

    Args:
        contents: scalar `tf.string`, the whole file (e.g. `tf.io.read_file(path)`).
        file_format: str, one of `"wav"` (16-bit PCM; core TensorFlow), `"flac"`,
            `"ogg"` (Vorbis) or `"mp3"` (tensorflow-io). Static: one format per call.

    Returns:
        float32 tensor (S, C): S samples per channel, C channels, values in
        [-1, 1] (16-bit PCM / 32768 for WAV and FLAC; the decoder's float
        output for Vorbis and MP3).

    Raises:
        ValueError: unknown `file_format`.
        ImportError: a compressed format without tensorflow-io installed.
    """
    file_format = check_format(file_format)
    if file_format == "wav":
        samples, _ = tf.audio.decode_wav(contents)
        return samples
    tfio = tensorflow_io()
    if file_format == "flac":
        return tf.cast(tfio.audio.decode_flac(contents, dtype=tf.int16), tf.float32) / 32768.0
    if file_format == "ogg":
        return tfio.audio.decode_vorbis(contents)
    return tfio.audio.decode_mp3(contents)


def read_audio(path, file_format):
    """`decode_audio(tf.io.read_file(path), file_format)`: (S, C) float32 samples of the file at `path`."""
    return decode_audio(tf.io.read_file(path), file_format)
