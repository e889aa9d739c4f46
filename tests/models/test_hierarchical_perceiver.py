"""Tests of `HiPBackbone` and `HierarchicalPerceiver`, and their parity with the official HiP code."""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from keras_perceiver.convert import from_deepmind_hip
from keras_perceiver.layers import fold_groups, unfold_groups
from keras_perceiver.models import HierarchicalPerceiver, HiPBackbone
from tests.test_case import TestCase

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "hip", "reference_tiny.npz")

# The official `HiP` template's configuration of the fixture (its `meta/json`), in this library's vocabulary.
TINY = {
    "input_shapes": {"image": (200, 3), "label": (10, 1)},
    "num_groups": (8, 2, 1, 2, 8),
    "num_self_attends_per_block": (1, 1, 2, 1, 1),
    "num_latents": (16, 8, 8, 8, 16),
    "latent_dim": (32, 48, 64, 24, 16),
    "num_cross_attention_heads": (1,) * 5,
    "num_self_attention_heads": (2, 2, 4, 2, 1),
    "cross_attention_widening_factor": (1,) * 5,
    "self_attention_widening_factor": (4,) * 5,
    "num_embedding_channels": 8,
    "num_position_encoding_channels": 512,
    "regroup_type": "reshape",
}

# A smaller U-Net for the behaviour tests.
SMALL = {
    "input_shapes": {"image": (12, 3), "label": (2, 4)},
    "num_groups": (4, 1, 4),
    "num_self_attends_per_block": (1, 1, 1),
    "num_latents": (2, 8, 2),
    "latent_dim": (8, 16, 8),
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 2,
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 2,
    "num_embedding_channels": 4,
}


def load_fixture():
    with np.load(FIXTURE) as archive:
        return {name: archive[name] for name in archive.files}


def fixture_params(fixture, prefix):
    return {name[len(prefix) :]: value for name, value in fixture.items() if name.startswith(prefix)}


def small_inputs(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "image": rng.normal(size=(batch, 12, 3)).astype("float32"),
        "label": rng.normal(size=(batch, 2, 4)).astype("float32"),
    }


def randomize(model, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [w + rng.normal(scale=scale, size=w.shape).astype(w.dtype) for w in model.get_weights()]
    )
    return model


