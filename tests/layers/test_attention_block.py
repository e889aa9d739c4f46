import keras

from keras_perceiver.layers.attention_block import AttentionBlock
from keras_perceiver.layers.cross_attention import CrossAttention
from keras_perceiver.layers.self_attention import SelfAttention
from tests.test_case import TestCase

ARGUMENTS = {
    "num_heads": 2,
    "qk_channels": 4,
    "v_channels": 6,
    "widening_factor": 3,
    "activation": "gelu_approximate",
    "dropout": 0.1,
    "attention_dropout": 0.2,
    "layer_norm_epsilon": 1e-6,
}


class AttentionBlockTest(TestCase):
    def test_arguments_are_stored_and_in_the_config(self):
        for cls in (AttentionBlock, CrossAttention, SelfAttention):
            block = cls(**ARGUMENTS)
            config = block.get_config()
            for key, value in ARGUMENTS.items():
                self.assertEqual(getattr(block, key), value, msg=f"{cls.__name__}.{key}")
                self.assertEqual(config[key], value, msg=f"{cls.__name__} config {key}")
            self.assertEqual(config["kernel_initializer"]["class_name"], "TruncatedNormal")
            self.assertEqual(config["bias_initializer"]["class_name"], "Zeros")

    def test_sublayers_use_the_arguments(self):
        block = CrossAttention(**ARGUMENTS, bias_initializer="ones")
        block(keras.ops.ones((1, 3, 8)), keras.ops.ones((1, 5, 2)))
        self.assertEqual(block.attention.num_heads, 2)
        self.assertEqual(block.attention.attention_dropout, 0.2)
        self.assertEqual(block.mlp.widening_factor, 3)
        self.assertEqual(block.mlp.activation, "gelu_approximate")
        self.assertEqual(block.mlp.dropout, 0.1)
        self.assertEqual(block.query_norm.epsilon, 1e-6)
        self.assertEqual(float(block.attention.query_dense.bias.numpy().min()), 1.0)
        self.assertEqual(float(block.mlp.dense_2.bias.numpy().min()), 1.0)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, r"num_heads=0"):
            AttentionBlock(num_heads=0)
        with self.assertRaisesRegex(ValueError, r"qk_channels=-8"):
            AttentionBlock(qk_channels=-8)
        with self.assertRaisesRegex(ValueError, r"v_channels=5, num_heads=2"):
            AttentionBlock(num_heads=2, v_channels=5)
        with self.assertRaisesRegex(ValueError, r"widening_factor=0"):
            AttentionBlock(widening_factor=0)
        with self.assertRaisesRegex(ValueError, r"activation.*Received: activation='swish'"):
            AttentionBlock(activation="swish")
