"""Tests of PerceiverImageClassifier and its published presets."""

import numpy as np
import pytest

from keras_perceiver.models.perceiver_image_classifier import PerceiverImageClassifier
from tests.test_case import TestCase

TINY = dict(
    image_shape=(8, 8, 1),
    num_classes=5,
    num_bands=3,
    num_latents=6,
    latent_dim=16,
    num_blocks=2,
    num_self_attends_per_block=1,
    num_self_attention_heads=2,
)


def _images(batch=3, seed=0):
    return {"images": np.random.default_rng(seed).normal(size=(batch, 8, 8, 1)).astype("float32")}


class PerceiverImageClassifierTest(TestCase):
    def test_round_trips_and_predict(self):
        model = PerceiverImageClassifier(**TINY)
        self.assertEqual(tuple(model(_images()).shape), (3, 5))
        config = model.get_config()
        for key, value in TINY.items():
            self.assertEqual(config[key], value)
        self.run_config_round_trip(model)
        model = PerceiverImageClassifier(**TINY, initializer_range=0.5)  # O(1) outputs show differences
        self.run_model_saving_test(model, _images())
        self.run_predict_on_dataset(model, _images())

    def test_stems(self):
        for stem in (
            {
                "prep_type": "conv1x1",
                "out_channels": 4,
                "position_encoding_type": "trainable",
                "num_channels": 6,
                "project_pos_dim": 5,
            },
            {"prep_type": "conv", "out_channels": 4, "image_shape": (16, 16, 1)},
        ):
            model = PerceiverImageClassifier(**{**TINY, **stem})
            shape = model.get_config()["image_shape"]
            images = np.random.default_rng(1).normal(size=(2, *shape)).astype("float32")
            self.assertEqual(tuple(model({"images": images}).shape), (2, 5))

    def test_mixed_precision_and_distributed_fit(self):
        self.run_mixed_precision_test(
            lambda dtype: PerceiverImageClassifier(**TINY, dtype=dtype), inputs=_images()
        )
        self.run_distributed_fit_step(
            lambda: PerceiverImageClassifier(**TINY),
            _images(batch=4),
            np.array([0, 1, 2, 3]),
            loss="sparse_categorical_crossentropy",
        )

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "num_classes.*Received: num_classes=0"):
            PerceiverImageClassifier(**{**TINY, "num_classes": 0})
        with self.assertRaisesRegex(ValueError, "image_shape.*Received: image_shape=\\(8, 8\\)"):
            PerceiverImageClassifier(**{**TINY, "image_shape": (8, 8)})
        with self.assertRaisesRegex(ValueError, "Unknown preset 'vision_perceiver'"):
            PerceiverImageClassifier.from_preset("vision_perceiver")


@pytest.mark.parametrize("preset", sorted(PerceiverImageClassifier.presets))
def test_preset_parameter_counts(preset):
    """Trainable parameters equal transformers' for the same configuration (BatchNorm statistics aside),
    counted on the reference itself (built on torch's meta device) and pinned in the preset."""
    from tests.models.reference_counts import transformers_image_parameter_count

    expected = transformers_image_parameter_count(PerceiverImageClassifier.presets[preset]["config"])
    assert PerceiverImageClassifier.presets[preset]["num_parameters"] == expected
    model = PerceiverImageClassifier.from_preset(preset)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == expected
