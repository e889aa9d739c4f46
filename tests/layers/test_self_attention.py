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
