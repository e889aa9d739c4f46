import numpy as np

from keras_perceiver.layers.mlp_block import MLPBlock
from tests.layers import reference
from tests.test_case import TestCase


class MLPBlockTest(TestCase):
    def setUp(self):
        super().setUp()
        self.x = np.random.default_rng(0).normal(size=(2, 5, 6)).astype("float32")

    def test_layer_basics(self):
        self.run_layer_test(
            MLPBlock,
            {"widening_factor": 3},
            self.x,
            expected_output_shape=(2, 5, 6),
            expected_num_trainable_weights=6,
        )

    def test_hidden_width_is_widening_factor_times_channels(self):
        layer = MLPBlock(widening_factor=3)
        layer(self.x)
        self.assertEqual(tuple(layer.dense_1.kernel.shape), (6, 18))
        self.assertEqual(tuple(layer.dense_2.kernel.shape), (18, 6))
        self.assertEqual(layer.layer_norm.epsilon, 1e-5)

    def test_matches_reference_for_both_gelu_variants(self):
        outputs = {}
        for activation in ("gelu", "gelu_approximate"):
            layer = MLPBlock(widening_factor=2, activation=activation)
            layer(self.x)
            reference.randomize_weights(layer, scale=1.0)
            outputs[activation] = layer(self.x)
            self.assertAllClose(outputs[activation], reference.mlp(layer, self.x), atol=1e-5, rtol=1e-5)
        # The two variants are different functions (same weights by the same seed).
        self.assertFalse(np.allclose(outputs["gelu"], outputs["gelu_approximate"], atol=1e-6))

    def test_dropout_only_in_training(self):
        layer = MLPBlock(dropout=0.5)
        inference = layer(self.x)
        self.assertAllClose(layer(self.x, training=False), inference)
        self.assertFalse(np.allclose(layer(self.x, training=True), inference))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(
            ValueError, r"`activation` must be one of.*'gelu'.*Received: activation='relu'"
        ):
            MLPBlock(activation="relu")
        with self.assertRaisesRegex(ValueError, r"widening_factor=0"):
            MLPBlock(widening_factor=0)
