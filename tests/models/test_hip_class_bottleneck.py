"""Tests of `HiPClassBottleneck`, label modalities in `HiPBackbone`, parity with the official code."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_perceiver.convert import from_deepmind_hip
from keras_perceiver.convert.from_deepmind_hip import hip_parameter_names
from keras_perceiver.models import HierarchicalPerceiver, HiPBackbone, HiPClassBottleneck
from tests.test_case import TestCase

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "hip", "reference_class_bottleneck.npz")

# The official variants' per-block arguments in this library's vocabulary (HIP.md A.5) and the official
# test's shared `num_position_encoding_channels`.
MINI = {
    "num_groups": (16, 1, 16),
    "num_self_attends_per_block": (2, 1, 1),
    "num_latents": (128, 64, 128),
    "latent_dim": (128, 1024, 128),
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": (4, 32, 4),
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 4,
    "num_embedding_channels": 32,
    "num_position_encoding_channels": 512,
}
HIP_16 = {
    "num_groups": (16, 4, 1, 1, 1, 4, 16),
    "num_self_attends_per_block": (2, 2, 18, 2, 1, 1, 1),
    "num_latents": (128, 256, 256, 64, 256, 256, 128),
    "latent_dim": (128, 256, 512, 1024, 512, 256, 128),
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": (4, 8, 16, 32, 16, 8, 4),
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 4,
    "num_embedding_channels": 32,
    "num_position_encoding_channels": 512,
}
# The official test's imagenet mock (HIP.md A.6).
IMAGENET_SHAPES = {"image": (1024, 3), "label": (32, 1)}

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
    "label_modalities": ("label",),
}


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


def to_haiku(model):
    """The model's weights under the official Haiku names and shapes (attention kernels fused to 2-D)."""
    params = {}
    for name, variable in hip_parameter_names(model).items():
        value = np.asarray(keras.ops.convert_to_numpy(variable))
        parent, leaf = variable.path.split("/")[-2:]
        if parent in ("query", "key", "value"):
            value = value.reshape((value.shape[0], -1)) if leaf == "kernel" else value.reshape(-1)
        elif parent == "attention_output" and leaf == "kernel":
            value = value.reshape((-1, value.shape[-1]))
        params[name] = value
    return params


def official_config(meta):
    """The fixture's official `HiPClassBottleneck` arguments in this library's vocabulary."""
    variant = meta["variant_config"]
    return {
        "input_shapes": {m: tuple(shape) for m, shape in meta["input_shapes"].items()},
        "label_modalities": tuple(meta["label_modalities"]),
        "num_groups": tuple(variant["num_groups"]),
        "num_self_attends_per_block": tuple(variant["num_self_attends_per_block"]),
        "num_latents": tuple(variant["z_index_dim"]),
        "latent_dim": tuple(variant["num_z_channels"]),
        "num_cross_attention_heads": tuple(variant["num_cross_attend_heads"]),
        "num_self_attention_heads": tuple(variant["num_self_attend_heads"]),
        "cross_attention_widening_factor": tuple(variant["cross_attend_widening_factor"]),
        "self_attention_widening_factor": tuple(variant["self_attend_widening_factor"]),
        "num_embedding_channels": variant["num_embedding_channels"],
        "num_position_encoding_channels": meta["shared_kwargs"]["num_position_encoding_channels"],
        "regroup_type": meta["shared_kwargs"]["regroup_type"],
    }


