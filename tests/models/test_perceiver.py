"""Tests of the original Perceiver classifier."""

import numpy as np

from keras_perceiver.models import Perceiver, PerceiverBackbone
from tests.test_case import TestCase

STACK = dict(
    num_latents=6,
    latent_dim=16,
    num_cross_attends=3,
    num_self_attends_per_block=1,
    num_cross_attention_heads=1,
    num_self_attention_heads=2,
)


def tiny(dtype=None, num_classes=4, **stack):
    """A Perceiver with 3 cross-attends (repeats 2 and 3 share weights unless told otherwise)."""
    backbone = PerceiverBackbone(input_shape=(12, 3), dtype=dtype, **{**STACK, **stack})
    return Perceiver(backbone, num_classes=num_classes, dtype=dtype)


def _inputs(batch=3, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, 12), dtype=bool)
    mask[1, 7:] = False
    return {"inputs": rng.normal(size=(batch, 12, 3)).astype("float32"), "padding_mask": mask}


class PerceiverTest(TestCase):
    def test_output_shape_and_padding(self):
        model = tiny()
        inputs = _inputs()
        logits = np.asarray(model(inputs))
        self.assertEqual(logits.shape, (3, 4))
        self.assertAllFinite(logits)
        # Values at padded positions never matter, at every repeated cross-attend.
        changed = {**inputs, "inputs": inputs["inputs"].copy()}
        changed["inputs"][1, 7:] = 100.0
        self.assertAllClose(model(changed), logits, atol=1e-6)
        # ...but real positions do.
        changed["inputs"][1, 0] = 100.0
        self.assertGreater(np.abs(np.asarray(model(changed))[1] - logits[1]).max(), 1e-4)

    def test_weight_sharing_from_second_repeat(self):
        shared = tiny()
        separate = tiny(share_cross_attend_weights=False)
        two = tiny(num_cross_attends=2)
        # Repeats 2..K share one cross-attend + latent block: 3 repeats cost as much as 2.
        self.assertEqual(shared.count_params(), two.count_params())
        first_repeat = separate.get_layer("cross_attention_1").count_params() + separate.get_layer(
            "processor_1"
        ).count_params()
        self.assertEqual(separate.count_params(), shared.count_params() + first_repeat)

    def test_shared_repeats_compute_with_the_same_weights(self):
        # The computation itself: encoder -> processor -> (shared cross-attend -> shared processor) x 2
        # -> pool -> norm -> classifier, rebuilt from the model's own layers, equals the model's output;
        # running the shared pair only once (as if the repeats had their own copies) gives another output.
        model = tiny(initializer_range=0.5)
        inputs = _inputs()
        x, mask = inputs["inputs"], inputs["padding_mask"]
        cross, processor = model.get_layer("cross_attention_shared"), model.get_layer("processor_shared")

        def head(latents):
            pooled = np.asarray(latents).mean(axis=1)
            return model.get_layer("classifier")(model.get_layer("head_norm")(pooled))

        latents = model.get_layer("processor")(model.get_layer("encoder")(x, padding_mask=mask))
        once = processor(cross(latents, x, padding_mask=mask))
        twice = processor(cross(once, x, padding_mask=mask))
        self.assertAllClose(head(twice), model(inputs), atol=1e-5)
        self.assertGreater(np.abs(np.asarray(head(once)) - np.asarray(model(inputs))).max(), 1e-3)

    def test_config_save_and_predict(self):
        model = tiny()
        config = model.get_config()
        self.assertEqual(config["num_classes"], 4)
        for key, value in STACK.items():
            self.assertEqual(config["backbone"]["config"][key], value)
        self.run_config_round_trip(model)
        inputs = _inputs(batch=3)
        self.run_model_saving_test(model, inputs)
        self.run_predict_on_dataset(model, inputs)

    def test_mixed_precision(self):
        self.run_mixed_precision_test(lambda dtype: tiny(dtype=dtype), inputs=_inputs())

    def test_distributed_fit_step(self):
        inputs = _inputs(batch=4)
        # Under a tf.distribute strategy Keras 3.15 averages a first data batch across replicas to
        # build the model, which fails on bool tensors: masks go in as 0/1 integers there.
        inputs["padding_mask"] = inputs["padding_mask"].astype("int32")
        targets = np.array([0, 1, 2, 3])
        self.run_distributed_fit_step(
            tiny, inputs, targets, loss="sparse_categorical_crossentropy"
        )

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "num_classes.*Received: num_classes=0"):
            tiny(num_classes=0)
        model = tiny()
        with self.assertRaisesRegex(ValueError, r"padding_mask.*\(3, 5\)"):
            model({"inputs": _inputs()["inputs"], "padding_mask": np.ones((3, 5), bool)})
