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


HIP_KWARGS = {"num_latents": 6, "latent_dim": 8, "num_cross_attention_heads": 1, "activation": "squared_relu"}


class CrossAttentionEncoderGroupsTest(TestCase):
    """HiP options: per-group latents, U-Net skip, train-time latent subsets."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        # B=2 examples x G=3 groups folded into the batch, 5 inputs of width 4 per group.
        self.inputs = rng.normal(size=(2 * 3, 5, 4)).astype("float32")

    def test_layer_basics_with_groups_skip_and_subsets(self):
        skip = np.random.default_rng(1).normal(size=(6, 6, 5)).astype("float32")
        self.run_layer_test(
            CrossAttentionEncoder,
            {**HIP_KWARGS, "num_groups": 3, "num_latents_train": 4, "seed": 1},
            self.inputs,
            expected_output_shape=(6, 6, 8),
            expected_num_trainable_weights=1 + 18 + 2,
            call_kwargs={"skip": skip},
        )

    def test_every_group_attends_from_its_own_latents(self):
        encoder = CrossAttentionEncoder(**HIP_KWARGS, num_groups=3)
        encoder(self.inputs)
        reference.randomize_weights(encoder)
        self.assertEqual(tuple(encoder.latents.shape), (18, 8))
        latents = encoder.latents.numpy().reshape(3, 6, 8)  # group-major rows
        expected = np.concatenate(
            [
                reference.cross_attention(
                    encoder.cross_attention, latents[g % 3][None], self.inputs[g : g + 1]
                )
                for g in range(6)
            ]
        )
        self.assertAllClose(encoder(self.inputs), expected, atol=1e-5, rtol=1e-5)
        queries = encoder.latent_queries(2).numpy()
        self.assertAllClose(queries, np.tile(latents, (2, 1, 1)))

    def test_skip_is_added_to_the_queries_and_projected_only_when_widths_differ(self):
        rng = np.random.default_rng(2)
        for width, projected in ((8, False), (5, True)):
            skip = rng.normal(size=(6, 6, width)).astype("float32")
            encoder = CrossAttentionEncoder(**HIP_KWARGS, num_groups=3)
            encoder(self.inputs, skip=skip)
            reference.randomize_weights(encoder)
            self.assertEqual(encoder.skip_projection is not None, projected)
            added = skip
            if projected:
                dense = encoder.skip_projection
                added = skip @ dense.kernel.numpy() + dense.bias.numpy()
            queries = encoder.latent_queries(2).numpy() + added
            expected = reference.cross_attention(encoder.cross_attention, queries, self.inputs)
            self.assertAllClose(encoder(self.inputs, skip=skip), expected, atol=1e-5, rtol=1e-5)

    def test_latent_initializer_fan_in_is_groups_times_latents(self):
        initializer = keras.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal", seed=0)
        encoder = CrossAttentionEncoder(
            num_latents=64, latent_dim=128, num_groups=16, latent_initializer=initializer
        )
        encoder(np.zeros((16, 2, 4), "float32"))
        self.assertAllClose(encoder.latents.numpy().std(), np.sqrt(1 / 1024), atol=2e-3)

    def _selected_indices(self, encoder, batch_size, training):
        """The latent index (within its group) of every query row: (B*G, N')."""
        queries = encoder.latent_queries(batch_size, training=training).numpy()
        latents = encoder.latents.numpy().reshape(encoder.num_groups, encoder.num_latents, -1)
        groups = np.arange(len(queries)) % encoder.num_groups
        distances = np.abs(queries[:, :, None, :] - latents[groups][:, None, :, :]).sum(-1)
        indices = distances.argmin(-1)
        self.assertAllClose(distances.min(-1), np.zeros_like(distances.min(-1)))  # each row is one latent
        return indices

    def test_training_uses_a_random_subset_per_example_and_group(self):
        encoder = CrossAttentionEncoder(**HIP_KWARGS, num_groups=3, num_latents_train=2, seed=7)
        encoder(self.inputs)
        reference.randomize_weights(encoder)
        self.assertEqual(tuple(encoder(self.inputs, training=True).shape), (6, 2, 8))
        # Inference: all latents, in order.
        self.assertEqual(tuple(encoder(self.inputs).shape), (6, 6, 8))
        self.assertEqual(self._selected_indices(encoder, 2, False).tolist(), [list(range(6))] * 6)
        draws = np.stack([self._selected_indices(encoder, 50, True) for _ in range(4)])  # (4, 150, 2)
        rows = draws.reshape(-1, 2)
        self.assertTrue(np.all(rows[:, 0] != rows[:, 1]))  # without replacement
        # Uniform over the 6 latents of each group: every latent ~ 1/6 of 1200 draws.
        counts = np.bincount(rows.ravel(), minlength=6)
        self.assertTrue(np.all(np.abs(counts - 200) < 60), msg=f"{counts}")
        # Permuted order: the pair is not always sorted.
        ascending = np.mean(rows[:, 0] < rows[:, 1])
        self.assertTrue(0.35 < ascending < 0.65, msg=f"{ascending}")
        # Each example and group has its own subset: draws differ between groups and examples.
        per_row = {tuple(row) for row in draws[0]}
        self.assertGreater(len(per_row), 15)
        groups_same = np.all(draws[0].reshape(50, 3, 2) == draws[0].reshape(50, 3, 2)[:, :1], axis=(1, 2))
        self.assertLess(groups_same.mean(), 0.2)

    def test_subsets_are_reproducible_with_a_seed(self):
        def draws(seed):
            encoder = CrossAttentionEncoder(**HIP_KWARGS, num_groups=3, num_latents_train=3, seed=seed)
            encoder(self.inputs)
            return [self._selected_indices(encoder, 4, True) for _ in range(2)]

        first, second = draws(11), draws(11)
        self.assertAllClose(first, second)
        self.assertFalse(np.array_equal(first[0], first[1]))  # the generator advances
        self.assertFalse(np.array_equal(first[0], draws(12)[0]))

    def test_hip_errors_name_expected_and_received_values(self):
        with self.assertRaisesRegex(ValueError, r"num_latents_train=7, num_latents=6"):
            CrossAttentionEncoder(**HIP_KWARGS, num_latents_train=7)
        encoder = CrossAttentionEncoder(**HIP_KWARGS, num_groups=4)
        with self.assertRaisesRegex(ValueError, r"multiple of 4\. Received: inputs\.shape=\(6, 5, 4\)"):
            encoder(self.inputs)
        encoder = CrossAttentionEncoder(**HIP_KWARGS, num_groups=3)
        encoder(self.inputs, skip=np.zeros((6, 6, 8), "float32"))
        with self.assertRaisesRegex(ValueError, r"\(6, 6, C_skip\).*Received: skip\.shape=\(6, 5, 8\)"):
            encoder(self.inputs, skip=np.zeros((6, 5, 8), "float32"))
        with self.assertRaisesRegex(ValueError, r"`skip` has 5 channels but the latents 8.*skip_projection"):
            encoder(self.inputs, skip=np.zeros((6, 6, 5), "float32"))
