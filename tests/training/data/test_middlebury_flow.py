"""Tests of the `middlebury_flow` reader: the real Middlebury pair, u = -disparity, masked infinities."""

import numpy as np
import pytest

from tests.test_case import TestCase
from tests.training.data.flow_checks import backward_warp_error
from tests.training.data.helpers import as_numpy, assert_unbatched_dict
from training.data import middlebury_flow


class MiddleburyFlowTest(TestCase):
    def test_full_size_pair_and_sign_convention(self):
        dataset = middlebury_flow.load("test")
        assert_unbatched_dict(
            dataset,
            {
                "frames": ("float32", (2, 500, 741, 3)),
                "flow": ("float32", (500, 741, 2)),
                "valid": ("float32", (500, 741)),
            },
        )
        data = as_numpy(dataset)
        frames, flow, valid = data["frames"][0], data["flow"][0], data["valid"][0]
        self.assertTrue(np.isfinite(flow).all())
        self.assertTrue(-1.0 <= frames.min() and frames.max() <= 1.0)
        self.assertAllClose(1.0 - float(valid.mean()), 0.073, atol=0.005)  # ~7% of the disparity is inf
        self.assertEqual(float(np.abs(flow[..., 1]).max()), 0.0)
        self.assertTrue((flow[..., 0][valid > 0] < 0).all())  # u = -disparity, disparities 7..60 pixels
        self.assertTrue((flow[..., 0][valid == 0] == 0).all())
        # The ground truth explains the pair: sampling frame 1 at p + flow beats zero flow and the other sign.
        right = backward_warp_error(frames, flow, valid) * 127.5
        zero = backward_warp_error(frames, np.zeros_like(flow), valid) * 127.5
        wrong_sign = backward_warp_error(frames, flow, valid, sign=-1.0) * 127.5
        print(f"middlebury photometric error (0..255): gt {right:.2f}, zero {zero:.2f}, -gt {wrong_sign:.2f}")
        self.assertLess(right, 10.0)
        self.assertLess(2.5 * right, zero)
        self.assertLess(2.5 * right, wrong_sign)

    def test_resized(self):
        frames, flow, valid = middlebury_flow.load_arrays(size=(250, 370))
        full_frames, full_flow, _ = middlebury_flow.load_arrays()
        self.assertEqual(frames.shape, (2, 250, 370, 3))
        self.assertEqual((flow.shape, valid.shape), ((250, 370, 2), (250, 370)))
        self.assertAllClose(float(flow[..., 0].min()), float(full_flow[..., 0].min()) * 370 / 741, atol=1.0)
        zero = backward_warp_error(frames, 0 * flow, valid)
        self.assertLess(backward_warp_error(frames, flow, valid), 0.5 * zero)
        with pytest.raises(ValueError, match="Received: 'train'"):
            middlebury_flow.load("train")
        with pytest.raises(ValueError, match="size must be"):
            middlebury_flow.load("test", size=(0, 3))
        del full_frames
