import keras
import numpy as np

from keras_perceiver.metrics import MaskedLMAccuracy
from tests.test_case import TestCase


class MaskedLMAccuracyTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.logits = rng.normal(size=(2, 3, 6, 5)).astype("float32")  # two batches of (2, 6, 5)
        self.labels = rng.integers(0, 5, size=(2, 3, 6)).astype("int32")
        self.labels[:, :, :2] = self.logits[:, :, :2].argmax(-1)  # some correct predictions
        self.weights = (rng.random((2, 3, 6)) < 0.5).astype("float32")

    def test_accumulates_over_masked_positions_of_all_batches(self):
        metric = MaskedLMAccuracy()
        for batch in range(2):
            metric.update_state(self.labels[batch], self.logits[batch], sample_weight=self.weights[batch])
        correct = self.logits.argmax(-1) == self.labels
        expected = (correct * self.weights).sum() / self.weights.sum()  # not the mean of batch means
        self.assertAllClose(metric.result(), np.float32(expected))
        reference = keras.metrics.SparseCategoricalAccuracy()
        for batch in range(2):
            reference.update_state(self.labels[batch], self.logits[batch], sample_weight=self.weights[batch])
        self.assertAllClose(metric.result(), reference.result())
        metric.reset_state()
        self.assertEqual(float(metric.result()), 0.0)

    def test_unmasked_positions_are_excluded(self):
        metric = MaskedLMAccuracy()
        metric.update_state(self.labels[0], self.logits[0], sample_weight=self.weights[0])
        labels = np.where(self.weights[0] == 0, (self.labels[0] + 1) % 5, self.labels[0])
        changed = MaskedLMAccuracy()
        changed.update_state(labels, self.logits[0], sample_weight=self.weights[0])
        self.assertEqual(float(changed.result()), float(metric.result()))

    def test_config_round_trip(self):
        self.run_config_round_trip(MaskedLMAccuracy(name="mlm_accuracy"))

    def test_errors(self):
        metric = MaskedLMAccuracy()
        with self.assertRaisesRegex(ValueError, r"weighted_metrics.*Received: sample_weight=None"):
            metric.update_state(self.labels[0], self.logits[0])
        with self.assertRaisesRegex(ValueError, r"\(B, L\) = \(3, 6\).*sample_weight.shape=\(3, 5\)"):
            metric.update_state(self.labels[0], self.logits[0], sample_weight=self.weights[0][:, :5])
        with self.assertRaisesRegex(ValueError, r"y_pred.shape=\(3, 6\)"):
            metric.update_state(self.labels[0], self.logits[0, ..., 0], sample_weight=self.weights[0])

    def test_under_compile_metrics_it_refuses_to_score_every_position(self):
        inputs = keras.Input((6,), dtype="int32")
        model = keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Embedding(5, 4)(inputs)))
        model.compile(loss="sparse_categorical_crossentropy", metrics=[MaskedLMAccuracy()])
        with self.assertRaisesRegex(ValueError, r"weighted_metrics"):
            model.evaluate(self.labels[0], self.labels[0], sample_weight=self.weights[0], verbose=0)
