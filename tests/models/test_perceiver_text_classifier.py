"""Tests of PerceiverTextClassifier (single-label, multi-label, regression, multi-task)."""

import keras
import numpy as np
import pytest

from keras_perceiver.models.perceiver_text_classifier import PerceiverTextClassifier
from tests.test_case import TestCase

TINY = dict(
    max_sequence_length=24,
    embedding_dim=8,
    num_latents=6,
    latent_dim=16,
    num_self_attends_per_block=1,
    num_cross_attention_heads=2,
    num_self_attention_heads=2,
    qk_channels=8,
    v_channels=16,
)


def _tokens(batch=3, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, 20), bool)
    mask[1, 9:] = False
    ids = rng.integers(6, 262, size=(batch, 20)).astype("int32")
    ids[~mask] = 0
    return {"token_ids": ids, "padding_mask": mask}


class PerceiverTextClassifierTest(TestCase):
    def test_single_task(self):
        model = PerceiverTextClassifier(num_classes=3, initializer_range=0.5, **TINY)  # logits of O(1)
        logits = np.asarray(model(_tokens()))
        self.assertEqual(logits.shape, (3, 3))
        self.run_config_round_trip(model)
        self.run_model_saving_test(model, _tokens())
        self.run_predict_on_dataset(model, _tokens())

    def test_multi_task_queries_return_a_dict(self):
        tasks = {"sst2": 2, "stsb": 1, "mnli": 3}
        model = PerceiverTextClassifier(tasks=tasks, initializer_range=0.5, **TINY)
        outputs = model(_tokens())
        self.assertEqual({k: tuple(v.shape) for k, v in outputs.items()},
                         {"sst2": (3, 2), "stsb": (3, 1), "mnli": (3, 3)})
        # One learned query per task.
        self.assertEqual(tuple(model.get_layer("decoder_queries").position_embeddings.shape), (3, 16))
        self.run_model_saving_test(model, _tokens())

    @pytest.mark.slow  # 3 x 40 epochs
    def test_problem_types_learn(self):
        tokens = _tokens(batch=4)
        for problem_type, targets in (
            ("single_label_classification", np.array([0, 1, 0, 1])),
            ("multi_label_classification", np.array([[1, 0], [0, 1], [1, 1], [0, 0]], "float32")),
            ("regression", np.array([[0.5, -1.0], [1.0, 2.0], [0.0, 0.0], [-2.0, 1.0]], "float32")),
        ):
            keras.utils.set_random_seed(0)
            model = PerceiverTextClassifier(num_classes=2, problem_type=problem_type, **TINY)
            model.compile(keras.optimizers.Adam(3e-3), loss=model.default_loss())
            first = model.evaluate(tokens, targets, verbose=0)
            model.fit(tokens, targets, epochs=40, verbose=0)
            self.assertLess(model.evaluate(tokens, targets, verbose=0), 0.6 * first, msg=problem_type)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "problem_type.*Received: problem_type='ranking'"):
            PerceiverTextClassifier(problem_type="ranking", **TINY)
        model = PerceiverTextClassifier(**TINY)
        with self.assertRaisesRegex(TypeError, "integer"):
            model({"token_ids": np.ones((2, 5), "float32")})


def test_language_perceiver_classifier_preset_parameter_count_equals_transformers():
    from keras_perceiver.models.perceiver_text_classifier import PerceiverTextClassifier
    from tests.models.reference_counts import transformers_text_parameter_count

    preset = PerceiverTextClassifier.presets["language_perceiver_classifier"]
    config = preset["config"]
    expected = transformers_text_parameter_count(
        "PerceiverForSequenceClassification", config, num_labels=config["num_classes"]
    )
    assert preset["num_parameters"] == expected
    model = PerceiverTextClassifier.from_preset("language_perceiver_classifier")
    assert model.count_params() == expected