class HierarchicalPerceiverParityTest(TestCase):
    """Every activation and output of the official `HiP` on the fixture, within 1e-5 of its max-abs value."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fixture = load_fixture()

    def _activations(self, model, inputs):
        encoded = model.backbone.encode(inputs)
        activations = {}
        for m in TINY["input_shapes"]:
            activations[f"embedder.embed/{m}"] = encoded["embeddings"][m]
            activations[f"position_encoder.pos_enc/{m}"] = encoded["positions"][m]
        # The inputs with positions, before grouping: embeddings + positions.
        with_positions, _ = model.backbone.position_encoder(encoded["embeddings"])
        for m in TINY["input_shapes"]:
            activations[f"position_encoder.with_pos/{m}"] = with_positions[m]
        for i, block in enumerate(encoded["block_outputs"]):
            activations[f"block_{i}"] = block
        head = model.reconstruction_head(fold_groups(encoded["mae_queries"]), fold_groups(encoded["latents"]))
        activations["reconstruction_head(grouped)"] = unfold_groups(head, TINY["num_groups"][0])
        return activations

    def _compare(self, name, actual, expected, maxima):
        actual = np.asarray(keras.ops.convert_to_numpy(actual))
        self.assertEqual(actual.shape, expected.shape, msg=name)
        scale = float(np.abs(expected).max())
        error = float(np.abs(actual - expected).max()) / max(scale, 1e-30)
        maxima[name] = error
        self.assertLessEqual(error, 1e-5, msg=f"{name}: max error {error:.3g} of max-abs {scale:.3g}")

    def test_matches_the_official_code(self):
        fixture = self.fixture
        meta = json.loads(str(fixture["meta/json"]))
        model = HierarchicalPerceiver(**TINY)
        self.assertEqual(model.count_params(), meta["num_params"])
        inputs = {m: fixture[f"input/{m}"] for m in TINY["input_shapes"]}
        for tag, prefix in (("init", "param/"), ("pert", "pparam/")):
            from_deepmind_hip(fixture_params(fixture, prefix), model)
            maxima = {}
            for name, actual in self._activations(model, inputs).items():
                self._compare(f"act/{tag}/{name}", actual, fixture[f"act/{tag}/{name}"], maxima)
            for mode, training in (("eval", False), ("train", True)):
                outputs = model(inputs, training=training)
                for key in ("input_reconstruction", "latents"):
                    for m in TINY["input_shapes"]:
                        name = f"out/{tag}/{mode}/{key}/{m}"
                        expected = fixture[name]
                        if not np.abs(expected).max():  # init: the reconstruction is exactly zero
                            self.assertAllZero(outputs[key][m])
                            continue
                        self._compare(name, outputs[key][m], expected, maxima)
            print(f"HiP parity ({tag}), max |error| / max |reference|:")
            for name, error in maxima.items():
                print(f"  {name}: {error:.2e}")
        # The perturbed parameters exercise every weight (the init reconstruction alone is zero).
        self.assertGreater(np.abs(fixture["out/pert/eval/input_reconstruction/image"]).max(), 0.05)

    def test_mixed_precision_stays_close(self):
        params = fixture_params(self.fixture, "pparam/")
        inputs = {m: self.fixture[f"input/{m}"] for m in TINY["input_shapes"]}

        def builder(dtype):
            return from_deepmind_hip(params, HierarchicalPerceiver(**TINY, dtype=dtype))

        self.run_mixed_precision_test(builder, inputs=inputs)


class HierarchicalPerceiverTest(TestCase):
    def test_public_call_and_outputs(self):
        model = HierarchicalPerceiver(**SMALL)
        outputs = model(small_inputs())
        self.assertEqual(sorted(outputs), ["input_reconstruction", "latents"])
        shapes = {k: {m: tuple(x.shape) for m, x in v.items()} for k, v in outputs.items()}
        # image: 3 groups of 4 (2 latents each -> 6 rows); label: 1 group of 2 (padding 2: 2 - 2 = 0 rows).
        self.assertEqual(
            shapes,
            {
                "input_reconstruction": {"image": (2, 12, 3), "label": (2, 2, 4)},
                "latents": {"image": (2, 6, 8), "label": (2, 0, 8)},
            },
        )
        self.assertAllZero(outputs["input_reconstruction"]["image"])  # the un-embedding starts at zero
        backbone_outputs = model.backbone(small_inputs())
        self.assertEqual(tuple(backbone_outputs["latents"].shape), (2, 4, 2, 8))
        self.assertEqual(tuple(backbone_outputs["mae_queries"].shape), (2, 4, 4, 4))

    def test_flat_arguments_and_backbone_build_the_same_model(self):
        flat = HierarchicalPerceiver(**SMALL)
        from_backbone = HierarchicalPerceiver(backbone=HiPBackbone(**SMALL))
        configs = [model.get_config()["backbone"]["config"] for model in (flat, from_backbone)]
        self.assertEqual(*[{k: v for k, v in config.items() if k != "name"} for config in configs])
        randomize(flat)
        from_backbone.set_weights(flat.get_weights())
        self.assertAllClose(flat(small_inputs()), from_backbone(small_inputs()), atol=1e-6)
        self.assertIs(HierarchicalPerceiver.from_hyperparameters(**SMALL).__class__, HierarchicalPerceiver)

    def test_config_round_trip(self):
        model = HierarchicalPerceiver(**SMALL, processor_num_latents_train=4, drop_path_rate=0.1, seed=3)
        restored = self.run_config_round_trip(model)
        self.assertEqual(restored.backbone.processor_num_latents_train, 4)
        self.run_config_round_trip(model.backbone)
        # JSON turns the tuples into lists; they still build the same model.
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
        revived = keras.saving.deserialize_keras_object(config)
        self.assertEqual(revived.count_params(), model.count_params())

    def test_keras_saving(self):
        model = randomize(HierarchicalPerceiver(**SMALL))
        restored = self.run_model_saving_test(model, small_inputs(), atol=1e-5)
        self.assertIsInstance(restored.backbone, HiPBackbone)

    def test_predict_on_a_dataset_and_an_empty_batch(self):
        model = randomize(HierarchicalPerceiver(**SMALL))
        self.run_predict_on_dataset(model, small_inputs(batch=3), batch_size=2)
        empty = model.predict({m: x[:0] for m, x in small_inputs().items()}, verbose=0)
        self.assertEqual(empty["input_reconstruction"]["image"].shape, (0, 12, 3))

    def test_gradients_reach_every_weight_in_training(self):
        model = randomize(
            HierarchicalPerceiver(
                **SMALL, processor_num_latents_train=4, dropout=0.1, drop_path_rate=0.2, seed=1
            )
        )
        inputs = small_inputs(batch=4)
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = sum(
                tf.reduce_sum(tf.square(x - inputs[m])) for m, x in outputs["input_reconstruction"].items()
            )
        grads = tape.gradient(loss, model.trainable_variables)
        missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
        self.assertEqual(missing, [])

    def test_processor_latent_subsets_at_training_time_only(self):
        backbone = HiPBackbone(**SMALL, processor_num_latents_train=4, seed=0)
        inputs = small_inputs()
        training = backbone.encode(inputs, training=True)["block_outputs"][1]
        self.assertEqual(tuple(training.shape), (2, 1, 4, 16))
        self.assertEqual(tuple(backbone.encode(inputs)["block_outputs"][1].shape), (2, 1, 8, 16))
        evaluation = HiPBackbone(**SMALL, processor_num_latents_eval=12)
        self.assertEqual(evaluation.hip_blocks[1].encoder.num_latents, 12)
        self.assertEqual(evaluation.hip_blocks[1].encoder.num_latents_train, 8)
        self.assertEqual(tuple(evaluation.encode(inputs)["block_outputs"][1].shape), (2, 1, 12, 16))
        # A fit step runs the subsets and drop path in a compiled graph.
        model = HierarchicalPerceiver(**SMALL, processor_num_latents_train=4, drop_path_rate=0.1)
        model.compile(optimizer="adam", loss={"input_reconstruction": {"image": "mse", "label": "mse"}})
        history = model.fit(
            small_inputs(batch=4), {"input_reconstruction": small_inputs(batch=4)}, epochs=1, verbose=0
        )
        self.assertTrue(np.isfinite(history.history["loss"][0]))

    def test_padding_masks(self):
        model = randomize(HierarchicalPerceiver(**SMALL))
        inputs = small_inputs()
        plain = model(inputs)
        # No mask or all-None masks: the official computation (padding zeros attended to).
        with_none = model({**inputs, "image_padding_mask": None, "label_padding_mask": None})
        self.assertAllClose(with_none, plain, atol=1e-6)
        mask = np.ones((2, 12), bool)
        mask[0, 8:] = False
        masked = model({**inputs, "image_padding_mask": mask})
        changed = {**inputs, "image": inputs["image"].copy()}
        changed["image"][0, 8:] = 100.0
        changed_out = model({**changed, "image_padding_mask": mask})
        # Block 0 never attends to the padded image elements (the image's groups read the rest).
        self.assertAllClose(changed_out["latents"], masked["latents"], atol=1e-5)
        # All-real masks differ from no mask through the grouping's own zero padding only: here the label (2
        # elements in a group of 4) pads 2 zeros, which are masked now; without padding they are the same.
        all_real = model({**inputs, "image_padding_mask": np.ones((2, 12), bool)})
        self.assertFalse(np.allclose(all_real["latents"]["image"], plain["latents"]["image"], atol=1e-5))
        unpadded = randomize(
            HierarchicalPerceiver(**{**SMALL, "input_shapes": {"image": (12, 3), "label": (4, 4)}})
        )
        inputs = {**inputs, "label": np.ones((2, 4, 4), "float32")}
        self.assertAllClose(
            unpadded({**inputs, "label_padding_mask": np.ones((2, 4), bool)}), unpadded(inputs), atol=1e-5
        )

    def test_a_fully_padded_modality_gives_finite_outputs_that_ignore_it(self):
        # Every image element of example 0 padded: its groups' block-0 attention rows are fully masked, which
        # gives zeros (DeepMind's masking), never NaN; the padded values cannot change anything.
        model = randomize(HierarchicalPerceiver(**SMALL))
        inputs = small_inputs()
        mask = np.ones((2, 12), bool)
        mask[0] = False
        masked = model({**inputs, "image_padding_mask": mask})
        changed = {**inputs, "image": inputs["image"].copy(), "image_padding_mask": mask}
        changed["image"][0] = -50.0
        changed_out = model(changed)
        for outputs in (masked, changed_out):
            for value in keras.tree.flatten(outputs):
                self.assertAllFinite(np.asarray(value))
        self.assertAllClose(changed_out["latents"], masked["latents"], atol=1e-5)

    def test_errors_name_expected_and_received_values(self):
        with self.assertRaisesRegex(ValueError, r"odd number of blocks.*Received: 4 blocks"):
            HiPBackbone(**{**SMALL, "num_groups": (4, 1, 1, 4)})
        with self.assertRaisesRegex(ValueError, r"block 1\) must have 1 group.*num_groups\[1\]=2"):
            HiPBackbone(**{**SMALL, "num_groups": (4, 2, 4)})
        with self.assertRaisesRegex(ValueError, r"at most num_groups\[0\]=1 modalities\. Received: 2"):
            HiPBackbone(**{**SMALL, "num_groups": (1, 1, 1)})
        with self.assertRaisesRegex(
            ValueError, r"block 1: latent_dim\[1\]=16 channels.*num_self_attention_heads\[1\]=3"
        ):
            HiPBackbone(**{**SMALL, "num_self_attention_heads": (2, 3, 2)})
        with self.assertRaisesRegex(
            ValueError, r"block 0: num_embedding_channels=4 channels.*num_cross_attention_heads\[0\]=8"
        ):
            HiPBackbone(**{**SMALL, "num_cross_attention_heads": (8, 1, 1), "latent_dim": (8, 16, 8)})
        with self.assertRaisesRegex(ValueError, r"`latent_dim` must have one entry per block \(3.*\(8, 16\)"):
            HiPBackbone(**{**SMALL, "latent_dim": (8, 16)})
        with self.assertRaisesRegex(ValueError, r"decoder block 2 adds the output of encoder block 0"):
            HiPBackbone(**{**SMALL, "num_latents": (2, 4, 3)})
        with self.assertRaisesRegex(ValueError, r"at most one of.*train=4.*eval=12"):
            HiPBackbone(**SMALL, processor_num_latents_train=4, processor_num_latents_eval=12)
        model = HierarchicalPerceiver(**SMALL)
        inputs = small_inputs()
        with self.assertRaisesRegex(ValueError, r"missing inputs \['label'\]"):
            model({"image": inputs["image"]})
        with self.assertRaisesRegex(
            ValueError,
            r"`image` must have shape \(B, 12, 3\): axis 1 should be 12\. "
            r"Received: image\.shape=\(2, 11, 3\)",
        ):
            model({**inputs, "image": inputs["image"][:, :11]})
        with self.assertRaisesRegex(ValueError, r"unknown inputs \['audio'\]"):
            model({**inputs, "audio": inputs["image"]})
        with self.assertRaisesRegex(TypeError, r"either `backbone` or"):
            HierarchicalPerceiver(backbone=model.backbone, num_groups=(4, 1, 4))
        with self.assertRaisesRegex(TypeError, r"must be a `HiPBackbone`\. Received: str"):
            HierarchicalPerceiver(backbone="hip")
