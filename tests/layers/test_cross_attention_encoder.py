import keras
import numpy as np

from keras_perceiver.layers.cross_attention_encoder import CrossAttentionEncoder
from tests.layers import reference
from tests.test_case import TestCase

KWARGS = {
    "num_latents": 4,
    "latent_dim": 8,
    "num_cross_attention_heads": 2,
    "qk_channels": 4,
    "v_channels": 6,
}


class CrossAttentionEncoderTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.inputs = rng.normal(size=(2, 6, 3)).astype("float32")
        # Example 0: last two inputs padded; example 1: every input padded.
        self.padding_mask = np.array([[1, 1, 1, 1, 0, 0], [0] * 6], bool)

    def build(self, **kwargs):
        encoder = CrossAttentionEncoder(**{**KWARGS, **kwargs})
        encoder(self.inputs)
        reference.randomize_weights(encoder)
        return encoder

    def test_layer_basics(self):
        self.run_layer_test(
            CrossAttentionEncoder,
            KWARGS,
            self.inputs,
            expected_output_shape=(2, 4, 8),
            expected_num_trainable_weights=1 + 18,
            call_kwargs={"padding_mask": self.padding_mask},
        )

    def test_matches_reference(self):
        encoder = self.build()
        latents = np.broadcast_to(encoder.latents.numpy(), (2, 4, 8))
        for mask in (None, self.padding_mask):
            expected = reference.cross_attention(
                encoder.cross_attention, latents, self.inputs, None if mask is None else mask[:, None, :]
            )
            self.assertAllClose(encoder(self.inputs, padding_mask=mask), expected, atol=1e-5, rtol=1e-5)

    def test_padding_mask_decides_which_inputs_matter(self):
        encoder = self.build()
        outputs = encoder(self.inputs, padding_mask=self.padding_mask)
        changed = self.inputs.copy()
        changed[0, 4:] = np.random.default_rng(1).normal(size=(2, 3)) * 10
        changed[1] = -changed[1] * 3
        self.assertAllClose(encoder(changed, padding_mask=self.padding_mask), outputs, atol=1e-6)
        # Without the mask the same change does change the output.
        self.assertFalse(np.allclose(encoder(changed)[0], encoder(self.inputs)[0], atol=1e-4))
        # An all-True mask is the same as no mask.
        self.assertAllClose(
            encoder(self.inputs, padding_mask=np.ones((2, 6), bool)), encoder(self.inputs), atol=1e-6
        )

    def test_fully_padded_example_gets_a_zero_attention_output(self):
        encoder = self.build()
        outputs = encoder(self.inputs, padding_mask=self.padding_mask).numpy()
        self.assertAllFinite(outputs)
        # Zero context: latents + output-projection bias, then the residual MLP.
        x = encoder.latents.numpy() + encoder.cross_attention.attention.output_dense.bias.numpy()
        self.assertAllClose(outputs[1], reference.mlp(encoder.cross_attention.mlp, x[None])[0], atol=1e-5)

    def test_fully_padded_rows_are_zero_in_every_precision(self):
        # Without the query residual and with zero biases the block maps a zero attention row to zero.
        self.run_mixed_precision_test(
            CrossAttentionEncoder,
            {**KWARGS, "use_query_residual": False},
            self.inputs,
            call_kwargs={"padding_mask": self.padding_mask},
            zero_rows=np.array([[False], [True]]),
        )

    def test_config_values_reach_the_sublayers(self):
        encoder = CrossAttentionEncoder(
            num_latents=5,
            latent_dim=12,
            num_cross_attention_heads=3,
            qk_channels=6,
            v_channels=9,
            cross_attention_widening_factor=2,
            use_query_residual=False,
            activation="gelu_approximate",
            layer_norm_epsilon=1e-3,
        )
        encoder(self.inputs)
        block = encoder.cross_attention
        self.assertEqual(tuple(encoder.latents.shape), (5, 12))
        self.assertEqual(tuple(block.attention.query_dense.kernel.shape), (12, 3, 2))
        self.assertEqual(tuple(block.attention.value_dense.kernel.shape), (3, 3, 3))
        self.assertEqual(tuple(block.mlp.dense_1.kernel.shape), (12, 24))
        self.assertFalse(block.use_query_residual)
        self.assertEqual(block.mlp.activation, "gelu_approximate")
        self.assertEqual(block.query_norm.epsilon, 1e-3)
        # "q": the default qk width is the latent width.
        q_encoder = CrossAttentionEncoder(4, 8, cross_attention_shape_for_attention="q")
        q_encoder(self.inputs)
        self.assertEqual(q_encoder.cross_attention.attention.qk_channels, 8)

    def test_functional_graph_with_unknown_length(self):
        inputs = keras.Input((None, 3))
        mask = keras.Input((None,), dtype="bool")
        outputs = CrossAttentionEncoder(**KWARGS)(inputs, padding_mask=mask)
        self.assertEqual(tuple(outputs.shape), (None, 4, 8))
        model = keras.Model([inputs, mask], outputs)
        self.assertEqual(tuple(model([self.inputs[:, :5], self.padding_mask[:, :5]]).shape), (2, 4, 8))

    def test_errors_name_expected_and_received_values(self):
        encoder = CrossAttentionEncoder(**KWARGS)
        encoder(self.inputs)
        with self.assertRaisesRegex(
            ValueError, r"`inputs` must have rank 3\. Received: inputs\.shape=\(6, 3\)"
        ):
            encoder(self.inputs[0])
        with self.assertRaisesRegex(ValueError, r"`inputs` has 4 channels but the layer was built for 3"):
            encoder(np.ones((2, 6, 4), "float32"))
        with self.assertRaisesRegex(ValueError, r"`inputs` has an empty index dimension.*\(2, 0, 3\)"):
            encoder(np.ones((2, 0, 3), "float32"))
        with self.assertRaisesRegex(
            ValueError, r"`padding_mask` shape \(2, 5\).*\(2, 6, 3\) on axis 1: expected 6, received 5"
        ):
            encoder(self.inputs, padding_mask=self.padding_mask[:, :5])
        with self.assertRaisesRegex(ValueError, r"on axis 0: expected 2, received 1"):
            encoder(self.inputs, padding_mask=self.padding_mask[:1])
        with self.assertRaisesRegex(
            ValueError,
            r"`padding_mask` must have rank 2 \(B, M\)\. Received: padding_mask\.shape=\(2, 1, 6\)",
        ):
            encoder(self.inputs, padding_mask=self.padding_mask[:, None])
        with self.assertRaisesRegex(ValueError, r"num_latents=0"):
            CrossAttentionEncoder(num_latents=0, latent_dim=8)
        with self.assertRaisesRegex(ValueError, r"qk_channels=4, num_heads=3"):
            CrossAttentionEncoder(**{**KWARGS, "num_cross_attention_heads": 3})
