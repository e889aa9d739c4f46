"""Tests of the `warped_flow` reader: real photos warped by smooth random flow with exact ground truth."""

import numpy as np
import pytest

from tests.test_case import TestCase
from tests.training.data.flow_checks import backward_warp_error
from tests.training.data.helpers import as_numpy, assert_unbatched_dict
from training.data import warped_flow


class WarpedFlowTest(TestCase):
    def test_shapes_ranges_and_exact_ground_truth(self):
        dataset = warped_flow.load("train", crop_size=(40, 56), max_flow=6.0, num_examples=6)
        assert_unbatched_dict(
            dataset,
            {
                "frames": ("float32", (2, 40, 56, 3)),
                "flow": ("float32", (40, 56, 2)),
                "valid": ("float32", (40, 56)),
            },
        )
        data = as_numpy(dataset)
        self.assertEqual(data["frames"].shape, (6, 2, 40, 56, 3))
        self.assertTrue(-1.0 <= data["frames"].min() and data["frames"].max() <= 1.0)
        self.assertLessEqual(float(np.abs(data["flow"]).max()), 6.0)
        self.assertGreater(float(np.abs(data["flow"]).mean()), 0.5)  # not a null field
        self.assertEqual(set(np.unique(data["valid"]).tolist()) <= {0.0, 1.0}, True)
        self.assertGreater(float(data["valid"].mean()), 0.5)
        for frames, flow, valid in zip(data["frames"], data["flow"], data["valid"]):
            # Frame 1 sampled at p + flow(p) reproduces frame 0 (bilinear of the same photo grid: exact).
            exact = backward_warp_error(frames, flow, valid)
            self.assertLess(exact, 1e-5)
            zero = backward_warp_error(frames, np.zeros_like(flow), valid)
            self.assertGreater(zero, 100 * max(exact, 1e-4))

    def test_determinism_and_disjoint_photos(self):
        first = as_numpy(warped_flow.load("test", num_examples=3, crop_size=(16, 16)))
        again = as_numpy(warped_flow.load("test", num_examples=3, crop_size=(16, 16)))
        other = as_numpy(warped_flow.load("test", num_examples=3, crop_size=(16, 16), seed=1))
        for key in first:
            np.testing.assert_array_equal(first[key], again[key])
        self.assertFalse(np.array_equal(first["flow"], other["flow"]))
        splits = [set(warped_flow.SPLIT_PHOTOS[split]) for split in warped_flow.SPLITS]
        self.assertEqual(set.union(*splits), set(warped_flow.PHOTOS))
        self.assertEqual(sum(len(photos) for photos in splits), 12)  # pairwise disjoint
        self.assertEqual(int(warped_flow.load("validation").cardinality()), 200)
        self.assertEqual(int(warped_flow.load("test").cardinality()), 200)
        # Crops larger than a photo (coins is 303 x 384) enlarge it instead of failing.
        large = next(iter(warped_flow.load("test", crop_size=(320, 400), num_examples=1)))
        self.assertEqual(tuple(large["frames"].shape), (2, 320, 400, 3))

    def test_validation_frames_come_from_the_validation_photos(self):
        from training.data.photos import load_photo

        def source(frame1):  # the photos holding this crop (frame 1 is an unwarped crop)
            pixels = np.round((frame1 + 1.0) * 127.5).astype(np.uint8)
            height, width = pixels.shape[:2]
            found = []
            for name in warped_flow.PHOTOS:
                photo = load_photo(name)
                for y, x in zip(*np.nonzero((photo == pixels[0, 0]).all(axis=-1))):
                    if np.array_equal(photo[y : y + height, x : x + width], pixels):
                        found.append(name)
                        break
            return found

        validation = as_numpy(warped_flow.load("validation", num_examples=3, crop_size=(12, 12)))
        for frame1 in validation["frames"][:, 1]:
            found = source(frame1)
            self.assertTrue(found and set(found) <= set(warped_flow.VALIDATION_PHOTOS), msg=found)
        train = as_numpy(warped_flow.load("train", num_examples=2, crop_size=(12, 12)))
        for frame1 in train["frames"][:, 1]:
            found = source(frame1)
            self.assertTrue(found and set(found) <= set(warped_flow.TRAIN_PHOTOS), msg=found)

    def test_errors(self):
        with pytest.raises(ValueError, match="Received: 'dev'"):
            warped_flow.load("dev")
        with pytest.raises(ValueError, match="crop_size must be"):
            warped_flow.load("train", crop_size=(1, 8))
        with pytest.raises(ValueError, match="max_flow > 0"):
            warped_flow.load("train", max_flow=0)