class HiPClassBottleneckParityTest(TestCase):
    """The official `HiPClassBottleneck` on a fixture with two data and two label modalities, interleaved.

    `reference_class_bottleneck.npz` was written by the official code (jax 0.5.3, dm-haiku 0.0.17) for the
    3-block configuration in its `meta/json`: inputs image (2, 30, 3), label (2, 4, 1), audio (2, 10, 2),
    tag (2, 1, 5) in that order, `label_modalities=("tag", "label")` (the input order decides the Haiku
    numbering), a U-Net skip with a projection (16 -> 8), the position projections on; the parameters
    are the initial ones plus 0.02 N(0, 1) noise, so that every weight acts on the outputs.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with np.load(FIXTURE) as archive:
            cls.fixture = {name: archive[name] for name in archive.files}
        cls.meta = json.loads(str(cls.fixture["meta/json"]))
        cls.config = official_config(cls.meta)
        cls.params = {
            name[len("pparam/") :]: value for name, value in cls.fixture.items() if name.startswith("pparam/")
        }
        cls.inputs = {m: cls.fixture[f"input/{m}"] for m in cls.config["input_shapes"]}

    def test_matches_the_official_code(self):
        fixture, config, inputs = self.fixture, self.config, self.inputs
        model = HiPClassBottleneck(**config)
        self.assertEqual(model.count_params(), self.meta["num_params"])
        from_deepmind_hip(self.params, model)
        errors = {}
        for mode, training in (("eval", False), ("train", True)):
            outputs = model(inputs, training=training)
            self.assertEqual(list(outputs["input_reconstruction"]), ["image", "audio", "label", "tag"])
            self.assertEqual(list(outputs["latents"]), ["image", "audio"])
            for key in ("input_reconstruction", "latents"):
                for m, actual in outputs[key].items():
                    expected = fixture[f"out/{mode}/{key}/{m}"]
                    actual = np.asarray(keras.ops.convert_to_numpy(actual))
                    self.assertEqual(actual.shape, expected.shape, msg=f"{key}/{m}")
                    scale = float(np.abs(expected).max())
                    errors[f"{mode}/{key}/{m}"] = float(np.abs(actual - expected).max()) / scale
        print("HiPClassBottleneck parity, max |error| / max |reference|:", errors)
        self.assertLessEqual(max(errors.values()), 1e-5, msg=errors)

    def test_mixed_precision_stays_close(self):
        def builder(dtype):
            return from_deepmind_hip(self.params, HiPClassBottleneck(**self.config, dtype=dtype))

        # bfloat16 (8 significant bits): the label reconstruction (max 0.06) comes out of latents of size ~8.
        self.run_mixed_precision_test(builder, inputs=self.inputs, tolerances={"mixed_bfloat16": 0.1})


class HiPClassBottleneckCountTest(TestCase):
    """Parameter counts of the official code (`hk.data_structures.tree_size`) on the imagenet mock."""

    def test_mini_counts(self):
        model = HiPClassBottleneck(input_shapes=IMAGENET_SHAPES, label_modalities=("label",), **MINI)
        self.assertEqual(model.count_params(), 21_103_332)
        self.assertEqual(
            HierarchicalPerceiver(input_shapes=IMAGENET_SHAPES, **MINI).count_params(), 18_702_916
        )

    @pytest.mark.slow
    def test_hip_16_count(self):
        model = HiPClassBottleneck(input_shapes=IMAGENET_SHAPES, label_modalities=("label",), **HIP_16)
        self.assertEqual(model.count_params(), 102_912_740)


class HiPClassBottleneckTest(TestCase):
    def test_public_call_and_outputs(self):
        model = HiPClassBottleneck(**SMALL)
        outputs = model(small_inputs())
        shapes = {k: {m: tuple(x.shape) for m, x in v.items()} for k, v in outputs.items()}
        # The image alone fills the 4 groups (3 elements each); the label enters at the processor.
        self.assertEqual(
            shapes,
            {
                "input_reconstruction": {"image": (2, 12, 3), "label": (2, 2, 4)},
                "latents": {"image": (2, 8, 8)},
            },
        )
        self.assertAllZero(outputs["input_reconstruction"]["label"])  # the un-embeddings start at zero
        encoded = model.backbone.encode(small_inputs())
        # The processor reads the 4 x 2 regrouped latents and the 2 label tokens.
        self.assertEqual(tuple(encoded["processor_inputs"].shape), (2, 1, 10, 8))
        self.assertEqual(tuple(encoded["label_positions"]["label"].shape), (2, 2, 8))
        self.assertEqual(list(encoded["embeddings"]), ["image"])
        backbone_outputs = model.backbone(small_inputs())
        self.assertEqual(
            sorted(backbone_outputs), ["label_queries", "latents", "mae_queries", "processor_latents"]
        )
        self.assertEqual(tuple(backbone_outputs["processor_latents"].shape), (2, 1, 8, 16))

    def test_labels_are_read_at_the_processor(self):
        model = randomize(HiPClassBottleneck(**SMALL))
        inputs = small_inputs()
        outputs = model(inputs)
        encoded = model.backbone.encode(inputs)
        processor = keras.ops.reshape(encoded["block_outputs"][1], (2, 8, 16))
        head = model.label_reconstruction_head(encoded["label_positions"]["label"], processor)
        self.assertAllClose(
            outputs["input_reconstruction"]["label"],
            model.label_unembedder({"label": head})["label"],
            atol=1e-6,
        )
        # The label's reconstruction does not depend on the decoder: changing block 2 leaves it unchanged.
        block = model.backbone.hip_blocks[2]
        block.set_weights([w + 1.0 for w in block.get_weights()])
        changed = model(inputs)
        self.assertAllClose(
            changed["input_reconstruction"]["label"], outputs["input_reconstruction"]["label"]
        )
        self.assertFalse(
            np.allclose(changed["input_reconstruction"]["image"], outputs["input_reconstruction"]["image"])
        )

    def test_flat_arguments_and_backbone_build_the_same_model(self):
        flat = randomize(HiPClassBottleneck(**SMALL))
        from_backbone = HiPClassBottleneck(backbone=HiPBackbone(**SMALL))
        from_backbone.set_weights(flat.get_weights())
        self.assertAllClose(flat(small_inputs()), from_backbone(small_inputs()), atol=1e-6)
        self.assertIs(HiPClassBottleneck.from_hyperparameters(**SMALL).__class__, HiPClassBottleneck)

    def test_config_round_trip(self):
        model = HiPClassBottleneck(**SMALL, processor_num_latents_train=4, output_channels={"image": 5})
        restored = self.run_config_round_trip(model)
        self.assertEqual(restored.backbone.label_modalities, ("label",))
        self.run_config_round_trip(model.backbone)
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(model)))
        self.assertEqual(keras.saving.deserialize_keras_object(config).count_params(), model.count_params())

    def test_keras_saving(self):
        model = randomize(HiPClassBottleneck(**SMALL))
        restored = self.run_model_saving_test(model, small_inputs(), atol=1e-5)
        self.assertEqual(restored.backbone.label_modalities, ("label",))

    def test_label_padding_masks_act_at_the_processor(self):
        model = randomize(HiPClassBottleneck(**SMALL))
        inputs = small_inputs()
        mask = np.array([[True, False], [True, True]])
        masked = model({**inputs, "label_padding_mask": mask})
        changed = {**inputs, "label": inputs["label"].copy()}
        changed["label"][0, 1] = 100.0
        # The masked label element is never attended to: nothing depends on its value.
        self.assertAllClose(model({**changed, "label_padding_mask": mask}), masked, atol=1e-5)
        self.assertFalse(np.allclose(model(changed)["latents"]["image"], model(inputs)["latents"]["image"]))
        # All-real masks: the official computation (the label group has no padding).
        all_real = model({**inputs, "label_padding_mask": np.ones((2, 2), bool)})
        self.assertAllClose(all_real, model(inputs), atol=1e-5)

    def test_training_gradients(self):
        model = randomize(
            HiPClassBottleneck(**SMALL, processor_num_latents_train=4, drop_path_rate=0.1, seed=1)
        )
        inputs = small_inputs(batch=4)
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            loss = sum(
                tf.reduce_sum(tf.square(x - inputs[m])) for m, x in outputs["input_reconstruction"].items()
            )
        grads = tape.gradient(loss, model.trainable_variables)
        self.assertEqual([v.path for v, g in zip(model.trainable_variables, grads) if g is None], [])
        # The label head reads the processor's 4 training-time latents (8 at inference).
        self.assertEqual(tuple(outputs["input_reconstruction"]["label"].shape), (4, 2, 4))
        processor = model.backbone.encode(inputs, training=True)["block_outputs"][1]
        self.assertEqual(tuple(processor.shape), (4, 1, 4, 16))

    def test_haiku_round_trip(self):
        for model, fresh in (
            (HiPClassBottleneck(**SMALL), HiPClassBottleneck(**SMALL)),
            (HierarchicalPerceiver(**SMALL_PLAIN), HierarchicalPerceiver(**SMALL_PLAIN)),
        ):
            randomize(model)
            params = to_haiku(model)
            self.assertEqual(len(params), len(model.trainable_weights))
            from_deepmind_hip(params, fresh)
            self.assertAllClose(fresh(small_inputs()), model(small_inputs()), atol=1e-6)
        names = set(to_haiku(HiPClassBottleneck(**SMALL)))
        for name in (
            "perceiver/perceiver_block_1/~/hi_p_cross_attention/query_inputs/pos_embs",
            "perceiver/embedder_1/~embed/embed_label/w",
            "perceiver/embedder_1/~unembed/unembed_label/b",
            "perceiver/position_encoder_1/pos_emb_mae_label/pos_embs",
            "perceiver/reconstruction_head/hi_p_cross_attention/layer_norm_1/scale",
            "perceiver/reconstruction_head_1/hi_p_cross_attention/layer_norm_1/scale",
            "perceiver/embedder/~unembed/unembed_image/w",
        ):
            self.assertIn(name, names)
        # A backbone with labels takes the parameters without the heads and un-embeddings.
        model = randomize(HiPClassBottleneck(**SMALL))
        backbone = HiPBackbone(**SMALL)
        from_deepmind_hip(to_haiku(model), backbone)
        self.assertAllClose(backbone(small_inputs()), model.backbone(small_inputs()), atol=1e-6)

    def test_haiku_parameter_errors(self):
        model = HiPClassBottleneck(**SMALL)
        params = to_haiku(model)
        unused = {**params, "perceiver/embedder_2/~embed/embed_tag/w": np.zeros((5, 8), "float32")}
        with self.assertRaisesRegex(
            ValueError, r"unexpected parameters \['perceiver/embedder_2/~embed/embed_tag/w'\]"
        ):
            from_deepmind_hip(unused, model)
        missing = dict(params)
        missing.pop("perceiver/position_encoder_1/pos_emb_mae_label/pos_embs")
        with self.assertRaisesRegex(
            ValueError, r"missing parameters \['perceiver/position_encoder_1/pos_emb_mae_label/pos_embs'\]"
        ):
            from_deepmind_hip(missing, model)
        name = "perceiver/embedder_1/~embed/embed_label/w"
        with self.assertRaisesRegex(ValueError, r"embed_label/w: expected shape \(4, 8\), received \(4, 9\)"):
            from_deepmind_hip({**params, name: np.zeros((4, 9), "float32")}, model)
        # The official HiP template's names do not fit a class bottleneck (blocks are `perceiver_block_<i>`).
        with self.assertRaisesRegex(ValueError, r"unexpected parameters \['perceiver/block_0/"):
            from_deepmind_hip(to_haiku(HierarchicalPerceiver(**SMALL_PLAIN)), model)

    def test_errors_name_expected_and_received_values(self):
        with self.assertRaisesRegex(
            ValueError,
            r"among \['image', 'label'\]\. Received: label_modalities=\['class'\] \(unknown \['class'\]\)",
        ):
            HiPClassBottleneck(**{**SMALL, "label_modalities": ("class",)})
        with self.assertRaisesRegex(ValueError, r"may not name every modality.*\['image', 'label'\]"):
            HiPClassBottleneck(**{**SMALL, "label_modalities": ("label", "image")})
        with self.assertRaisesRegex(
            ValueError, r"tuple of modality names.*Received: label_modalities='label'"
        ):
            HiPClassBottleneck(**{**SMALL, "label_modalities": "label"})
        with self.assertRaisesRegex(ValueError, r"more than once.*\(repeated \['label'\]\)"):
            HiPClassBottleneck(**{**SMALL, "label_modalities": ("label", "label")})
        with self.assertRaisesRegex(ValueError, r"needs label modalities.*Received: label_modalities=\(\)"):
            HiPClassBottleneck(**SMALL_PLAIN)
        with self.assertRaisesRegex(ValueError, r"must have no label modalities.*\('label',\)"):
            HierarchicalPerceiver(**SMALL)
        with self.assertRaisesRegex(
            ValueError, r"`output_channels` must name modalities.*\(unknown \['mask'\]\)"
        ):
            HiPClassBottleneck(**SMALL, output_channels={"mask": 3})
        model = HiPClassBottleneck(**SMALL)
        with self.assertRaisesRegex(ValueError, r"missing inputs \['label'\]"):
            model({"image": small_inputs()["image"]})


SMALL_PLAIN = {key: value for key, value in SMALL.items() if key != "label_modalities"}


class DensePredictionTest(TestCase):
    """`output_channels`: a modality's reconstruction head un-embeds to K channels (per-position logits)."""

    def test_per_position_logits(self):
        model = HierarchicalPerceiver(**SMALL_PLAIN, output_channels={"image": 5})
        outputs = model(small_inputs())
        self.assertEqual(tuple(outputs["input_reconstruction"]["image"].shape), (2, 12, 5))
        self.assertEqual(tuple(outputs["input_reconstruction"]["label"].shape), (2, 2, 4))
        restored = self.run_config_round_trip(model)
        self.assertEqual(restored.get_config()["output_channels"], {"image": 5})
        # Segmentation-style training steps: integer classes per image element.
        targets = np.random.default_rng(0).integers(0, 5, size=(8, 12))
        inputs = small_inputs(batch=8)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        optimizer = keras.optimizers.Adam(1e-2)
        losses = []
        for _ in range(5):
            with tf.GradientTape() as tape:
                loss = loss_fn(targets, model(inputs, training=True)["input_reconstruction"]["image"])
            variables = model.trainable_variables
            grads = tape.gradient(loss, variables)
            optimizer.apply(
                [g for g in grads if g is not None], [v for v, g in zip(variables, grads) if g is not None]
            )
            losses.append(float(loss))
        self.assertLess(losses[-1], losses[0])
        self.run_model_saving_test(model, small_inputs(), atol=1e-5)
        with self.assertRaisesRegex(ValueError, r"output_channels\['image'\]"):
            HierarchicalPerceiver(**SMALL_PLAIN, output_channels={"image": 0})
        with self.assertRaisesRegex(ValueError, r"must be None or a dict.*Received: output_channels=5"):
            HierarchicalPerceiver(**SMALL_PLAIN, output_channels=5)
