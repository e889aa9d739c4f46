import numpy as np

from keras_perceiver.layers.cross_attention import CrossAttention
from tests.layers import reference
from tests.test_case import TestCase


class CrossAttentionTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.query = rng.normal(size=(2, 4, 8)).astype("float32")
        self.inputs = rng.normal(size=(2, 6, 3)).astype("float32")
        # Example 0: last two inputs padded; example 1: every input padded.
        self.mask = np.array([[1, 1, 1, 1, 0, 0], [0] * 6], bool)[:, None, :]

    def test_layer_basics(self):
        self.run_layer_test(
            CrossAttention,
            {"num_heads": 2, "qk_channels": 4, "v_channels": 6, "widening_factor": 2},
            (self.query, self.inputs),
            expected_output_shape=(2, 4, 8),
            expected_num_trainable_weights=4 + 8 + 6,
            call_kwargs={"attention_mask": self.mask},
        )

    def test_matches_reference(self):
        for use_query_residual in (True, False):
            layer = CrossAttention(num_heads=2, qk_channels=4, use_query_residual=use_query_residual)
            layer(self.query, self.inputs)
            reference.randomize_weights(layer)
            for mask in (None, self.mask):
                self.assertAllClose(
                    layer(self.query, self.inputs, attention_mask=mask),
                    reference.cross_attention(layer, self.query, self.inputs, mask),
                    atol=1e-5,
                    rtol=1e-5,
                )

    def test_shape_for_attention_picks_the_default_qk_width(self):
        kv_layer = CrossAttention(shape_for_attention="kv")
        kv_layer(self.query, self.inputs)
        self.assertEqual(kv_layer.attention.qk_channels, 3)
        q_layer = CrossAttention(shape_for_attention="q", num_heads=2)
        q_layer(self.query, self.inputs)
        self.assertEqual(q_layer.attention.qk_channels, 8)
        self.assertEqual(tuple(q_layer.attention.query_dense.kernel.shape), (8, 2, 4))
        # Output projection back to the query width; layer norms with epsilon 1e-5.
        self.assertEqual(tuple(q_layer.attention.output_dense.kernel.shape), (2, 4, 8))
        self.assertEqual(q_layer.query_norm.epsilon, 1e-5)
        self.assertEqual(q_layer.inputs_norm.epsilon, 1e-5)

    def test_fully_padded_inputs_give_zero_rows_in_every_precision(self):
        # Without the query residual and with zero biases the block is 0 -> 0 for a zero attention row.
        self.run_mixed_precision_test(
            CrossAttention,
            {"num_heads": 2, "qk_channels": 4, "use_query_residual": False},
            (self.query, self.inputs),
            call_kwargs={"attention_mask": self.mask},
            zero_rows=np.array([[False], [True]]),
        )

    def test_fully_padded_inputs_keep_the_query_residual(self):
        layer = CrossAttention(num_heads=2, qk_channels=4)
        layer(self.query, self.inputs)
        reference.randomize_weights(layer)
        outputs = layer(self.query, self.inputs, attention_mask=self.mask).numpy()
        # Zero attention context: x = query + output-projection bias, then the residual MLP.
        x = self.query[1:] + layer.attention.output_dense.bias.numpy()
        self.assertAllFinite(outputs)
        self.assertAllClose(outputs[1], reference.mlp(layer.mlp, x)[0], atol=1e-5)

    def test_errors_name_expected_and_received_values(self):
        layer = CrossAttention(num_heads=1)
        layer(self.query, self.inputs)
        with self.assertRaisesRegex(
            ValueError, r"`query` must have rank 3\. Received: query\.shape=\(4, 8\)"
        ):
            layer(self.query[0], self.inputs)
        with self.assertRaisesRegex(
            ValueError, r"`inputs` must have rank 3\. Received: inputs\.shape=\(2, 6, 3, 1\)"
        ):
            layer(self.query, self.inputs[..., None])
        with self.assertRaisesRegex(ValueError, r"`inputs` has 5 channels but the layer was built for 3"):
            layer(self.query, np.ones((2, 6, 5), "float32"))
        with self.assertRaisesRegex(ValueError, r"`query` has 7 channels but the layer was built for 8"):
            layer(np.ones((2, 4, 7), "float32"), self.inputs)
        with self.assertRaisesRegex(
            ValueError, r"`inputs` has an empty index dimension.*inputs\.shape=\(2, 0, 3\)"
        ):
            layer(self.query, np.ones((2, 0, 3), "float32"))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, r"shape_for_attention.*Received: shape_for_attention='k'"):
            CrossAttention(shape_for_attention="k")
        with self.assertRaisesRegex(ValueError, r"qk_channels=6, num_heads=4"):
            CrossAttention(num_heads=4, qk_channels=6)
        # The default qk width (the input width, 3) must split over the heads too.
        with self.assertRaisesRegex(ValueError, r"qk_channels=3, num_heads=2"):
            CrossAttention(num_heads=2)(self.query, self.inputs)

    def test_squared_relu_matches_reference(self):
        # HiP's cross-attention: widths from the inputs ("kv"), squared ReLU MLP, with or without residual.
        for residual in (True, False):
            layer = CrossAttention(activation="squared_relu", use_query_residual=residual)
            layer(self.query, self.inputs)
            reference.randomize_weights(layer)
            expected = reference.cross_attention(layer, self.query, self.inputs)
            self.assertAllClose(layer(self.query, self.inputs), expected, atol=1e-5, rtol=1e-5)
            self.assertEqual(layer.mlp.activation, "squared_relu")
