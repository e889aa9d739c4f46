"""GLUE end to end on tensorflow-datasets' mock data (no download): train -> export (raw text pairs in) ->
evaluate, single-task and multi-task, each metric recomputed independently from the served model."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_perceiver.export import load_saved_model
from keras_perceiver.metrics.glue import glue_scores
from tests.test_case import TestCase
from training import evaluate, export, train
from training.data import glue

SMALL = {
    "max_sequence_length": 48,
    "embedding_dim": 16,
    "num_latents": 8,
    "latent_dim": 16,
    "num_self_attends_per_block": 1,
    "num_self_attention_heads": 2,
    "qk_channels": 16,
    "v_channels": 16,
}


def train_export_evaluate(test, tasks):
    model_dir = test.make_temp_dir()
    metrics = train.run(
        task="glue",
        model_dir=model_dir,
        epochs=2,
        batch_size=8,
        learning_rate=1e-3,
        overrides=SMALL,
        data_options={"tasks": tasks, "validation_fraction": 0.5},
        seed=0,
        jit_compile=False,
        tensorboard=False,
        verbose=0,
    )
    output = os.path.join(test.make_temp_dir(), "glue")
    report = export.run(model_dir, output, formats=("saved_model",), check_examples=8)
    test.assertEqual(report["max_abs_diff"]["saved_model"], 0.0)
    return metrics, output, evaluate.run(output, batch_size=8)


@pytest.mark.slow
class GlueTaskTest(TestCase):
    def test_single_pair_task(self):
        with tfds.testing.mock_data(num_examples=24):
            metrics, output, result = train_export_evaluate(self, "mrpc")
            self.assertIn("test_accuracy", metrics)
            examples = list(glue.load("test", tasks="mrpc").as_numpy_iterator())
            served = load_saved_model(output)(
                {
                    "text": np.array([e["text"] for e in examples], object),
                    "text_pair": np.array([e["text_pair"] for e in examples], object),
                }
            )
        self.assertEqual(sorted(served), ["outputs"])
        predicted = np.argmax(served["outputs"].numpy(), axis=-1)
        labels = np.array([e["label"] for e in examples]).astype(int)
        expected = glue_scores(["f1", "accuracy"], labels, predicted)
        self.assertAllClose(result["mrpc_f1"], expected["f1"], atol=1e-12)
        self.assertAllClose(result["mrpc_accuracy"], expected["accuracy"], atol=1e-12)
        self.assertEqual(result["num_examples"], 24)
        self.assertIn("mrpc_accuracy", result["baselines"])

    def test_multi_task_queries(self):
        with tfds.testing.mock_data(num_examples=16):
            metrics, output, result = train_export_evaluate(self, "cola,stsb")
            examples = list(glue.load("test", tasks="cola,stsb").as_numpy_iterator())
            served = load_saved_model(output)(
                {
                    "text": np.array([e["text"] for e in examples], object),
                    "text_pair": np.array([e["text_pair"] for e in examples], object),
                }
            )
        # One output per task (the multi-task decoder); each task scored on its own examples.
        self.assertEqual(sorted(served), ["cola", "stsb"])
        self.assertEqual(served["stsb"].shape, (32, 1))
        tasks = np.array([e["task"] for e in examples])
        labels = np.array([e["label"] for e in examples])
        cola = glue_scores(
            ["matthews_correlation", "accuracy"],
            labels[tasks == 0].astype(int),
            np.argmax(served["cola"].numpy()[tasks == 0], axis=-1),
        )
        stsb = glue_scores(["pearson", "spearman"], labels[tasks == 1], served["stsb"].numpy()[tasks == 1, 0])
        self.assertAllClose(result["cola_matthews_correlation"], cola["matthews_correlation"], atol=1e-12)
        self.assertAllClose(result["stsb_spearman"], stsb["spearman"], atol=1e-12)
        averages = [np.mean(list(cola.values())), np.mean(list(stsb.values()))]
        self.assertAllClose(result["glue_score"], np.mean(averages), atol=1e-12)
        self.assertIn("test_stsb_loss", metrics)
        self.assertIn("test_cola_accuracy", metrics)
