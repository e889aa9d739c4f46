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

    def test_squared_relu_matches_reference(self):
        layer = MLPBlock(widening_factor=2, activation="squared_relu")
        layer(self.x)
        reference.randomize_weights(layer, scale=1.0)
        self.assertAllClose(layer(self.x), reference.mlp(layer, self.x), atol=1e-5, rtol=1e-5)
        self.assertEqual(layer.get_config()["activation"], "squared_relu")
        self.run_layer_test(MLPBlock, {"activation": "squared_relu"}, self.x, expected_output_shape=(2, 5, 6))

    def test_drop_path_drops_whole_examples_without_rescaling(self):
        x = np.random.default_rng(1).normal(size=(64, 3, 6)).astype("float32")
        layer = MLPBlock(activation="squared_relu", drop_path_rate=0.5)
        layer(x)
        reference.randomize_weights(layer, scale=1.0)
        full = layer(x).numpy()
        self.assertAllClose(layer(x, training=False), full)  # identity at inference
        trained = layer(x, training=True).numpy()
        kept = np.all(np.isclose(trained, full, atol=1e-6), axis=(1, 2))
        dropped = np.all(np.isclose(trained, x, atol=1e-6), axis=(1, 2))
        # Every example either keeps its whole branch (not rescaled by 1/keep) or loses it.
        self.assertTrue(np.all(kept | dropped), msg=f"kept {kept}, dropped {dropped}")
        self.assertTrue(10 < kept.sum() < 54, msg=f"kept {kept.sum()} of 64 at rate 0.5")

    def test_drop_path_scale_by_keep_and_groups(self):
        x = np.random.default_rng(2).normal(size=(32 * 4, 3, 6)).astype("float32")
        layer = MLPBlock(drop_path_rate=0.25, drop_path_scale_by_keep=True, num_groups=4)
        layer(x)
        reference.randomize_weights(layer, scale=1.0)
        branch = layer(x).numpy() - x
        trained_branch = (layer(x, training=True).numpy() - x).reshape(32, 4, 3, 6)
        branch = branch.reshape(32, 4, 3, 6)
        kept = np.all(np.isclose(trained_branch, branch / 0.75, atol=1e-5), axis=(2, 3))
        dropped = np.all(np.isclose(trained_branch, 0.0, atol=1e-6), axis=(2, 3))
        self.assertTrue(np.all(kept | dropped))
        # One draw per example: its 4 groups are all kept or all dropped.
        self.assertTrue(np.all(kept.all(axis=1) | dropped.all(axis=1)))
        self.assertTrue(0 < dropped[:, 0].sum() < 32)
        config = layer.get_config()
        self.assertEqual(
            (config["drop_path_rate"], config["drop_path_scale_by_keep"], config["num_groups"]),
            (0.25, True, 4),
        )

    def test_drop_path_defaults_add_no_layer(self):
        layer = MLPBlock()
        layer(self.x)
        self.assertIsNone(layer.drop_path)
        self.assertEqual(len(layer.variables), len(layer.weights))  # no seed generator state
        with self.assertRaisesRegex(ValueError, r"drop_path_rate=1\.0"):
            MLPBlock(drop_path_rate=1.0)
