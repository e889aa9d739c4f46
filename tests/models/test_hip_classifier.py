"""Tests of `HiPClassifier`: HiP classification through the class bottleneck's label token."""

import warnings

import keras
import numpy as np
from sklearn.datasets import load_digits

from keras_perceiver.convert import from_deepmind_hip
from keras_perceiver.models import HiPBackbone, HiPClassBottleneck, HiPClassifier
from tests.models.test_hip_class_bottleneck import randomize, to_haiku
from tests.test_case import TestCase

BLOCKS = {
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
SMALL = {"input_shapes": {"image": (12, 3)}, "num_classes": 5, **BLOCKS}


def small_inputs(batch=2, seed=0):
    return {"image": np.random.default_rng(seed).normal(size=(batch, 12, 3)).astype("float32")}


class HiPClassifierTest(TestCase):
    def test_logits_and_weights(self):
        model = HiPClassifier(**SMALL)
        logits = model(small_inputs())
        self.assertEqual(tuple(logits.shape), (2, 5))
        self.assertAllZero(logits)  # the un-embedding starts at zero
        self.assertEqual(model.backbone.label_modalities, ("label",))
        self.assertEqual(model.backbone.input_shapes["label"], (1, 5))
        # The decoder block (block 2) is not used: not among the model's weights.
        paths = [w.path for w in model.weights]
        self.assertFalse([p for p in paths if p.startswith("block_2/")], msg=paths)
        self.assertTrue([p for p in paths if p.startswith("block_1/")], msg=paths)
        decoder = model.backbone.hip_blocks[2].count_params()
        self.assertEqual(
            model.count_params(),
            HiPClassBottleneck(**self.bottleneck_arguments()).count_params()
            - decoder
            - self.final_head_params(),
        )

    def bottleneck_arguments(self):
        return {"input_shapes": {"image": (12, 3), "label": (1, 5)}, "label_modalities": ("label",), **BLOCKS}

    def final_head_params(self):
        model = HiPClassBottleneck(**self.bottleneck_arguments())
        return model.reconstruction_head.count_params() + model.unembedder.count_params()

    def test_equals_the_class_bottleneck_with_a_zero_label(self):
        bottleneck = randomize(HiPClassBottleneck(**self.bottleneck_arguments()))
        classifier = HiPClassifier(**SMALL)
        # The official parameter names carry a class bottleneck's weights over (the final head is ignored).
        from_deepmind_hip(to_haiku(bottleneck), classifier)
        inputs = small_inputs()
        zeros = {**inputs, "label": np.zeros((2, 1, 5), "float32")}
        expected = bottleneck(zeros)["input_reconstruction"]["label"][:, 0]
        self.assertAllClose(classifier(inputs), expected, atol=1e-5)
        # And a classifier on the bottleneck's own backbone shares its weights.
        shared = HiPClassifier(backbone=bottleneck.backbone)
        shared.label_reconstruction_head.set_weights(bottleneck.label_reconstruction_head.get_weights())
        shared.label_unembedder.set_weights(bottleneck.label_unembedder.get_weights())
        self.assertAllClose(shared(inputs), expected, atol=1e-5)

    def test_fit_on_digits_reduces_the_loss(self):
        digits = load_digits()
        x = (digits.data[:512] / 16.0).astype("float32").reshape(-1, 64, 1)  # 64 pixel tokens
        y = digits.target[:512]
        keras.utils.set_random_seed(0)
        model = HiPClassifier(
            input_shapes={"pixels": (64, 1)},
            num_classes=10,
            num_groups=(4, 1, 4),
            num_self_attends_per_block=1,
            num_latents=(4, 8, 4),
            latent_dim=(16, 32, 16),
            num_cross_attention_heads=1,
            num_self_attention_heads=2,
            cross_attention_widening_factor=1,
            self_attention_widening_factor=2,
            num_embedding_channels=16,
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=model.default_loss(), metrics=["accuracy"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = model.fit({"pixels": x}, y, batch_size=32, epochs=6, verbose=0)
        # Every weight of the model has a gradient: no "Gradients do not exist" warning.
        self.assertFalse([str(w.message) for w in caught if "Gradients do not exist" in str(w.message)])
        losses = history.history["loss"]
        self.assertLess(losses[-1], 0.75 * losses[0], msg=losses)
        self.assertGreater(history.history["accuracy"][-1], 0.3, msg=history.history)

    def test_distributed_fit_step(self):
        # Every trainable weight must change in one step: dropout and drop path off, all latents in use,
        # and an un-embedding that is not zero (at its zero initialization nothing upstream gets a gradient).
        # The label embedder's kernel multiplies the all-zero label token, so it never gets a gradient (it is
        # kept for the class bottleneck's weights): the embedder is frozen here.
        def build():
            model = HiPClassifier(**SMALL)
            unembedder = model.get_layer("label_unembedder")
            rng = np.random.default_rng(1)
            unembedder.set_weights([rng.normal(scale=0.3, size=w.shape) for w in unembedder.get_weights()])
            model.backbone.get_layer("label_embedder").trainable = False
            return model

        self.run_distributed_fit_step(
            build,
            small_inputs(batch=4),
            np.array([0, 1, 2, 3]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    def test_flat_arguments_and_backbone_build_the_same_model(self):
        flat = randomize(HiPClassifier(**SMALL))
        backbone = HiPBackbone(**self.bottleneck_arguments())
        from_backbone = HiPClassifier(backbone=backbone, num_classes=5)
        from_backbone.set_weights(flat.get_weights())
        self.assertAllClose(from_backbone(small_inputs()), flat(small_inputs()), atol=1e-6)
        self.assertIs(HiPClassifier.from_hyperparameters(**SMALL).__class__, HiPClassifier)
        named = HiPClassifier(**SMALL, label_name="class")
        self.assertEqual(named.backbone.label_modalities, ("class",))

    def test_config_round_trip_and_saving(self):
        model = randomize(HiPClassifier(**SMALL, processor_num_latents_train=4, seed=2))
        restored = self.run_config_round_trip(model)
        self.assertEqual((restored.num_classes, restored.label_name), (5, "label"))
        self.assertEqual(sorted(model.get_config()), ["backbone", "dtype", "name", "trainable"])
        restored = self.run_model_saving_test(model, small_inputs(), atol=1e-5)
        self.assertEqual(restored.count_params(), model.count_params())

    def test_padding_masks_and_predict(self):
        model = randomize(HiPClassifier(**SMALL))
        inputs = small_inputs(batch=3)
        mask = np.ones((3, 12), bool)
        mask[0, 9:] = False
        changed = {"image": inputs["image"].copy()}
        changed["image"][0, 9:] = 50.0
        self.assertAllClose(
            model({**changed, "image_padding_mask": mask}),
            model({**inputs, "image_padding_mask": mask}),
            atol=1e-5,
        )
        self.run_predict_on_dataset(model, inputs, batch_size=2)

    def test_errors_name_expected_and_received_values(self):
        with self.assertRaisesRegex(ValueError, r"give `num_classes`.*Received: num_classes=None"):
            HiPClassifier(input_shapes={"image": (12, 3)}, **BLOCKS)
        with self.assertRaisesRegex(ValueError, r"num_classes"):
            HiPClassifier(**{**SMALL, "num_classes": 0})
        with self.assertRaisesRegex(ValueError, r"`label_name` must not be a data modality.*'image'"):
            HiPClassifier(**SMALL, label_name="image")
        with self.assertRaisesRegex(TypeError, r"`label_modalities` is set by the classifier"):
            HiPClassifier(**SMALL, label_modalities=("image",))
        backbone = HiPBackbone(**self.bottleneck_arguments())
        with self.assertRaisesRegex(ValueError, r"Expected num_classes=5.*Received: num_classes=7"):
            HiPClassifier(backbone=backbone, num_classes=7)
        with self.assertRaisesRegex(ValueError, r"needs label modalities"):
            HiPClassifier(backbone=HiPBackbone(input_shapes={"image": (12, 3)}, **BLOCKS))
        two_tokens = HiPBackbone(
            input_shapes={"image": (12, 3), "label": (2, 5)}, label_modalities=("label",), **BLOCKS
        )
        with self.assertRaisesRegex(ValueError, r"\(1, K\)\. Received: input_shapes\['label'\]=\(2, 5\)"):
            HiPClassifier(backbone=two_tokens)
        two_labels = HiPBackbone(
            input_shapes={"image": (12, 3), "label": (1, 5), "tag": (1, 2)},
            label_modalities=("label", "tag"),
            **BLOCKS,
        )
        with self.assertRaisesRegex(ValueError, r"exactly one label modality.*\('label', 'tag'\)"):
            HiPClassifier(backbone=two_labels)
        with self.assertRaisesRegex(TypeError, r"either `backbone` or"):
            HiPClassifier(backbone=backbone, num_groups=(4, 1, 4))
        model = HiPClassifier(**SMALL)
        with self.assertRaisesRegex(ValueError, r"unknown inputs \['label'\]"):
            model({**small_inputs(), "label": np.zeros((2, 1, 5), "float32")})
        with self.assertRaisesRegex(ValueError, r"`image` must have shape \(B, 12, 3\)"):
            model({"image": np.zeros((2, 11, 3), "float32")})
