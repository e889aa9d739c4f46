"""Tests of the `bigbuckbunny` reader: clips of the real video with their audio, split in time."""

import numpy as np
import pytest

from tests.test_case import TestCase
from tests.training.data.helpers import as_numpy, assert_unbatched_dict
from training.data import bigbuckbunny


class BigBuckBunnyTest(TestCase):
    def test_clips_shapes_ranges_and_split(self):
        dataset = bigbuckbunny.load("train", num_frames=8, size=(32, 48), audio_sample_rate=16000)
        assert_unbatched_dict(dataset, {"video": ("float32", (8, 32, 48, 3)), "audio": ("float32", (5120,))})
        train = as_numpy(dataset)
        test = as_numpy(bigbuckbunny.load("test", num_frames=8, size=(32, 48), audio_sample_rate=16000))
        # 132 frames: train = clips of frames 0..105 (13 clips of 8), test = frames 106..131 (3 clips).
        self.assertEqual(len(train["video"]), 13)
        self.assertEqual(len(test["video"]), 3)
        self.assertEqual(bigbuckbunny.clip_starts("test", 132, 8, 8, 0.2), [106, 114, 122])
        for data in (train, test):
            self.assertTrue(0.0 <= data["video"].min() and data["video"].max() <= 1.0)
            self.assertTrue(np.abs(data["audio"]).max() <= 1.0)
        # Real content: the clips move (frames differ) and the soundtrack is not silent.
        self.assertGreater(float(np.abs(np.diff(train["video"], axis=1)).mean()), 1e-3)
        self.assertGreater(float(np.abs(train["audio"]).mean()), 1e-3)
        # Clips are the decoded frames in order; the audio is the matching span of the resampled track.
        video, audio = bigbuckbunny.decode((32, 48), 16000)
        np.testing.assert_allclose(test["video"][1], video[114:122] / 255.0, atol=1e-7)
        np.testing.assert_array_equal(test["audio"][1], audio[114 * 640 : 122 * 640])
        self.assertAllClose(len(audio) / 16000, 5.3, atol=0.05)  # 5.28 s of video, 5.31 s of audio

    def test_default_kinetics_like_clip_and_errors(self):
        example = next(iter(bigbuckbunny.load("test")))
        self.assertEqual(tuple(example["video"].shape), (16, 64, 64, 3))
        self.assertEqual(tuple(example["audio"].shape), (30720,))  # 1,920 samples per frame at 48 kHz
        with pytest.raises(ValueError, match="no clip of 40 frames fits in the test split"):
            bigbuckbunny.load("test", num_frames=40)
        with pytest.raises(ValueError, match="needs validation_fraction > 0. Received: validation_fraction"):
            bigbuckbunny.load("validation")
        with pytest.raises(ValueError, match="Received: 'dev'"):
            bigbuckbunny.load("dev")
        with pytest.raises(ValueError, match="must be in .*Received: validation_fraction=0.8"):
            bigbuckbunny.load("train", validation_fraction=0.8)

    def test_validation_frames_lie_between_train_and_test(self):
        # 132 frames, 20% test (106..131), 15% validation (86..105), train 0..85; the test split is unchanged.
        starts = {
            split: bigbuckbunny.clip_starts(split, 132, 8, 1, 0.2, 0.15) for split in ("train", "validation")
        }
        self.assertEqual((starts["train"][0], starts["train"][-1] + 8), (0, 86))
        self.assertEqual((starts["validation"][0], starts["validation"][-1] + 8), (86, 106))
        self.assertEqual(bigbuckbunny.clip_starts("test", 132, 8, 8, 0.2, 0.15), [106, 114, 122])
        options = {"num_frames": 8, "size": (16, 16), "audio_sample_rate": 8000, "validation_fraction": 0.15}
        validation = as_numpy(bigbuckbunny.load("validation", **options))
        train = as_numpy(bigbuckbunny.load("train", **options))
        self.assertEqual((len(validation["video"]), len(train["video"])), (2, 10))
        video, _ = bigbuckbunny.decode((16, 16), 8000)
        np.testing.assert_allclose(validation["video"][0], video[86:94] / 255.0, atol=1e-7)
        test = as_numpy(bigbuckbunny.load("test", **options))
        without_validation = bigbuckbunny.load("test", num_frames=8, size=(16, 16), audio_sample_rate=8000)
        np.testing.assert_array_equal(test["video"], as_numpy(without_validation)["video"])
        with pytest.raises(ValueError, match="num_frames, clip_stride"):
            bigbuckbunny.load("train", clip_stride=0)
