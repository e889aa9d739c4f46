import numpy as np

from keras_perceiver.layers.latent_processor import LatentProcessor
from tests.layers import reference
from tests.test_case import TestCase

KWARGS = {"num_blocks": 1, "num_self_attends_per_block": 2, "num_self_attention_heads": 2}


class LatentProcessorTest(TestCase):
    def setUp(self):
        super().setUp()
        self.latents = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")

    def test_layer_basics(self):
        self.run_layer_test(
            LatentProcessor,
            {**KWARGS, "num_blocks": 2},
            self.latents,
            expected_output_shape=(2, 4, 8),
            expected_num_trainable_weights=2 * 16,
        )

    def test_matches_reference(self):
        layer = LatentProcessor(**KWARGS)
        layer(self.latents)
        reference.randomize_weights(layer, scale=0.2)
        expected = self.latents
        for block in layer.self_attends:
            expected = reference.self_attention(block, expected)
        self.assertAllClose(layer(self.latents), expected, atol=1e-5, rtol=1e-5)

    def test_blocks_share_weights(self):
        one = LatentProcessor(**KWARGS)
        two = LatentProcessor(**{**KWARGS, "num_blocks": 2})
        one_out = one(self.latents)
        two(self.latents)
        self.assertEqual(len(two.weights), len(one.weights))
        self.assertEqual(two.count_params(), one.count_params())
        reference.randomize_weights(one, scale=0.2)
        two.set_weights(one.get_weights())
        one_out = one(self.latents)
        two_out = two(self.latents)
        self.assertFalse(np.allclose(one_out, two_out, atol=1e-3))
        # Two blocks = the same block applied twice.
        self.assertAllClose(two_out, one(one_out), atol=1e-5)

    def test_config_values_reach_the_sublayers(self):
        layer = LatentProcessor(
            num_blocks=3,
            num_self_attends_per_block=3,
            num_self_attention_heads=4,
            qk_channels=4,
            v_channels=8,
            self_attention_widening_factor=3,
            activation="gelu_approximate",
            layer_norm_epsilon=1e-4,
        )
        layer(self.latents)
        self.assertLen(layer.self_attends, 3)
        for block in layer.self_attends:
            self.assertEqual(tuple(block.attention.query_dense.kernel.shape), (8, 4, 1))
            self.assertEqual(tuple(block.attention.value_dense.kernel.shape), (8, 4, 2))
            self.assertEqual(tuple(block.mlp.dense_1.kernel.shape), (8, 24))
            self.assertEqual(block.mlp.activation, "gelu_approximate")
            self.assertEqual(block.layer_norm.epsilon, 1e-4)
        self.assertEqual(layer.num_blocks, 3)

    def test_mixed_precision_after_many_layers(self):
        self.run_mixed_precision_test(LatentProcessor, {**KWARGS, "num_blocks": 3}, self.latents)

    def test_errors_name_expected_and_received_values(self):
        layer = LatentProcessor(**KWARGS)
        layer(self.latents)
        with self.assertRaisesRegex(
            ValueError, r"`latents` must have rank 3\. Received: latents\.shape=\(4, 8\)"
        ):
            layer(self.latents[0])
        with self.assertRaisesRegex(ValueError, r"`latents` has 6 channels but the layer was built for 8"):
            layer(np.ones((2, 4, 6), "float32"))
        with self.assertRaisesRegex(ValueError, r"num_blocks=0"):
            LatentProcessor(num_blocks=0)
        with self.assertRaisesRegex(ValueError, r"num_self_attends_per_block=-1"):
            LatentProcessor(num_self_attends_per_block=-1)
        with self.assertRaisesRegex(ValueError, r"qk_channels=6, num_heads=4"):
            LatentProcessor(num_self_attention_heads=4, qk_channels=6)
        with self.assertRaisesRegex(ValueError, r"Expected v_channels=8.*v_channels=4"):
            LatentProcessor(num_self_attention_heads=2, v_channels=4)(self.latents)

    def test_hip_options_reach_every_self_attention(self):
        layer = LatentProcessor(
            **KWARGS,
            activation="squared_relu",
            drop_path_rate=0.2,
            drop_path_scale_by_keep=True,
            num_groups=2,
        )
        layer(self.latents)
        for block in layer.self_attends:
            self.assertEqual(block.mlp.activation, "squared_relu")
            self.assertEqual(block.drop_path_rate, 0.2)
            self.assertTrue(block.drop_path_scale_by_keep)
            self.assertEqual(block.num_groups, 2)
            self.assertEqual(block.attention_drop_path.num_groups, 2)
        self.assertAllClose(layer(self.latents, training=False), layer(self.latents))
        restored = self.run_config_round_trip(layer)
        self.assertEqual(restored.drop_path_rate, 0.2)
        # Defaults: no drop path layers.
        plain = LatentProcessor(**KWARGS)
        plain(self.latents)
        self.assertIsNone(plain.self_attends[0].attention_drop_path)
