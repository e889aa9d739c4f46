"""Tests of PerceiverOpticalFlow, its preprocessor and postprocessor."""

import numpy as np
import pytest

from keras_perceiver.models import PerceiverBackbone, PerceiverOpticalFlow
from keras_perceiver.preprocessors import OpticalFlowPreprocessor
from keras_perceiver.preprocessors.optical_flow_preprocessor import extract_patches
from tests.test_case import TestCase

STACK = dict(
    num_latents=6,
    latent_dim=16,
    num_self_attends_per_block=1,
    num_cross_attention_heads=1,
    num_self_attention_heads=2,
)
# The same model in the flat (version 1) form.
FLAT = dict(image_size=(6, 8), train_size=(6, 8), num_bands=3, output_channels=8, **STACK)


def tiny_backbone(image_size=(6, 8), initializer_range=0.02, dtype=None):
    """A small flow backbone: `OpticalFlowPreprocessor` (3 bands, width 8) on (2, H, W, 3) frame pairs."""
    preprocessor = OpticalFlowPreprocessor(
        train_size=image_size, num_bands=3, output_channels=8, dtype=dtype, name="flow_preprocessor"
    )
    return PerceiverBackbone(
        input_shape=(2, *image_size, 3),
        input_name="frames",
        input_preprocessor=preprocessor,
        initializer_range=initializer_range,
        dtype=dtype,
        **STACK,
    )


def tiny(initializer_range=0.02, dtype=None, **head):
    return PerceiverOpticalFlow(
        tiny_backbone(initializer_range=initializer_range, dtype=dtype), dtype=dtype, **head
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
        model = tiny()
        self.assertEqual(tuple(model(_frames()).shape), (2, 6, 8, 2))
        self.assertEqual(model.image_size, (6, 8))
        config = model.get_config()
        self.assertEqual(config["rescale_factor"], 100.0)
        self.assertEqual(config["backbone"]["config"]["cross_attention_shape_for_attention"], "kv")
        self.assertIs(model.get_layer("encoder"), model.backbone.encoder)
        self.run_config_round_trip(model)
        self.run_model_saving_test(tiny(initializer_range=0.5), _frames())
        self.run_distributed_fit_step(
            lambda: tiny(initializer_range=0.2),
            _frames(),
            np.random.default_rng(1).normal(size=(2, 6, 8, 2)).astype("float32"),
            loss="mse",
        )

    def test_subsampled_outputs_equal_the_full_field_at_those_pixels(self):
        full_model = tiny()
        sub_model = PerceiverOpticalFlow(full_model.backbone, subsample_outputs=True)
        frames = _frames()
        # The two heads on one backbone have their own decoders: copy the weights.
        sub_model.get_layer("decoder").set_weights(full_model.get_layer("decoder").get_weights())
        full = np.asarray(full_model(frames)).reshape(2, 48, 2)
        indices = np.array([[0, 47, 13], [5, 5, 40]], "int32")
        subset = np.asarray(sub_model({**frames, "output_indices": indices}))
        self.assertEqual(subset.shape, (2, 3, 2))
        self.assertAllClose(subset, np.take_along_axis(full, indices[..., None], axis=1), atol=1e-6)
        # Built flat, the two variants share weight names and values.
        flat_full = PerceiverOpticalFlow.from_hyperparameters(**FLAT)
        flat_sub = PerceiverOpticalFlow.from_hyperparameters(**FLAT, subsample_outputs=True)
        flat_sub.set_weights(flat_full.get_weights())
        full = np.asarray(flat_full(frames)).reshape(2, 48, 2)
        subset = np.asarray(flat_sub({**frames, "output_indices": indices}))
        self.assertAllClose(subset, np.take_along_axis(full, indices[..., None], axis=1), atol=1e-6)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "image_size.*Received"):
            PerceiverOpticalFlow.from_hyperparameters(**{**FLAT, "image_size": (6,)})
        with self.assertRaisesRegex(TypeError, "PerceiverBackbone.*Received: dict"):
            PerceiverOpticalFlow({"num_latents": 4})
        image_backbone = PerceiverBackbone(input_shape=(6, 8, 3), **STACK)
        with self.assertRaisesRegex(ValueError, r"\(2, H, W, C\).*Received: input_shape=\(6, 8, 3\)"):
            PerceiverOpticalFlow(image_backbone)
        model = tiny()
        with self.assertRaisesRegex(ValueError, "frames"):
            model({"frames": np.zeros((1, 2, 5, 8, 3), "float32")})


def test_preset_parameter_count():
    """Parameters equal transformers' `PerceiverForOpticalFlow` of the same configuration (counted on the
    reference built on torch's meta device) and the preset's pinned count."""
    from tests.models.reference_counts import preset_hyperparameters, transformers_flow_parameter_count

    preset = PerceiverOpticalFlow.presets["optical_flow_perceiver"]
    expected = transformers_flow_parameter_count(
        preset_hyperparameters(PerceiverOpticalFlow, "optical_flow_perceiver")
    )
    assert preset["num_parameters"] == expected == 41_057_134
    model = PerceiverOpticalFlow.from_preset("optical_flow_perceiver")
    assert model.count_params() == expected
    backbone = PerceiverBackbone.presets[preset["backbone"]]
    assert backbone["num_parameters"] == model.backbone.count_params()
    assert model.backbone.get_config()["cross_attention_shape_for_attention"] == "kv"


def test_pretrained_backbone_moves_to_a_new_head():
    """A flow model's backbone, weights included, carries another flow head (e.g. other output scaling)."""
    first = tiny(initializer_range=0.5)
    second = PerceiverOpticalFlow(first.backbone, rescale_factor=1.0)
    frames = _frames()
    np.testing.assert_array_equal(
        first.backbone.predict(frames, verbose=0)["latents"],
        second.backbone.predict(frames, verbose=0)["latents"],
    )
    assert second.get_layer("flow_preprocessor") is first.get_layer("flow_preprocessor")
    assert second.get_layer("decoder") is not first.get_layer("decoder")


@pytest.mark.parametrize("old_name", [False, True])
def test_from_hyperparameters_matches_the_explicit_build(old_name):
    flat = dict(FLAT)
    if old_name:  # the argument name before the split
        flat["out_channels"] = flat.pop("output_channels")
    model = PerceiverOpticalFlow.from_hyperparameters(**flat)
    assert model.count_params() == tiny().count_params()
    assert model.backbone.get_layer("flow_preprocessor").output_channels == 8
    assert model.backbone.get_config()["num_latents"] == 6
