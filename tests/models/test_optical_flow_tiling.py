"""Tests of full-resolution optical flow from overlapping tiles."""

import itertools

import keras
import numpy as np

from keras_perceiver.models.optical_flow_tiling import predict_flow_tiled, tile_origins, tile_weights
from keras_perceiver.models.perceiver_optical_flow import PerceiverOpticalFlow
from tests.test_case import TestCase

WINDOW = (6, 8)
# A small flow model in the flat form (`PerceiverOpticalFlow.from_hyperparameters`).
TINY = dict(
    image_size=WINDOW,
    train_size=WINDOW,
    num_bands=3,
    output_channels=8,
    num_latents=6,
    latent_dim=16,
    num_self_attends_per_block=1,
    num_self_attention_heads=2,
    initializer_range=0.2,
)


def frames_of(height, width, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(batch, 2, height, width, 3)).astype("float32")


def pixelwise_model(window=WINDOW):
    """A translation-equivariant test double: the flow at a pixel is a function of that pixel only."""
    frames = keras.Input(shape=(2, *window, 3), name="frames")
    flow = keras.layers.Lambda(lambda f: f[:, 0, :, :, :2] * 3.0 - f[:, 1, :, :, 1:])(frames)
    return keras.Model({"frames": frames}, flow)


def constant_flow_model(value=(2.75, -1.5), window=WINDOW):
    frames = keras.Input(shape=(2, *window, 3), name="frames")
    value = np.array(value, "float32")
    flow = keras.layers.Lambda(lambda f: keras.ops.zeros_like(f[:, 0, :, :, :2]) + value)(frames)
    return keras.Model({"frames": frames}, flow)


class TileGridTest(TestCase):
    def test_example_grid(self):
        self.assertEqual(tile_origins((10, 12), (6, 8), min_overlap=2), [(0, 0), (0, 4), (4, 0), (4, 4)])
        self.assertEqual(tile_origins((6, 8), (6, 8), min_overlap=5), [(0, 0)])

    def test_tiles_cover_the_frame_with_the_minimum_overlap(self):
        sizes = [(6, 8), (7, 8), (13, 9), (30, 41)]
        for (height, width), min_overlap in itertools.product(sizes, [0, 1, 3, 5]):
            origins = tile_origins((height, width), WINDOW, min_overlap)
            ys = sorted({y for y, _ in origins})
            xs = sorted({x for _, x in origins})
            self.assertEqual(origins, [(y, x) for y in ys for x in xs])
            for starts, size, window in ((ys, height, WINDOW[0]), (xs, width, WINDOW[1])):
                self.assertEqual(starts[0], 0)
                self.assertEqual(starts[-1], size - window)  # flush with the far border
                for a, b in zip(starts, starts[1:]):
                    self.assertGreaterEqual(a + window - b, min_overlap)  # overlap of neighbours
                    self.assertGreater(b, a)
            coverage = np.zeros((height, width), int)
            for y, x in origins:
                coverage[y : y + WINDOW[0], x : x + WINDOW[1]] += 1
            self.assertTrue(np.all(coverage >= 1))

    def test_weights_sum_to_one_everywhere(self):
        for size in [(6, 8), (11, 19), (30, 41)]:
            origins, weights = tile_weights(size, WINDOW, min_overlap=3)
            self.assertEqual(weights.shape, (len(origins), *WINDOW))
            self.assertTrue(np.all(weights > 0))
            total = np.zeros(size)
            for (y, x), weight in zip(origins, weights):
                total[y : y + WINDOW[0], x : x + WINDOW[1]] += weight
            np.testing.assert_allclose(total, 1.0, rtol=0, atol=1e-12)
        # Inside one window the weight grows with the distance to the window border.
        _, weights = tile_weights((6, 14), WINDOW, min_overlap=2)
        self.assertGreater(weights[0, 3, 3], weights[0, 3, 7])  # tile 0's right border lies in the overlap


class PredictFlowTiledTest(TestCase):
    def test_frames_of_the_window_size_give_the_model_output(self):
        model = PerceiverOpticalFlow.from_hyperparameters(**TINY)
        frames = frames_of(*WINDOW)
        expected = np.asarray(model({"frames": frames}))
        np.testing.assert_array_equal(predict_flow_tiled(model, frames, min_overlap=2), expected)

    def test_larger_frames(self):
        model = PerceiverOpticalFlow.from_hyperparameters(**TINY)
        frames = frames_of(11, 19)
        flow = predict_flow_tiled(model, frames, min_overlap=2, batch_size=3)
        self.assertEqual(flow.shape, (2, 11, 19, 2))
        self.assertEqual(flow.dtype, np.float32)
        self.assertAllFinite(flow)
        # Batching the tiles differently changes nothing.
        self.assertAllClose(predict_flow_tiled(model, frames, min_overlap=2, batch_size=100), flow, atol=1e-6)
        # A corner pixel lies in one tile only: it is that tile's prediction.
        corner = np.asarray(model({"frames": frames[:, :, : WINDOW[0], : WINDOW[1]]}))
        self.assertAllClose(flow[:, 0, 0], corner[:, 0, 0], atol=1e-6)
        far_corner = np.asarray(model({"frames": frames[:, :, -WINDOW[0] :, -WINDOW[1] :]}))
        self.assertAllClose(flow[:, -1, -1], far_corner[:, -1, -1], atol=1e-6)

    def test_translation_equivariant_doubles_give_the_exact_field(self):
        for height, width, min_overlap in [(6, 8, 0), (11, 19, 2), (23, 17, 5)]:
            frames = frames_of(height, width, batch=3, seed=height)
            expected = frames[:, 0, :, :, :2] * 3.0 - frames[:, 1, :, :, 1:]
            flow = predict_flow_tiled(pixelwise_model(), frames, min_overlap=min_overlap, batch_size=4)
            print(f"{height}x{width}: max |tiled - exact| = {np.max(np.abs(flow - expected)):.2e}")
            # Blending accumulates in float64: the float32 result is the exact field.
            np.testing.assert_array_equal(flow, expected)
            constant = predict_flow_tiled(constant_flow_model(), frames, min_overlap=min_overlap)
            np.testing.assert_array_equal(constant, np.broadcast_to(np.float32([2.75, -1.5]), constant.shape))

    def test_errors(self):
        model = PerceiverOpticalFlow.from_hyperparameters(**TINY)
        with self.assertRaisesRegex(
            ValueError, r"at least as large.*H >= 6 and W >= 8.*Received: \(H, W\)=\(5, 9\)"
        ):
            predict_flow_tiled(model, frames_of(5, 9))
        with self.assertRaisesRegex(ValueError, r"\(B, 2, H, W, 3\).*Received: frames.shape=\(2, 6, 8, 3\)"):
            predict_flow_tiled(model, frames_of(6, 8)[:, 0])
        with self.assertRaisesRegex(ValueError, "min_overlap < 6.*Received: min_overlap=6"):
            predict_flow_tiled(model, frames_of(12, 12), min_overlap=6)
        with self.assertRaisesRegex(ValueError, "non-negative.*min_overlap=-1"):
            predict_flow_tiled(model, frames_of(12, 12), min_overlap=-1)
        with self.assertRaisesRegex(ValueError, "batch_size.*Received: batch_size=0"):
            predict_flow_tiled(model, frames_of(12, 12), batch_size=0)
        subsampled = PerceiverOpticalFlow.from_hyperparameters(**TINY, subsample_outputs=True)
        with self.assertRaisesRegex(ValueError, "subsample_outputs=True"):
            predict_flow_tiled(subsampled, frames_of(12, 12))
