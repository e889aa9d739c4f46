"""Arguments shared by every layer made of Perceiver attention blocks."""

import keras

from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.layers.mlp_block import ACTIVATIONS
from keras_perceiver.validation import check_attention_chunk_size, check_choice, check_positive_int


class AttentionLayerBase(keras.layers.Layer):
    """Base of the attention blocks, `CrossAttentionEncoder`, `LatentProcessor` and `QueryDecoder`.

    Stores the arguments that every attention block of such a layer shares,
    serializes them in `get_config`, and hands them on to its blocks.

    Args:
        qk_channels: int or None, query/key width over all heads; None takes
            the reference default of the layer.
        v_channels: int or None, value width over all heads; None takes
            `qk_channels`.
        activation: `"gelu"` (exact, transformers; default),
            `"gelu_approximate"` (tanh, DeepMind) or `"squared_relu"`
            (`relu(x) ** 2`, HiP).
        dropout: float, dropout on the attention and MLP outputs. Defaults to 0.
        attention_dropout: float, dropout on the attention probabilities.
            Defaults to 0.
        layer_norm_epsilon: float. Defaults to 1e-5 (the reference's).
        kernel_initializer: initializer of all kernels. Defaults to a
            truncated normal with stddev 0.02 (the reference's
            `initializer_range`).
        attention_chunk_size: None (default: automatic), 0 (never) or int:
            attention computed in chunks of this many keys/queries, see
            `PerceiverMultiHeadAttention`.
    """

    def __init__(
        self,
        qk_channels=None,
        v_channels=None,
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        attention_chunk_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("qk_channels", qk_channels, allow_none=True)
        check_positive_int("v_channels", v_channels, allow_none=True)
        check_choice("activation", activation, ACTIVATIONS)
        check_attention_chunk_size(attention_chunk_size)
        self.qk_channels = qk_channels
        self.v_channels = v_channels
        self.activation = activation
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_kernel_initializer()
        )
        self.attention_chunk_size = attention_chunk_size

    def block_arguments(self):
        """Keyword arguments for an attention block of this layer (fresh initializer each call)."""
        return {
            "qk_channels": self.qk_channels,
            "v_channels": self.v_channels,
            "activation": self.activation,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "kernel_initializer": clone_initializer(self.kernel_initializer),
            "attention_chunk_size": self.attention_chunk_size,
            "dtype": self.dtype_policy,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "qk_channels": self.qk_channels,
                "v_channels": self.v_channels,
                "activation": self.activation,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "attention_chunk_size": self.attention_chunk_size,
            }
        )
        return config
