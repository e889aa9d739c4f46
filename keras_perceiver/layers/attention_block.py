"""Shared arguments of the Perceiver attention blocks (cross- and self-attention)."""

import keras

from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.layers.mlp_block import ACTIVATIONS, MLPBlock
from keras_perceiver.layers.multi_head_attention import PerceiverMultiHeadAttention
from keras_perceiver.validation import (
    check_choice,
    check_divisible,
    check_positive_int,
)


class AttentionBlock(keras.layers.Layer):
    """Base of `CrossAttention` and `SelfAttention`: holds their common arguments.

    Args:
        num_heads: int, attention heads. Defaults to 1.
        qk_channels: int or None, query/key width over all heads; None takes
            the reference default of the subclass.
        v_channels: int or None, value width over all heads; None takes
            `qk_channels`.
        widening_factor: int, MLP hidden width multiplier. Defaults to 1.
        activation: `"gelu"` (exact, transformers) or `"gelu_approximate"`
            (tanh, DeepMind).
        dropout: float, dropout on the attention and MLP outputs.
        attention_dropout: float, dropout on the attention probabilities.
        layer_norm_epsilon: float. Defaults to 1e-5 (the reference's).
        kernel_initializer: initializer of all kernels. Defaults to a
            truncated normal with stddev 0.02.
        bias_initializer: initializer of all biases. Defaults to zeros.
    """

    def __init__(
        self,
        num_heads=1,
        qk_channels=None,
        v_channels=None,
        widening_factor=1,
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_heads", num_heads)
        check_positive_int("qk_channels", qk_channels, allow_none=True)
        check_positive_int("v_channels", v_channels, allow_none=True)
        check_divisible("qk_channels", qk_channels, "num_heads", num_heads)
        check_divisible("v_channels", v_channels, "num_heads", num_heads)
        check_positive_int("widening_factor", widening_factor)
        check_choice("activation", activation, ACTIVATIONS)
        self.num_heads = num_heads
        self.qk_channels = qk_channels
        self.v_channels = v_channels
        self.widening_factor = widening_factor
        self.activation = activation
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_kernel_initializer()
        )
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
            dtype=self.dtype_policy,
            name="attention",
        )

    def _mlp(self):
        return MLPBlock(
            widening_factor=self.widening_factor,
            activation=self.activation,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="mlp",
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "qk_channels": self.qk_channels,
                "v_channels": self.v_channels,
                "widening_factor": self.widening_factor,
                "activation": self.activation,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
