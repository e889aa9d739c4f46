"""Shared arguments of the Perceiver attention blocks (cross- and self-attention)."""

import keras

from keras_perceiver.layers.attention_layer_base import AttentionLayerBase
from keras_perceiver.layers.initializers import clone_initializer
from keras_perceiver.layers.mlp_block import MLPBlock
from keras_perceiver.layers.multi_head_attention import PerceiverMultiHeadAttention
from keras_perceiver.validation import check_divisible, check_positive_int


class AttentionBlock(AttentionLayerBase):
    """Base of `CrossAttention` and `SelfAttention`: attention + MLP arguments.

    Args:
        num_heads: int, attention heads. Defaults to 1.
        widening_factor: int, MLP hidden width multiplier. Defaults to 1.
        bias_initializer: initializer of all biases. Defaults to zeros.
        **kwargs: `qk_channels`, `v_channels`, `activation`, `dropout`,
            `attention_dropout`, `layer_norm_epsilon`, `kernel_initializer`
            (see `AttentionLayerBase`) and base layer arguments.
    """

    def __init__(self, num_heads=1, widening_factor=1, bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_heads", num_heads)
        check_divisible("qk_channels", self.qk_channels, "num_heads", num_heads)
        check_divisible("v_channels", self.v_channels, "num_heads", num_heads)
        check_positive_int("widening_factor", widening_factor)
        self.num_heads = num_heads
        self.widening_factor = widening_factor
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _layer_norm(self, name):
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def _attention(self, qk_channels, output_channels):
        v_channels = self.v_channels if self.v_channels is not None else qk_channels
        check_divisible("qk_channels", qk_channels, "num_heads", self.num_heads)
        check_divisible("v_channels", v_channels, "num_heads", self.num_heads)
        return PerceiverMultiHeadAttention(
            num_heads=self.num_heads,
            qk_channels=qk_channels,
            v_channels=v_channels,
            output_channels=output_channels,
            attention_dropout=self.attention_dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            attention_chunk_size=self.attention_chunk_size,
            dtype=self.dtype_policy,
            name="attention",
        )

    def _mlp(self, **options):
        """The block's `MLPBlock`; `options` are further `MLPBlock` arguments (e.g. drop path)."""
        return MLPBlock(
            widening_factor=self.widening_factor,
            activation=self.activation,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="mlp",
            **options,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "widening_factor": self.widening_factor,
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
