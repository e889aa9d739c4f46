"""Tests of `training.data.photo_clips` and the `bigbuckbunny` reader's `photo_clips` option."""

import numpy as np
import pytest

from tests.test_case import TestCase
from tests.training.data.helpers import as_numpy, debian_data_hint, tuxpaint_stamps_dir
from training.data import bigbuckbunny, photo_clips

# Skipped without the data (a failure under CI=true: tests/conftest.py).
needs_data = pytest.mark.skipif(
    tuxpaint_stamps_dir() is None,
    reason=f"needs the Tux Paint sounds: {debian_data_hint('tuxpaint_segmentation')}",
)


@needs_data
class PhotoClipsTest(TestCase):
    def test_clips_move_sound_and_repeat_per_seed(self):
        clips = photo_clips.generate(6, 4, (16, 24), 2560, 16000, seed=3)
        self.assertEqual((clips["video"].dtype, clips["video"].shape), (np.uint8, (6, 4, 16, 24, 3)))
        self.assertEqual((clips["audio"].dtype, clips["audio"].shape), (np.float32, (6, 2560)))
        # Photos, not flat colour; most clips move (pan or zoom) from frame to frame.
        self.assertGreater(float(clips["video"].std(axis=(2, 3)).mean()), 5.0)
        moving = np.abs(np.diff(clips["video"].astype(np.float32), axis=1)).mean(axis=(1, 2, 3, 4)) > 0.5
        self.assertGreaterEqual(int(moving.sum()), 4)
        # Audible sound at the stated loudness (a stretch of a file may be silent or end early).
        rms = np.sqrt(np.mean(np.square(clips["audio"]), axis=1))
        self.assertTrue(np.all(rms <= photo_clips.RMS_RANGE[1] + 1e-6), rms)
        self.assertGreaterEqual(int((rms >= photo_clips.RMS_RANGE[0] - 1e-6).sum()), 4)
        again = photo_clips.generate(6, 4, (16, 24), 2560, 16000, seed=3)
        np.testing.assert_array_equal(again["video"], clips["video"])
        np.testing.assert_array_equal(again["audio"], clips["audio"])
        other = photo_clips.generate(6, 4, (16, 24), 2560, 16000, seed=4)
        self.assertFalse(np.array_equal(other["video"], clips["video"]))

    def test_frames_larger_than_most_windows_are_made_from_photo_content(self):
        # 400 x 600 frames: more than 60% of the smallest photo (coins, 303 x 384), so windows are upsampled.
        clips = photo_clips.generate(4, 2, (400, 600), 800, 8000, seed=1)
        self.assertEqual(clips["video"].shape, (4, 2, 400, 600, 3))
        self.assertGreater(float(clips["video"].std(axis=(2, 3)).mean()), 5.0)

    def test_reader_adds_them_to_train_only(self):
        options = {"num_frames": 8, "size": (16, 16), "audio_sample_rate": 8000, "validation_fraction": 0.15}
        plain = as_numpy(bigbuckbunny.load("train", **options))
        mixed = as_numpy(bigbuckbunny.load("train", photo_clips=3, photo_clips_seed=1, **options))
        count = len(plain["video"])
        self.assertEqual(len(mixed["video"]), count + 3)
        np.testing.assert_array_equal(mixed["video"][:count], plain["video"])
        extra = photo_clips.generate(3, 8, (16, 16), 2560, 8000, seed=1)
        np.testing.assert_allclose(mixed["video"][count:], extra["video"] / 255.0, atol=1e-7)
        np.testing.assert_array_equal(mixed["audio"][count:], extra["audio"])
        for split in ("validation", "test"):
            np.testing.assert_array_equal(
                as_numpy(bigbuckbunny.load(split, photo_clips=3, **options))["video"],
                as_numpy(bigbuckbunny.load(split, **options))["video"],
            )

    def test_errors(self):
        with pytest.raises(ValueError, match="photo_clips must be an int >= 0. Received: photo_clips=-1"):
            bigbuckbunny.load("train", photo_clips=-1)
        with pytest.raises(ValueError, match="num_clips must be an int >= 1. Received: num_clips=0"):
            photo_clips.generate(0, 8, (16, 16), 5120, 16000)
        with pytest.raises(FileNotFoundError, match="tuxpaint-stamps-default"):
            photo_clips.generate(1, 8, (16, 16), 5120, 16000, sound_dir="/nonexistent")
