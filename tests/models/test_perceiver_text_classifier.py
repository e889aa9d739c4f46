"""Tests of PerceiverTextClassifier (single-label, multi-label, regression, multi-task) on a text backbone."""

import inspect

import keras
import numpy as np
import pytest

from keras_perceiver.models import PerceiverBackbone, PerceiverMaskedLM, PerceiverTextClassifier
from keras_perceiver.preprocessors import TextPreprocessor
from tests.test_case import TestCase

TEXT = dict(max_sequence_length=24, embedding_dim=8)
STACK = dict(
    num_latents=6,
    latent_dim=16,
    num_self_attends_per_block=1,
    num_cross_attention_heads=2,
    num_self_attention_heads=2,
    qk_channels=8,
    v_channels=16,
)


def tiny_backbone(initializer_range=0.02, dtype=None):
    preprocessor = TextPreprocessor(
        embeddings_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
        dtype=dtype,
        name="text_preprocessor",
        **TEXT,
    )
    return PerceiverBackbone(
        input_shape=(None,),
        input_name="token_ids",
        input_dtype="int32",
        input_preprocessor=preprocessor,
        initializer_range=initializer_range,
        dtype=dtype,
        **STACK,
    )


def tiny(initializer_range=0.02, dtype=None, **head):
    """A small classifier: a head (`num_classes=2` unless given) on `tiny_backbone()`."""
    return PerceiverTextClassifier(tiny_backbone(initializer_range, dtype), dtype=dtype, **head)


def _tokens(batch=3, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, 20), bool)
    mask[1, 9:] = False
    ids = rng.integers(6, 262, size=(batch, 20)).astype("int32")
    ids[~mask] = 0
    return {"token_ids": ids, "padding_mask": mask}


class PerceiverTextClassifierTest(TestCase):
    def test_single_task(self):
        model = tiny(num_classes=3, initializer_range=0.5)  # logits of O(1)
        logits = np.asarray(model(_tokens()))
        self.assertEqual(logits.shape, (3, 3))
        config = model.get_config()
        parameters = set(inspect.signature(PerceiverTextClassifier.__init__).parameters) - {"self", "kwargs"}
        self.assertEqual(set(config), parameters | {"name", "trainable"})
        self.assertEqual(config["backbone"]["config"]["num_latents"], 6)
        self.assertIs(model.get_layer("encoder"), model.backbone.encoder)
        self.run_config_round_trip(model)
        self.run_model_saving_test(model, _tokens())
        self.run_predict_on_dataset(model, _tokens())
        # The decoder of transformers' classification decoder: one head, width D, query residual.
        decoder = model.get_layer("decoder")
        self.assertTrue(decoder.cross_attention.use_query_residual)
        self.assertEqual(decoder.cross_attention.attention.num_heads, 1)
        self.assertEqual(decoder.query_mask_mode, "ignore")

    def test_multi_task_queries_return_a_dict(self):
        tasks = {"sst2": 2, "stsb": 1, "mnli": 3}
        model = tiny(tasks=tasks, initializer_range=0.5)
        outputs = model(_tokens())
        self.assertEqual({k: tuple(v.shape) for k, v in outputs.items()},
                         {"sst2": (3, 2), "stsb": (3, 1), "mnli": (3, 3)})
        # One learned query per task.
        self.assertEqual(tuple(model.get_layer("decoder_queries").position_embeddings.shape), (3, 16))
        self.run_config_round_trip(model)
        self.run_model_saving_test(model, _tokens())

    def test_mixed_precision_and_distributed_fit(self):
        tokens = _tokens(batch=4)
        self.run_mixed_precision_test(lambda dtype: tiny(dtype=dtype, num_classes=3), inputs=tokens)
        tokens["padding_mask"] = tokens["padding_mask"].astype("int32")  # no bool through tf.distribute
        self.run_distributed_fit_step(
            lambda: tiny(num_classes=3),
            tokens,
            np.array([0, 1, 2, 0]),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    @pytest.mark.slow  # 3 x 40 epochs
    def test_problem_types_learn(self):
        tokens = _tokens(batch=4)
        for problem_type, targets in (
            ("single_label_classification", np.array([0, 1, 0, 1])),
            ("multi_label_classification", np.array([[1, 0], [0, 1], [1, 1], [0, 0]], "float32")),
            ("regression", np.array([[0.5, -1.0], [1.0, 2.0], [0.0, 0.0], [-2.0, 1.0]], "float32")),
        ):
            keras.utils.set_random_seed(0)
            model = tiny(num_classes=2, problem_type=problem_type)
            model.compile(keras.optimizers.Adam(3e-3), loss=model.default_loss())
            first = model.evaluate(tokens, targets, verbose=0)
            model.fit(tokens, targets, epochs=40, verbose=0)
            self.assertLess(model.evaluate(tokens, targets, verbose=0), 0.6 * first, msg=problem_type)

    def test_default_loss_follows_problem_type(self):
        backbone = tiny_backbone()
        for problem_type, loss in (
            ("single_label_classification", keras.losses.SparseCategoricalCrossentropy),
            ("multi_label_classification", keras.losses.BinaryCrossentropy),
            ("regression", keras.losses.MeanSquaredError),
        ):
            model = PerceiverTextClassifier(backbone, problem_type=problem_type)
            self.assertIsInstance(model.default_loss(), loss)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "problem_type.*Received: problem_type='ranking'"):
            tiny(problem_type="ranking")
        with self.assertRaisesRegex(ValueError, "num_classes.*Received: num_classes=0"):
            tiny(num_classes=0)
        with self.assertRaisesRegex(TypeError, "PerceiverBackbone.*Received: dict"):
            PerceiverTextClassifier({"num_latents": 4}, num_classes=3)
        with self.assertRaisesRegex(ValueError, "Unknown preset 'language_perceiver'"):
            PerceiverTextClassifier.from_preset("language_perceiver")
        model = tiny()
        with self.assertRaisesRegex(TypeError, "integer"):
            model({"token_ids": np.ones((2, 5), "float32")})


