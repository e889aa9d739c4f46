import keras
import numpy as np

from keras_perceiver.layers.multi_head_attention import PerceiverMultiHeadAttention
from tests.layers import reference
from tests.test_case import TestCase

KWARGS = {"num_heads": 2, "qk_channels": 8, "v_channels": 4, "output_channels": 6}


class PerceiverMultiHeadAttentionTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.query = rng.normal(size=(2, 3, 6)).astype("float32")
        self.key_value = rng.normal(size=(2, 5, 4)).astype("float32")
        # Example 0: two padded keys; example 1: every key padded.
        self.key_mask = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool)[:, None, :]

    def test_layer_basics(self):
        self.run_layer_test(
            PerceiverMultiHeadAttention,
            KWARGS,
            (self.query, self.key_value),
            expected_output_shape=(2, 3, 6),
            expected_num_trainable_weights=8,
        )

    def test_per_head_kernel_layout(self):
        layer = PerceiverMultiHeadAttention(**KWARGS)
        layer(self.query, self.key_value)
        self.assertEqual(tuple(layer.query_dense.kernel.shape), (6, 2, 4))
        self.assertEqual(tuple(layer.key_dense.kernel.shape), (4, 2, 4))
        self.assertEqual(tuple(layer.value_dense.kernel.shape), (4, 2, 2))
        self.assertEqual(tuple(layer.output_dense.kernel.shape), (2, 2, 6))

    def test_v_channels_defaults_to_qk_channels(self):
        layer = PerceiverMultiHeadAttention(num_heads=2, qk_channels=8, output_channels=6)
        layer(self.query, self.key_value)
        self.assertEqual(tuple(layer.value_dense.kernel.shape), (4, 2, 4))

    def test_matches_reference_with_and_without_mask(self):
        layer = PerceiverMultiHeadAttention(**KWARGS)
        layer(self.query, self.key_value)
        reference.randomize_weights(layer)
        for mask in (None, self.key_mask):
            outputs = layer(self.query, self.key_value, attention_mask=mask)
            expected = reference.attention(layer, self.query, self.key_value, mask)
            self.assertAllClose(outputs, expected, atol=1e-5, rtol=1e-5)

    def test_fully_masked_rows_are_zero_in_every_precision(self):
        # Zero biases: a row with no allowed key has a zero context, hence a zero output.
        self.run_mixed_precision_test(
            PerceiverMultiHeadAttention,
            KWARGS,
            (self.query, self.key_value),
            call_kwargs={"attention_mask": self.key_mask},
            zero_rows=np.array([[False], [True]]),
        )

    def test_fully_masked_rows_give_the_output_bias(self):
        layer = PerceiverMultiHeadAttention(**KWARGS)
        layer(self.query, self.key_value)
        reference.randomize_weights(layer)
        outputs = layer(self.query, self.key_value, attention_mask=self.key_mask).numpy()
        bias = layer.output_dense.bias.numpy()
        self.assertAllClose(outputs[1], np.broadcast_to(bias, (3, 6)), atol=1e-6)
        self.assertFalse(np.allclose(outputs[0], bias, atol=1e-3))

    def test_query_mask_zeroes_masked_query_rows(self):
        layer = PerceiverMultiHeadAttention(**KWARGS)
        query_mask = np.array([[1, 0, 1], [0, 0, 0]], bool)[:, :, None]
        outputs = layer(self.query, self.key_value, attention_mask=query_mask).numpy()
        self.assertAllZero(outputs[0, 1])
        self.assertAllZero(outputs[1])
        unmasked = layer(self.query, self.key_value).numpy()
        self.assertAllClose(outputs[0, [0, 2]], unmasked[0, [0, 2]], atol=1e-6)

    def test_masked_keys_do_not_matter(self):
        layer = PerceiverMultiHeadAttention(**KWARGS)
        outputs = layer(self.query, self.key_value, attention_mask=self.key_mask)
        changed = self.key_value.copy()
        changed[0, 3:] = 100.0
        changed_outputs = layer(self.query, changed, attention_mask=self.key_mask)
        self.assertAllClose(outputs, changed_outputs, atol=1e-6)
        unmasked = layer(self.query, changed)
        self.assertFalse(np.allclose(unmasked[0], outputs[0], atol=1e-4))

    def test_large_scores_stay_finite_in_float16(self):
        layer = PerceiverMultiHeadAttention(**KWARGS, dtype="mixed_float16")
        query = np.full((1, 2, 6), 30.0, "float32")
        key_value = np.full((1, 4, 4), 30.0, "float32")
        layer(query, key_value)
        layer.set_weights([np.full(w.shape, 0.5, "float32") for w in layer.get_weights()])
        outputs = layer(query, key_value, attention_mask=np.array([[[1, 1, 0, 0]]], bool))
        self.assertAllFinite(outputs)

    def test_attention_dropout_only_in_training(self):
        layer = PerceiverMultiHeadAttention(**KWARGS, attention_dropout=0.5)
        inference = layer(self.query, self.key_value)
        self.assertAllClose(layer(self.query, self.key_value, training=False), inference)
        training = layer(self.query, self.key_value, training=True)
        self.assertFalse(np.allclose(training, inference))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, r"divisible by `num_heads`.*qk_channels=7, num_heads=2"):
            PerceiverMultiHeadAttention(num_heads=2, qk_channels=7, output_channels=4)
        with self.assertRaisesRegex(ValueError, r"divisible by `num_heads`.*v_channels=5, num_heads=2"):
            PerceiverMultiHeadAttention(num_heads=2, qk_channels=8, v_channels=5, output_channels=4)
        with self.assertRaisesRegex(ValueError, r"positive integer.*num_heads=0"):
            PerceiverMultiHeadAttention(num_heads=0, qk_channels=8, output_channels=4)
        with self.assertRaisesRegex(ValueError, r"positive integer.*output_channels=None"):
            PerceiverMultiHeadAttention(num_heads=1, qk_channels=8, output_channels=None)

    def test_symbolic_call_with_unknown_dimensions(self):
        # Functional graphs: KerasTensors with unknown batch and lengths.
        layer = PerceiverMultiHeadAttention(**KWARGS)
        out = layer(
            keras.Input((None, 6)),
            keras.Input((None, 4)),
            attention_mask=keras.Input((1, None), dtype="bool"),
        )
        self.assertEqual(tuple(out.shape), (None, None, 6))

    def test_variance_scaling_uses_the_fused_linear_fans(self):
        # HiP's VarianceScaling(1.0, fan_in): the std of a projection kernel is sqrt(1 / in) as for the
        # Linear [in, heads*head_dim] it stands for (Keras' 3-D fans would give sqrt(1 / (in * heads))).
        initializer = keras.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal", seed=3)
        layer = PerceiverMultiHeadAttention(
            num_heads=8, qk_channels=256, output_channels=64, kernel_initializer=initializer
        )
        layer(np.zeros((1, 2, 64), "float32"), np.zeros((1, 2, 128), "float32"))
        for dense, fan_in in (
            (layer.query_dense, 64),
            (layer.key_dense, 128),
            (layer.value_dense, 128),
            (layer.output_dense, 256),
        ):
            kernel = dense.kernel.numpy()
            self.assertAllClose(kernel.std(), np.sqrt(1.0 / fan_in), atol=0.1 * np.sqrt(1.0 / fan_in))
            self.assertLessEqual(np.abs(kernel).max(), 2.0 * np.sqrt(1.0 / fan_in) / 0.8796 + 1e-6)
        # Initializers that do not depend on the fans draw as before.
        plain = PerceiverMultiHeadAttention(
            num_heads=2, qk_channels=8, output_channels=6, kernel_initializer=keras.initializers.Zeros()
        )
        plain(self.query, self.key_value)
        self.assertAllZero(plain.query_dense.kernel)
