import numpy as np

from keras_perceiver.layers.self_attention import SelfAttention
from tests.layers import reference
from tests.test_case import TestCase


class SelfAttentionTest(TestCase):
    def setUp(self):
        super().setUp()
        self.x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
        self.mask = np.array([[1, 1, 1, 0, 0], [0] * 5], bool)[:, None, :]

    def test_layer_basics(self):
        self.run_layer_test(
            SelfAttention,
            {"num_heads": 2, "qk_channels": 4, "v_channels": 8, "widening_factor": 2},
            self.x,
            expected_output_shape=(2, 5, 8),
            expected_num_trainable_weights=2 + 8 + 6,
            call_kwargs={"attention_mask": self.mask},
        )

    def test_matches_reference(self):
        layer = SelfAttention(num_heads=2, qk_channels=4, v_channels=8)
        layer(self.x)
        reference.randomize_weights(layer)
        for mask in (None, self.mask):
            self.assertAllClose(
                layer(self.x, attention_mask=mask),
                reference.self_attention(layer, self.x, mask),
                atol=1e-5,
                rtol=1e-5,
            )

    def test_default_widths_follow_the_latent_width(self):
        layer = SelfAttention(num_heads=4)
        layer(self.x)
        self.assertEqual(layer.attention.qk_channels, 8)
        self.assertEqual(tuple(layer.attention.value_dense.kernel.shape), (8, 4, 2))
        self.assertEqual(layer.layer_norm.epsilon, 1e-5)

    def test_masks_give_finite_outputs_in_every_precision(self):
        self.run_mixed_precision_test(
            SelfAttention, {"num_heads": 2}, self.x, call_kwargs={"attention_mask": self.mask}
        )

    def test_errors_name_expected_and_received_values(self):
        layer = SelfAttention(num_heads=2)
        layer(self.x)
        with self.assertRaisesRegex(ValueError, r"`x` must have rank 3\. Received: x\.shape=\(5, 8\)"):
            layer(self.x[0])
        with self.assertRaisesRegex(ValueError, r"`x` has 6 channels but the layer was built for 8"):
            layer(np.ones((2, 5, 6), "float32"))
        with self.assertRaisesRegex(
            ValueError, r"Expected v_channels=8.*Received: qk_channels=None, v_channels=4"
        ):
            SelfAttention(num_heads=2, v_channels=4)(self.x)
        with self.assertRaisesRegex(
            ValueError, r"Expected v_channels=8.*Received: qk_channels=4, v_channels=None"
        ):
            SelfAttention(num_heads=2, qk_channels=4)(self.x)

    def test_squared_relu_matches_reference(self):
        layer = SelfAttention(num_heads=2, activation="squared_relu", widening_factor=4)
        layer(self.x)
        reference.randomize_weights(layer)
        self.assertAllClose(layer(self.x), reference.self_attention(layer, self.x), atol=1e-5, rtol=1e-5)

    def test_drop_path_on_both_branches_per_example(self):
        x = np.random.default_rng(3).normal(size=(200, 5, 8)).astype("float32")
        layer = SelfAttention(num_heads=2, activation="squared_relu", drop_path_rate=0.4)
        layer(x)
        reference.randomize_weights(layer)
        self.assertAllClose(layer(x, training=False), layer(x))
        self.assertIsNotNone(layer.attention_drop_path)
        self.assertIsNotNone(layer.mlp.drop_path)
        normed = reference.layer_norm(x.astype("float64"), layer.layer_norm)
        attended = np.asarray(reference.attention(layer.attention, normed, normed))
        outcomes = {
            (keep_attention, keep_mlp): reference.mlp(layer.mlp, x + keep_attention * attended)
            if keep_mlp
            else x + keep_attention * attended
            for keep_attention in (0, 1)
            for keep_mlp in (0, 1)
        }
        trained = layer(x, training=True).numpy()
        seen = np.zeros(len(x), int)
        counts = {}
        for outcome, expected in outcomes.items():
            match = np.all(np.isclose(trained, expected, atol=1e-4), axis=(1, 2))
            counts[outcome] = int(match.sum())
            seen += match
        # Every example is one of the four outcomes (no 1/keep rescaling), and all four occur:
        # the two branches draw independently.
        self.assertTrue(np.all(seen == 1), msg=f"{counts}")
        self.assertTrue(all(count > 5 for count in counts.values()), msg=f"{counts}")

    def test_drop_path_config_round_trip(self):
        layer = SelfAttention(num_heads=2, drop_path_rate=0.1, drop_path_scale_by_keep=True, num_groups=5)
        restored = self.run_config_round_trip(layer)
        self.assertEqual((restored.drop_path_rate, restored.num_groups), (0.1, 5))
        self.assertTrue(restored.drop_path_scale_by_keep)
        with self.assertRaisesRegex(ValueError, r"num_groups=0"):
            SelfAttention(num_groups=0)