def test_pretrained_masked_lm_backbone_becomes_a_classifier(tmp_path):
    """A masked LM's backbone, weights included, becomes a classifier's: a new head on the same encoder."""
    masked_lm = PerceiverMaskedLM(tiny_backbone(initializer_range=0.5), decoder_qk_channels=8)
    classifier = PerceiverTextClassifier(backbone=masked_lm.backbone, num_classes=2)
    tokens = _tokens()
    assert classifier.get_layer("encoder") is masked_lm.get_layer("encoder")
    assert classifier.get_layer("text_preprocessor") is masked_lm.get_layer("text_preprocessor")
    assert classifier.get_layer("decoder") is not masked_lm.get_layer("decoder")
    # Shared weights: a change to the masked LM's encoder is the classifier's.
    before = np.asarray(classifier(tokens))
    latents = masked_lm.get_layer("encoder").latents
    latents.assign(np.random.default_rng(1).normal(size=latents.shape).astype("float32"))
    assert np.abs(np.asarray(classifier(tokens)) - before).max() > 1e-4
    # The classifier holds the backbone and its own head only (not the masked LM's bias or queries).
    paths = {w.path for w in classifier.weights}
    assert "text_preprocessor/token_embeddings" in paths
    assert not any(path.startswith("output_bias") for path in paths)
    head = sum(classifier.get_layer(n).count_params() for n in ("decoder_queries", "decoder"))
    assert classifier.count_params() == masked_lm.backbone.count_params() + head
    # Saved and loaded, the classifier computes the same (its backbone travels with it).
    classifier.save(tmp_path / "classifier.keras")
    restored = keras.saving.load_model(tmp_path / "classifier.keras")
    np.testing.assert_allclose(np.asarray(restored(tokens)), np.asarray(classifier(tokens)), atol=1e-5)


def test_from_hyperparameters_matches_the_explicit_build():
    flat = PerceiverTextClassifier.from_hyperparameters(num_classes=3, **TEXT, **STACK)
    assert flat.count_params() == tiny(num_classes=3).count_params()
    assert flat.backbone.get_config()["num_latents"] == 6
    preprocessor = flat.get_layer("text_preprocessor")
    assert (preprocessor.max_sequence_length, preprocessor.use_output_bias) == (24, False)
    tasks = PerceiverTextClassifier.from_hyperparameters(tasks={"a": 2, "b": 1}, **TEXT, **STACK)
    assert sorted(tasks(_tokens())) == ["a", "b"]


def test_language_perceiver_classifier_preset_parameter_count_equals_transformers():
    """The preset's count is transformers' (2 labels); from_preset with num_classes=3 builds and runs."""
    from tests.models.reference_counts import preset_hyperparameters, transformers_text_parameter_count

    name = "language_perceiver_classifier"
    preset = PerceiverTextClassifier.presets[name]
    assert preset["backbone"] == "language_perceiver"
    config = preset_hyperparameters(PerceiverTextClassifier, name)
    expected = transformers_text_parameter_count(
        "PerceiverForSequenceClassification", config, num_labels=config["num_classes"]
    )
    assert preset["num_parameters"] == expected
    model = PerceiverTextClassifier.from_preset(name, num_classes=3)
    assert model.count_params() == transformers_text_parameter_count(
        "PerceiverForSequenceClassification", config, num_labels=3
    )
    assert model.count_params() == expected + 1281  # one more class: a column of the final layer + bias
    assert model.backbone.count_params() == PerceiverBackbone.presets["language_perceiver"]["num_parameters"]
    tokens = np.random.default_rng(0).integers(6, 262, size=(1, 8)).astype("int32")
    assert tuple(model({"token_ids": tokens}).shape) == (1, 3)
