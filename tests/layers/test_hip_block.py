import keras
import numpy as np

from keras_perceiver.layers.hip_block import HiPBlock
from tests.layers import reference
from tests.test_case import TestCase

KWARGS = {
    "num_groups": 2,
    "num_latents": 3,
    "latent_dim": 8,
    "num_self_attends_per_block": 1,
    "num_self_attention_heads": 2,
}


class HiPBlockTest(TestCase):
    def setUp(self):
        super().setUp()
        # B=2, 4 groups of 5 inputs of width 6.
        self.inputs = np.random.default_rng(0).normal(size=(2, 4, 5, 6)).astype("float32")

    def test_layer_basics(self):
        skip = np.random.default_rng(1).normal(size=(2, 2, 3, 4)).astype("float32")
        self.run_layer_test(
            HiPBlock,
            KWARGS,
            self.inputs,
            expected_output_shape=(2, 2, 3, 8),
            expected_num_trainable_weights=(1 + 18 + 2) + 16,
            call_kwargs={"skip": skip},
        )

    def test_matches_a_reference_of_regroup_fold_encode_process(self):
        block = HiPBlock(**KWARGS)
        skip = np.random.default_rng(1).normal(size=(2, 2, 3, 8)).astype("float32")
        block(self.inputs, skip=skip)
        reference.randomize_weights(block, scale=0.3)
        regrouped = self.inputs.reshape(2, 2, 10, 6)  # "reshape": groups 0-1 and 2-3 merge
        latents = block.encoder.latents.numpy().reshape(2, 3, 8)
        expected = np.zeros((2, 2, 3, 8))
        for b in range(2):
            for g in range(2):
                z = reference.cross_attention(
                    block.encoder.cross_attention, (latents[g] + skip[b, g])[None], regrouped[b, g][None]
                )
                expected[b, g] = reference.self_attention(block.processor.self_attends[0], z)[0]
        self.assertAllClose(block(self.inputs, skip=skip), expected, atol=1e-5, rtol=1e-5)
        self.assertEqual(block.encoder.cross_attention.mlp.activation, "squared_relu")

    def test_groups_never_interact(self):
        block = HiPBlock(**KWARGS)
        out = block(self.inputs).numpy()
        changed = self.inputs.copy()
        changed[:, 2:] = 0.0  # the inputs of output group 1 only
        out_changed = block(changed).numpy()
        self.assertAllClose(out_changed[:, 0], out[:, 0], atol=1e-6)
        self.assertFalse(np.allclose(out_changed[:, 1], out[:, 1], atol=1e-4))

    def test_padding_mask_follows_the_regrouping(self):
        block = HiPBlock(**KWARGS)
        mask = np.ones((2, 4, 5), bool)
        mask[:, 3, 2:] = False
        out = block(self.inputs, padding_mask=mask).numpy()
        changed = self.inputs.copy()
        changed[:, 3, 2:] = 100.0
        self.assertAllClose(block(changed, padding_mask=mask), out, atol=1e-5)

    def test_without_regrouping_and_without_self_attention(self):
        block = HiPBlock(**{**KWARGS, "num_groups": 4, "num_self_attends_per_block": 0}, regroup_inputs=False)
        self.assertEqual(tuple(block(self.inputs).shape), (2, 4, 3, 8))
        self.assertIsNone(block.processor)
        with self.assertRaisesRegex(
            ValueError, r"num_groups=2 groups\. Received: inputs\.shape=\(2, 4, 5, 6\)"
        ):
            HiPBlock(**KWARGS, regroup_inputs=False)(self.inputs)

    def test_training_subsets_dropout_and_drop_path(self):
        block = HiPBlock(**KWARGS, num_latents_train=2, dropout=0.1, drop_path_rate=0.2, seed=3)
        self.assertEqual(tuple(block(self.inputs, training=True).shape), (2, 2, 2, 8))
        self.assertEqual(tuple(block(self.inputs).shape), (2, 2, 3, 8))
        self.assertAllClose(block(self.inputs), block(self.inputs, training=False))
        attention = block.processor.self_attends[0]
        self.assertEqual((attention.drop_path_rate, attention.num_groups, attention.dropout), (0.2, 2, 0.1))
        self.assertEqual(block.encoder.dropout, 0.0)  # the cross-attention has none (official)

    def test_kernel_init_is_variance_scaling_fan_in(self):
        block = HiPBlock(num_groups=1, num_latents=64, latent_dim=256, num_self_attention_heads=8)
        block(np.zeros((1, 1, 4, 128), "float32"))
        attention = block.processor.self_attends[0].attention
        self.assertAllClose(attention.query_dense.kernel.numpy().std(), np.sqrt(1 / 256), atol=2e-3)
        self.assertAllClose(block.encoder.latents.numpy().std(), np.sqrt(1 / 64), atol=5e-3)

    def test_functional_graph(self):
        inputs = keras.Input((4, 5, 6))
        skip = keras.Input((2, 3, 8))
        out = HiPBlock(**KWARGS)(inputs, skip=skip)
        self.assertEqual(tuple(out.shape), (None, 2, 3, 8))

    def test_errors_name_expected_and_received_values(self):
        with self.assertRaisesRegex(ValueError, r"latent_dim=8, num_self_attention_heads=3"):
            HiPBlock(**{**KWARGS, "num_self_attention_heads": 3})
        with self.assertRaisesRegex(ValueError, r"G=4, N=5, num_groups=3"):
            HiPBlock(**{**KWARGS, "num_groups": 3})(self.inputs)
        with self.assertRaisesRegex(ValueError, r"`inputs` must have rank 4"):
            HiPBlock(**KWARGS)(self.inputs[0])
        block = HiPBlock(**KWARGS)
        with self.assertRaisesRegex(ValueError, r"`skip` must have num_groups=2 groups"):
            block(self.inputs, skip=np.zeros((2, 3, 3, 8), "float32"))
