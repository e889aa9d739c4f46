import numpy as np

from keras_perceiver.layers.query_decoder import QueryDecoder
from tests.layers import reference
from tests.test_case import TestCase

KWARGS = {"num_cross_attention_heads": 2, "output_channels": 5}


class QueryDecoderTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.queries = rng.normal(size=(2, 3, 6)).astype("float32")
        self.latents = rng.normal(size=(2, 4, 8)).astype("float32")
        self.query_mask = np.array([[1, 0, 1], [0, 0, 0]], bool)
        self.masked_rows = ~self.query_mask

    def build(self, **kwargs):
        decoder = QueryDecoder(**{**KWARGS, **kwargs})
        decoder(self.queries, self.latents)
        reference.randomize_weights(decoder)
        return decoder

    def test_layer_basics(self):
        self.run_layer_test(
            QueryDecoder,
            KWARGS,
            (self.queries, self.latents),
            expected_output_shape=(2, 3, 5),
            expected_num_trainable_weights=18 + 2,
            call_kwargs={"query_mask": self.query_mask},
            zero_rows=self.masked_rows,
        )

    def test_matches_reference(self):
        decoder = self.build()
        hidden = reference.cross_attention(decoder.cross_attention, self.queries, self.latents)
        kernel, bias = decoder.output_projection.get_weights()
        self.assertAllClose(decoder(self.queries, self.latents), hidden @ kernel + bias, atol=1e-5, rtol=1e-5)
        # The reference decoder has no query residual by default.
        self.assertFalse(decoder.cross_attention.use_query_residual)

    def test_zero_mode_zeroes_fully_masked_queries_only(self):
        decoder = self.build()
        unmasked = decoder(self.queries, self.latents).numpy()
        masked = decoder(self.queries, self.latents, query_mask=self.query_mask).numpy()
        self.assertAllZero(masked[self.masked_rows])
        self.assertFalse(np.any(np.all(unmasked[self.masked_rows] == 0, axis=-1)))
        # Queries do not interact: the unmasked rows are unchanged.
        self.assertAllClose(masked[self.query_mask], unmasked[self.query_mask], atol=1e-6)

    def test_zero_mode_without_output_projection(self):
        decoder = self.build(output_channels=None)
        masked = decoder(self.queries, self.latents, query_mask=self.query_mask)
        self.assertEqual(tuple(masked.shape), (2, 3, 6))
        self.assertAllZero(masked.numpy()[self.masked_rows])

    def test_zero_mode_in_every_precision(self):
        self.run_mixed_precision_test(
            QueryDecoder,
            {**KWARGS, "use_query_residual": True},
            (self.queries, self.latents),
            call_kwargs={"query_mask": self.query_mask},
            zero_rows=self.masked_rows,
        )

    def test_ignore_mode_ignores_the_mask(self):
        decoder = self.build(query_mask_mode="ignore")
        self.assertAllClose(
            decoder(self.queries, self.latents, query_mask=self.query_mask),
            decoder(self.queries, self.latents),
            atol=0,
        )

    def test_config_values_reach_the_sublayers(self):
        decoder = QueryDecoder(
            num_cross_attention_heads=3,
            qk_channels=6,
            v_channels=3,
            cross_attention_widening_factor=2,
            use_query_residual=True,
            output_channels=7,
            activation="gelu_approximate",
            layer_norm_epsilon=1e-3,
        )
        self.assertEqual(tuple(decoder(self.queries, self.latents).shape), (2, 3, 7))
        block = decoder.cross_attention
        self.assertEqual(tuple(block.attention.query_dense.kernel.shape), (6, 3, 2))
        self.assertEqual(tuple(block.attention.value_dense.kernel.shape), (8, 3, 1))
        self.assertEqual(tuple(block.mlp.dense_1.kernel.shape), (6, 12))
        self.assertTrue(block.use_query_residual)
        self.assertEqual(block.mlp.activation, "gelu_approximate")
        self.assertEqual(block.inputs_norm.epsilon, 1e-3)
        self.assertEqual(tuple(decoder.output_projection.kernel.shape), (6, 7))
        # Default qk width: the latent width ("kv") or the query width ("q").
        kv = QueryDecoder()
        kv(self.queries, self.latents)
        self.assertEqual(kv.cross_attention.attention.qk_channels, 8)
        q = QueryDecoder(cross_attention_shape_for_attention="q")
        q(self.queries, self.latents)
        self.assertEqual(q.cross_attention.attention.qk_channels, 6)

    def test_errors_name_expected_and_received_values(self):
        decoder = QueryDecoder(**KWARGS)
        decoder(self.queries, self.latents)
        with self.assertRaisesRegex(
            ValueError, r"`queries` must have rank 3\. Received: queries\.shape=\(3, 6\)"
        ):
            decoder(self.queries[0], self.latents)
        with self.assertRaisesRegex(
            ValueError, r"`latents` must have rank 3\. Received: latents\.shape=\(4, 8\)"
        ):
            decoder(self.queries, self.latents[0])
        with self.assertRaisesRegex(ValueError, r"`queries` has an empty index dimension.*\(2, 0, 6\)"):
            decoder(np.ones((2, 0, 6), "float32"), self.latents)
        with self.assertRaisesRegex(
            ValueError, r"`query_mask` shape \(2, 2\).*on axis 1: expected 3, received 2"
        ):
            decoder(self.queries, self.latents, query_mask=self.query_mask[:, :2])
        with self.assertRaisesRegex(
            ValueError, r"QueryDecoder: `latents` has 7 channels but the layer was built for 8"
        ):
            decoder(self.queries, np.ones((2, 4, 7), "float32"))
        with self.assertRaisesRegex(
            ValueError, r"QueryDecoder: `queries` has 5 channels but the layer was built for 6"
        ):
            decoder(np.ones((2, 3, 5), "float32"), self.latents)
        with self.assertRaisesRegex(ValueError, r"query_mask_mode.*Received: query_mask_mode='drop'"):
            QueryDecoder(query_mask_mode="drop")
        with self.assertRaisesRegex(ValueError, r"output_channels=0"):
            QueryDecoder(output_channels=0)
