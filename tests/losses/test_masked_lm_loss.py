import keras
import numpy as np

from keras_perceiver.losses import MaskedLMLoss
from keras_perceiver.metrics import MaskedLMAccuracy
from tests.test_case import TestCase

VOCAB = 7


def numpy_masked_lm_loss(labels, logits, weights):
    """Independent reference: weighted mean of -log softmax(logits)[label] (float64)."""
    logits = logits.astype("float64")
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]
    return (nll * weights).sum() / weights.sum()


def tiny_lm(vocab=VOCAB):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(vocab, 8)(inputs)
    return keras.Model(inputs, keras.layers.Dense(vocab)(x))


class MaskedLMLossTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.logits = rng.normal(size=(3, 5, VOCAB)).astype("float32") * 3
        self.labels = rng.integers(0, VOCAB, size=(3, 5)).astype("int32")
        self.weights = (rng.random((3, 5)) < 0.4).astype("float32")
        self.weights[0, 0] = 1.0

    def test_matches_numpy_over_masked_positions(self):
        loss = MaskedLMLoss()(self.labels, self.logits, sample_weight=self.weights)
        self.assertAllClose(loss, np.float32(numpy_masked_lm_loss(self.labels, self.logits, self.weights)))
        # The mean is over the scored positions, not over all B * L positions.
        all_positions = MaskedLMLoss(reduction="sum_over_batch_size")(self.labels, self.logits, self.weights)
        self.assertAllClose(all_positions * self.weights.size / self.weights.sum(), loss, atol=1e-5)

    def test_without_sample_weight_every_position_is_scored(self):
        loss = MaskedLMLoss()(self.labels, self.logits)
        self.assertAllClose(loss, np.float32(numpy_masked_lm_loss(self.labels, self.logits, np.ones((3, 5)))))

    def test_unmasked_positions_do_not_change_the_loss(self):
        loss = MaskedLMLoss()(self.labels, self.logits, sample_weight=self.weights)
        unscored = self.weights == 0
        logits, labels = self.logits.copy(), self.labels.copy()
        logits[unscored] = np.random.default_rng(1).normal(size=logits[unscored].shape) * 100
        labels[unscored] = (labels[unscored] + 1) % VOCAB
        changed = MaskedLMLoss()(labels, logits, sample_weight=self.weights)
        self.assertAllClose(changed, loss, atol=0)
        logits[0, 0, labels[0, 0]] += 5.0  # a scored position does change it
        self.assertNotAlmostEqual(float(MaskedLMLoss()(labels, logits, self.weights)), float(loss), 4)

    def test_no_scored_position_gives_zero(self):
        loss = MaskedLMLoss()(self.labels, self.logits, sample_weight=np.zeros((3, 5), "float32"))
        self.assertEqual(float(loss), 0.0)

    def test_low_precision_logits_are_computed_in_float32(self):
        loss = MaskedLMLoss()(self.labels, self.logits.astype("float16") * 10, sample_weight=self.weights)
        self.assertDtype(loss, "float32")
        expected = numpy_masked_lm_loss(self.labels, self.logits.astype("float16") * 10, self.weights)
        self.assertAllClose(loss, np.float32(expected), atol=1e-4, rtol=1e-5)

    def test_config_round_trip(self):
        restored = self.run_config_round_trip(MaskedLMLoss(reduction="sum", name="mlm"))
        self.assertEqual((restored.reduction, restored.name), ("sum", "mlm"))

    def test_compile_fit_and_evaluate(self):
        model = tiny_lm()
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=MaskedLMLoss(),
            weighted_metrics=[MaskedLMAccuracy()],
        )
        tokens = self.labels
        expected_loss = numpy_masked_lm_loss(tokens, keras.ops.convert_to_numpy(model(tokens)), self.weights)
        history = model.fit(tokens, tokens, sample_weight=self.weights, batch_size=3, epochs=1, verbose=0)
        self.assertAllClose(history.history["loss"][0], expected_loss, atol=1e-5, rtol=1e-5)
        results = model.evaluate(tokens, tokens, sample_weight=self.weights, batch_size=3, verbose=0)
        predictions = keras.ops.convert_to_numpy(model(tokens))
        self.assertAllClose(results[0], numpy_masked_lm_loss(tokens, predictions, self.weights), atol=1e-5)
        accuracy = ((predictions.argmax(-1) == tokens) * self.weights).sum() / self.weights.sum()
        self.assertAllClose(results[1], accuracy, atol=1e-6)

    def test_errors_name_expected_and_received_shapes(self):
        loss = MaskedLMLoss()
        with self.assertRaisesRegex(ValueError, r"logits of shape \(B, L, V\).*y_pred.shape=\(3, 5\)"):
            loss(self.labels, self.logits[..., 0])
        with self.assertRaisesRegex(ValueError, r"\(B, L\) = \(3, 5\).*y_true.shape=\(3, 4\)"):
            loss(self.labels[:, :4], self.logits)
        with self.assertRaisesRegex(ValueError, r"\(B, L\) = \(3, 5\).*sample_weight.shape=\(3, 5, 1\)"):
            loss(self.labels, self.logits, sample_weight=self.weights[..., None])
