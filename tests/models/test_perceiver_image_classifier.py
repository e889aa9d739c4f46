"""Tests of PerceiverImageClassifier and its published presets."""

import numpy as np
import pytest

from keras_perceiver.models import PerceiverBackbone, PerceiverImageClassifier
from keras_perceiver.preprocessors import ImagePreprocessor
from tests.test_case import TestCase

STACK = dict(
    num_latents=6,
    latent_dim=16,
    num_blocks=2,
    num_self_attends_per_block=1,
    num_cross_attention_heads=1,
    num_self_attention_heads=2,
)


def tiny(image_shape=(8, 8, 1), dtype=None, initializer_range=0.02, num_classes=5, **preprocessing):
    """A small classifier: `ImagePreprocessor(**preprocessing)` backbone (3 Fourier bands by default)."""
    preprocessor = ImagePreprocessor(
        **{"num_bands": 3, **preprocessing}, dtype=dtype, name="image_preprocessor"
    )
    backbone = PerceiverBackbone(
        input_shape=image_shape,
        input_name="images",
        input_preprocessor=preprocessor,
        initializer_range=initializer_range,
        dtype=dtype,
        **STACK,
    )
    return PerceiverImageClassifier(backbone, num_classes=num_classes, dtype=dtype)


def _images(batch=3, seed=0):
    return {"images": np.random.default_rng(seed).normal(size=(batch, 8, 8, 1)).astype("float32")}


class PerceiverImageClassifierTest(TestCase):
    def test_round_trips_and_predict(self):
        model = tiny()
        self.assertEqual(tuple(model(_images()).shape), (3, 5))
        config = model.get_config()
        self.assertEqual(config["num_classes"], 5)
        self.assertEqual(config["backbone"]["config"]["num_latents"], 6)
        self.assertIs(model.get_layer("encoder"), model.backbone.encoder)
        self.run_config_round_trip(model)
        model = tiny(initializer_range=0.5)  # O(1) outputs show differences
        self.run_model_saving_test(model, _images())
        self.run_predict_on_dataset(model, _images())

    def test_stems(self):
        for stem in (
            {
                "prep_type": "conv1x1",
                "output_channels": 4,
                "position_encoding_type": "trainable",
                "num_channels": 6,
                "project_pos_dim": 5,
            },
            {"prep_type": "conv", "output_channels": 4, "image_shape": (16, 16, 1)},
        ):
            model = tiny(**stem)
            shape = model.backbone.get_config()["input_shape"]
            images = np.random.default_rng(1).normal(size=(2, *shape)).astype("float32")
            self.assertEqual(tuple(model({"images": images}).shape), (2, 5))

    def test_mixed_precision_and_distributed_fit(self):
        self.run_mixed_precision_test(lambda dtype: tiny(dtype=dtype), inputs=_images())
        self.run_distributed_fit_step(
            tiny,
            _images(batch=4),
            np.array([0, 1, 2, 3]),
            loss="sparse_categorical_crossentropy",
        )

    def test_any_image_size(self):
        """Built for 8x8; other sizes run through call, predict and a saved-and-loaded copy."""
        model = tiny(position_encoding_type="trainable", num_channels=4)
        other = {"images": np.random.default_rng(1).normal(size=(2, 12, 6, 1)).astype("float32")}
        outputs = np.asarray(model(other))
        self.assertEqual(outputs.shape, (2, 5))
        np.testing.assert_allclose(model.predict(other, verbose=0), outputs, atol=1e-5)
        self.run_model_saving_test(model, other)
        with self.assertRaisesRegex(ValueError, r"\(B, \?, \?, 1\).*images.shape=\(2, 12, 6, 3\)"):
            model({"images": np.ones((2, 12, 6, 3), "float32")})

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "num_classes.*Received: num_classes=0"):
            tiny(num_classes=0)
        with self.assertRaisesRegex(TypeError, "PerceiverBackbone.*Received: dict"):
            PerceiverImageClassifier({"num_latents": 4}, num_classes=3)
        with self.assertRaisesRegex(ValueError, "image_shape.*Received: image_shape=\\(8, 8\\)"):
            PerceiverImageClassifier.from_hyperparameters(image_shape=(8, 8))
        with self.assertRaisesRegex(ValueError, "Unknown preset 'vision_perceiver'"):
            PerceiverImageClassifier.from_preset("vision_perceiver")


@pytest.mark.parametrize("preset", sorted(PerceiverImageClassifier.presets))
def test_preset_parameter_counts(preset):
    """Trainable parameters equal transformers' for the same configuration (BatchNorm statistics aside),
    counted on the reference itself (built on torch's meta device) and pinned in the preset."""
    from tests.models.reference_counts import preset_hyperparameters, transformers_image_parameter_count

    expected = transformers_image_parameter_count(preset_hyperparameters(PerceiverImageClassifier, preset))
    assert PerceiverImageClassifier.presets[preset]["num_parameters"] == expected
    model = PerceiverImageClassifier.from_preset(preset)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == expected
    backbone = PerceiverBackbone.presets[preset]
    assert backbone["num_parameters"] == sum(int(np.prod(w.shape)) for w in model.backbone.trainable_weights)


def test_pretrained_backbone_moves_to_a_new_head():
    """A classifier's backbone, weights included, becomes another classifier's (a new head on it)."""
    first = tiny(initializer_range=0.5)
    second = PerceiverImageClassifier(first.backbone, num_classes=3)
    images = _images()["images"]
    np.testing.assert_array_equal(
        first.backbone.predict({"images": images}, verbose=0)["latents"],
        second.backbone.predict({"images": images}, verbose=0)["latents"],
    )
    assert second.get_layer("encoder") is first.get_layer("encoder")
    assert second.get_layer("decoder") is not first.get_layer("decoder")


def test_from_hyperparameters_matches_the_explicit_build():
    flat = PerceiverImageClassifier.from_hyperparameters(
        image_shape=(8, 8, 1), num_classes=5, num_bands=3, **STACK
    )
    assert flat.count_params() == tiny().count_params()
    assert flat.backbone.get_config()["num_blocks"] == 2
