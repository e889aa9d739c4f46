"""Clips of moving photos with sounds: extra training clips for the video + audio autoencoder.

The Big Buck Bunny training frames (86 frames, one scene) teach an
autoencoder what those frames look like, not a code that carries over to new
content (saved_models/bigbuckbunny_autoencoder/README.md). These clips add
varied content of the same form:

- video: a window over one of the bundled photos (scikit-image's
  `training.data.photos.PHOTOS` and scikit-learn's two sample images), moved
  (pan) and scaled (zoom) linearly over the clip's frames, each frame
  area-resampled to (H, W);
- audio: a random stretch of one of Tux Paint's sound files (spoken words and
  sound effects beside the stamps of Debian `tuxpaint-stamps-default`, GPL-2,
  not copied into this project), mixed to mono, resampled to the clip's rate
  and scaled to a random RMS in [0.003, 0.1] (Big Buck Bunny's clips: about
  0.005 to 0.07); a file shorter than the clip is zero-padded.

Clips are drawn from `seed` (numpy), so that a run is reproducible.
"""

import functools
import os

import numpy as np

from training.data.photos import PHOTOS, SKLEARN_PHOTOS, load_photo

RMS_RANGE = (0.003, 0.1)


@functools.lru_cache(maxsize=1)
def _photos():
    """Every bundled photo as uint8 RGB (H, W, 3)."""
    return tuple(load_photo(name) for name in PHOTOS + SKLEARN_PHOTOS)


@functools.lru_cache(maxsize=4)
def _sounds(directory, sample_rate):
    """Every Tux Paint sound file under `directory` (not the `_desc_` descriptions: too many, all speech),
    float32 mono at `sample_rate`, sorted by path."""
    import soundfile
    from scipy.signal import resample_poly

    paths = sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(directory)
        for name in names
        if name.endswith(".ogg") and "_desc_" not in name
    )
    if not paths:
        raise FileNotFoundError(f"photo_clips: no Tux Paint sound (.ogg) under {directory!r}.")
    sounds = []
    for path in paths:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        divisor = np.gcd(int(rate), int(sample_rate))
        mono = resample_poly(samples.mean(axis=1), sample_rate // divisor, int(rate) // divisor)
        sounds.append(mono.astype(np.float32))
    return tuple(sounds)


def _pan_and_zoom(photo, num_frames, size, rng):
    """(T, H, W, 3) uint8: a window over `photo` moved and scaled linearly over T frames."""
    from PIL import Image

    height, width = photo.shape[:2]
    aspect = size[1] / size[0]
    # Window heights between the frame size and 60% of the photo: from fine texture to whole objects (a frame
    # larger than 60% of the photo gets windows of that 60%, upsampled).
    largest = min(height, width / aspect) * 0.6
    smallest = min(float(size[0]), largest / 2)
    sides = np.exp(rng.uniform(np.log(smallest), np.log(largest), size=2))
    if rng.uniform() < 0.5:
        sides[1] = sides[0]  # a pan without zoom half of the time
    centres = []
    for side in sides:
        half_h, half_w = side / 2, side * aspect / 2
        centres.append((rng.uniform(half_h, height - half_h), rng.uniform(half_w, width - half_w)))
    # Move at most 40% of the window per clip (the bunny's camera moves slowly).
    shift = np.clip(np.subtract(centres[1], centres[0]), -0.4 * sides.min(), 0.4 * sides.min())
    image = Image.fromarray(photo)
    frames = []
    for step in np.linspace(0.0, 1.0, num_frames):
        side = sides[0] + step * (sides[1] - sides[0])
        centre_y, centre_x = np.add(centres[0], step * shift)
        half_h, half_w = side / 2, side * aspect / 2
        centre_y = np.clip(centre_y, half_h, height - half_h)
        centre_x = np.clip(centre_x, half_w, width - half_w)
        box = (centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h)
        frames.append(np.asarray(image.resize((size[1], size[0]), Image.Resampling.BOX, box=box)))
    return np.stack(frames)


def _stretch(sounds, num_samples, rng):
    """(S,) float32: a random stretch of a random sound at a random RMS (silence stays silence)."""
    sound = sounds[rng.integers(len(sounds))]
    if len(sound) > num_samples:
        start = rng.integers(len(sound) - num_samples + 1)
        sound = sound[start : start + num_samples]
    sound = np.pad(sound, (0, num_samples - len(sound)))
    rms = float(np.sqrt(np.mean(np.square(sound))))
    if rms < 1e-6:
        return sound
    target = np.exp(rng.uniform(*np.log(RMS_RANGE)))
    return np.clip(sound * (target / rms), -1.0, 1.0).astype(np.float32)


def generate(num_clips, num_frames, size, num_samples, audio_sample_rate, seed=0, sound_dir=None):
    """`num_clips` clips of moving photos with sounds, as numpy arrays.

    Args:
        num_clips: int >= 1.
        num_frames: int, T frames per clip.
        size: (H, W) ints, the frame size.
        num_samples: int, S audio samples per clip.
        audio_sample_rate: int, Hz.
        seed: int, the numpy seed of every draw. Defaults to 0.
        sound_dir: the Tux Paint stamps directory; None (default): found
            as `training.data.tuxpaint_segmentation.stamps_dir` finds it.

    Returns:
        {"video": uint8 (N, T, H, W, 3), "audio": float32 (N, S) in [-1, 1]}.

    Raises:
        ValueError: for a `num_clips` that is not an int >= 1.
        FileNotFoundError: when the Tux Paint data is not installed (the
            message says how to install it).
    """
    from training.data.tuxpaint_segmentation import stamps_dir

    if isinstance(num_clips, bool) or not isinstance(num_clips, int) or num_clips < 1:
        raise ValueError(f"photo_clips: num_clips must be an int >= 1. Received: num_clips={num_clips!r}")
    sounds = _sounds(stamps_dir(sound_dir), int(audio_sample_rate))
    photos = _photos()
    rng = np.random.default_rng(seed)
    videos, audios = [], []
    for _ in range(num_clips):
        photo = photos[rng.integers(len(photos))]
        videos.append(_pan_and_zoom(photo, num_frames, tuple(size), rng))
        audios.append(_stretch(sounds, num_samples, rng))
    return {"video": np.stack(videos), "audio": np.stack(audios)}
