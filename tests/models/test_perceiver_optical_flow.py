"""Tests of PerceiverOpticalFlow, its preprocessor and postprocessor."""

import numpy as np

from keras_perceiver.models.perceiver_optical_flow import PerceiverOpticalFlow
from keras_perceiver.preprocessors.optical_flow_preprocessor import extract_patches
from tests.test_case import TestCase

TINY = dict(
    image_size=(6, 8),
    train_size=(6, 8),
    num_bands=3,
    out_channels=8,
    num_latents=6,
    latent_dim=16,
    num_self_attends_per_block=1,
    num_self_attention_heads=2,
)


def _frames(batch=2, seed=0):
    return {"frames": np.random.default_rng(seed).uniform(-1, 1, size=(batch, 2, 6, 8, 3)).astype("float32")}


class PerceiverOpticalFlowTest(TestCase):
    def test_patches_are_pixel_neighbourhoods(self):
        image = np.arange(4 * 5 * 2, dtype="float32").reshape(1, 4, 5, 2)
        patches = np.asarray(extract_patches(image, 3))
        padded = np.pad(image, ((0, 0), (1, 1), (1, 1), (0, 0)))
        y, x = 2, 3
        expected = padded[0, y : y + 3, x : x + 3, :].reshape(-1)  # (dy, dx, c) order
        self.assertAllClose(patches[0, y, x], expected)

    def test_flow_shape_round_trips_and_fit(self):
        model = PerceiverOpticalFlow(**TINY)
        self.assertEqual(tuple(model(_frames()).shape), (2, 6, 8, 2))
        self.run_config_round_trip(model)
        self.run_model_saving_test(PerceiverOpticalFlow(**TINY, initializer_range=0.5), _frames())
        self.run_distributed_fit_step(
            lambda: PerceiverOpticalFlow(**TINY, initializer_range=0.2),
            _frames(),
            np.random.default_rng(1).normal(size=(2, 6, 8, 2)).astype("float32"),
            loss="mse",
        )

    def test_subsampled_outputs_equal_the_full_field_at_those_pixels(self):
        full_model = PerceiverOpticalFlow(**TINY)
        sub_model = PerceiverOpticalFlow(**TINY, subsample_outputs=True)
        sub_model.set_weights(full_model.get_weights())
        frames = _frames()
        full = np.asarray(full_model(frames)).reshape(2, 48, 2)
        indices = np.array([[0, 47, 13], [5, 5, 40]], "int32")
        subset = np.asarray(sub_model({**frames, "output_indices": indices}))
        self.assertEqual(subset.shape, (2, 3, 2))
        self.assertAllClose(subset, np.take_along_axis(full, indices[..., None], axis=1), atol=1e-6)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "image_size.*Received"):
            PerceiverOpticalFlow(**{**TINY, "image_size": (6,)})
        model = PerceiverOpticalFlow(**TINY)
        with self.assertRaisesRegex(ValueError, "frames"):
            model({"frames": np.zeros((1, 2, 5, 8, 3), "float32")})


def test_preset_parameter_count():
    """Parameters equal transformers' `PerceiverForOpticalFlow` of the same configuration (counted on the
    reference built on torch's meta device) and the preset's pinned count."""
    from tests.models.reference_counts import transformers_flow_parameter_count

    preset = PerceiverOpticalFlow.presets["optical_flow_perceiver"]
    expected = transformers_flow_parameter_count(preset["config"])
    assert preset["num_parameters"] == expected
    assert PerceiverOpticalFlow.from_preset("optical_flow_perceiver").count_params() == expected
