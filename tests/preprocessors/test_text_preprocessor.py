"""Tests of the token + position embedding with tied output logits."""

import keras
import numpy as np
import tensorflow as tf

from keras_perceiver.preprocessors.text_preprocessor import TextPreprocessor
from tests.test_case import TestCase

KWARGS = {"vocab_size": 20, "max_sequence_length": 12, "embedding_dim": 8, "use_output_bias": True}


class TextPreprocessorTest(TestCase):
    def setUp(self):
        super().setUp()
        self.token_ids = np.random.default_rng(0).integers(0, 20, size=(2, 10)).astype("int32")

    def test_layer_basics(self):
        self.run_layer_test(
            TextPreprocessor,
            KWARGS,
            self.token_ids,
            expected_output_shape=(2, 10, 8),
            expected_num_trainable_weights=3,
            # The output bias is only used by `reverse=True`: see test_gradients.
            run_gradient_test=False,
        )

    def test_reverse_layer_basics(self):
        hidden = np.random.default_rng(1).normal(size=(2, 5, 8)).astype("float32")
        layer = TextPreprocessor(**KWARGS)
        layer(self.token_ids)
        logits = layer(hidden, reverse=True)
        self.assertEqual(tuple(logits.shape), (2, 5, 20))
        symbolic = layer(keras.KerasTensor((None, 5, 8)), reverse=True)
        self.assertEqual(tuple(symbolic.shape), (None, 5, 20))

        def builder(dtype):
            built = TextPreprocessor(**KWARGS, dtype=dtype)
            built(self.token_ids)
            return built

        self.run_mixed_precision_test(builder, inputs=hidden, call_kwargs={"reverse": True})

    def test_embedding_values(self):
        layer = TextPreprocessor(**KWARGS)
        outputs = layer(self.token_ids).numpy()
        tokens = layer.token_embeddings.numpy()
        positions = layer.position_embeddings.numpy()
        self.assertEqual(tokens.shape, (20, 8))
        self.assertEqual(positions.shape, (12, 8))
        self.assertAllClose(outputs, tokens[self.token_ids] + positions[None, :10], atol=1e-7)

    def test_tied_logits(self):
        layer = TextPreprocessor(**KWARGS)
        layer(self.token_ids)
        layer.output_bias.assign(np.arange(20, dtype="float32"))
        hidden = np.random.default_rng(1).normal(size=(2, 5, 8)).astype("float32")
        expected = hidden @ layer.token_embeddings.numpy().T + np.arange(20)
        self.assertAllClose(layer(hidden, reverse=True), expected, atol=1e-6)

    def test_without_output_bias(self):
        layer = TextPreprocessor(**{**KWARGS, "use_output_bias": False})
        layer(self.token_ids)
        self.assertEqual(
            [w.path for w in layer.weights],
            ["text_preprocessor/token_embeddings", "text_preprocessor/position_embeddings"],
        )
        hidden = np.random.default_rng(1).normal(size=(2, 5, 8)).astype("float32")
        expected = hidden @ layer.token_embeddings.numpy().T
        self.assertAllClose(layer(hidden, reverse=True), expected, atol=1e-6)
        self.assertFalse(layer.get_config()["use_output_bias"])

    def test_gradients(self):
        layer = TextPreprocessor(**KWARGS)
        hidden = np.random.default_rng(1).normal(size=(2, 10, 8)).astype("float32")
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(layer(self.token_ids) * hidden, reverse=True) ** 2)
        grads = tape.gradient(loss, [w.value for w in layer.trainable_weights])
        for weight, grad in zip(layer.trainable_weights, grads):
            self.assertTrue(np.any(tf.convert_to_tensor(grad).numpy()), msg=weight.path)

    def test_functional_with_unknown_length(self):
        layer = TextPreprocessor(**KWARGS)
        token_ids = keras.Input((None,), dtype="int32")
        outputs = layer(token_ids)
        self.assertEqual(tuple(outputs.shape), (None, None, 8))
        model = keras.Model(token_ids, outputs)
        self.assertEqual(tuple(model(self.token_ids[:, :3]).shape), (2, 3, 8))

    def test_errors_name_expected_and_received_values(self):
        layer = TextPreprocessor(**KWARGS)
        with self.assertRaisesRegex(
            TypeError, r"`token_ids` must be an integer tensor.*Received: dtype=float32"
        ):
            layer(self.token_ids.astype("float32"))
        with self.assertRaisesRegex(
            ValueError, r"`token_ids` must have rank 2\. Received: token_ids\.shape=\(10,\)"
        ):
            layer(self.token_ids[0])
        with self.assertRaisesRegex(ValueError, r"13 tokens exceed max_sequence_length=12.*\(2, 13\)"):
            layer(np.ones((2, 13), "int32"))
        with self.assertRaisesRegex(ValueError, r"must lie in \[0, 20\)\. Received: min=-1, max=5"):
            layer(np.array([[-1, 5]], "int32"))
        with self.assertRaisesRegex(ValueError, r"must lie in \[0, 20\)\. Received: min=0, max=20"):
            layer(np.array([[0, 20]], "int32"))
        with self.assertRaisesRegex(ValueError, r"must have 8 channels.*Received: inputs\.shape=\(2, 5, 6\)"):
            layer(np.ones((2, 5, 6), "float32"), reverse=True)
        with self.assertRaisesRegex(ValueError, r"vocab_size=0"):
            TextPreprocessor(vocab_size=0)

    def test_ngram_embedding_is_added_and_round_trips(self):
        layer = TextPreprocessor(**KWARGS, ngram_sizes=(2, 3), num_ngram_buckets=64, ngram_embedding_dim=4)
        outputs = np.asarray(layer(self.token_ids))
        plain = layer.token_embeddings.numpy()[self.token_ids] + layer.position_embeddings.numpy()[None, :10]
        self.assertAllClose(outputs, plain + np.asarray(layer.ngram_embedding(self.token_ids)), atol=1e-6)
        self.assertGreater(np.abs(outputs - plain).max(), 0.0)
        self.assertEqual(len(layer.trainable_weights), 3 + 3)  # + two n-gram tables and their projection
        restored = TextPreprocessor.from_config(layer.get_config())
        restored(self.token_ids)
        restored.set_weights(layer.get_weights())
        self.assertAllClose(restored(self.token_ids), outputs, atol=0)
        self.assertIsNone(TextPreprocessor(**KWARGS).ngram_embedding)  # off by default
