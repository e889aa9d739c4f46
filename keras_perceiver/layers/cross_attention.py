"""Pre-norm cross-attention block: queries attend to a separate input array."""

import keras
from keras import ops

from keras_perceiver.layers.attention_block import AttentionBlock
from keras_perceiver.validation import (
    check_channels,
    check_choice,
    check_mask,
    check_nonempty_index,
    check_numeric_dtype,
    check_rank,
    check_same_batch,
)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class CrossAttention(AttentionBlock):
    """Cross-attention block: `LN(q)` attends to `LN(kv)`, then a residual MLP.

    `x = [query +] Dropout(Attention(LN_q(query), LN_kv(inputs)))`, then
    `x + MLP(LN(x))`. The output keeps the query width E.

    Source: Perceiver IO (arXiv 2107.14795) section 2 and appendix; transformers
    `modeling_perceiver.PerceiverLayer(is_cross_attention=True)`; DeepMind
    `perceiver.py` `CrossAttention`.

    Args:
        num_heads: int, attention heads. Defaults to 1.
        qk_channels: int or None, query/key width over all heads; None takes
            the input width C (`shape_for_attention="kv"`) or the query width
            E (`"q"`). Must be divisible by `num_heads`.
        v_channels: int or None, value width over all heads; None takes the
            resolved `qk_channels`. Must be divisible by `num_heads`.
        widening_factor: int, MLP hidden width = `widening_factor * E`.
            Defaults to 1.
        use_query_residual: bool, add the un-normalized query to the attention
            output. Defaults to True.
        shape_for_attention: `"kv"` (default) or `"q"`: which width a
            `qk_channels` of None takes (transformers
            `cross_attention_shape_for_attention`).
        activation: `"gelu"` (exact, transformers; default),
            `"gelu_approximate"` (tanh, DeepMind) or `"squared_relu"`
            (`relu(x) ** 2`, HiP).
        dropout: float, dropout on the attention and MLP outputs. Defaults to 0.
        attention_dropout: float, dropout on the attention probabilities.
            Defaults to 0.
        layer_norm_epsilon: float. Defaults to 1e-5 (the reference's).
        kernel_initializer: initializer of all kernels. Defaults to a
            truncated normal with stddev 0.02.
        bias_initializer: initializer of all biases. Defaults to zeros.
        attention_chunk_size: None (default: chunked automatically above
            2^22 scores per head), 0 (never) or int: attention in chunks of
            this many keys/queries (`PerceiverMultiHeadAttention`).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        query: (B, T, E) tensor.
        inputs: (B, S, C) tensor attended to.
        attention_mask: optional bool tensor broadcastable to (B, T, S), True
            where attention is allowed; rows with no allowed key give a zero
            attention output.
        padding_mask: optional (B, S) bool tensor, True for real inputs;
            combined with `attention_mask`.
        training: bool, enables dropout.

    Returns:
        (B, T, E) tensor.

    Raises:
        ValueError: on a query or input that is not rank 3, an empty index
            dimension, channel counts that differ from the built ones, or a
            `padding_mask` that is not (B, S).

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import CrossAttention
    >>> block = CrossAttention(num_heads=2, qk_channels=8)
    >>> tuple(block(keras.ops.ones((2, 4, 16)), keras.ops.ones((2, 10, 3))).shape)
    (2, 4, 16)
    """

    def __init__(
        self,
        num_heads=1,
        qk_channels=None,
        v_channels=None,
        widening_factor=1,
        use_query_residual=True,
        shape_for_attention="kv",
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        bias_initializer="zeros",
        attention_chunk_size=None,
        **kwargs,
    ):
        super().__init__(
            num_heads=num_heads,
            qk_channels=qk_channels,
            v_channels=v_channels,
            widening_factor=widening_factor,
            activation=activation,
            dropout=dropout,
            attention_dropout=attention_dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            attention_chunk_size=attention_chunk_size,
            **kwargs,
        )
        check_choice("shape_for_attention", shape_for_attention, ("kv", "q"))
        self.use_query_residual = use_query_residual
        self.shape_for_attention = shape_for_attention

    def build(self, query_shape, inputs_shape):
        self._query_channels = query_shape[-1]
        self._inputs_channels = inputs_shape[-1]
        qk = self.qk_channels
        if qk is None:
            qk = inputs_shape[-1] if self.shape_for_attention == "kv" else query_shape[-1]
        self.query_norm = self._layer_norm("query_norm")
        self.inputs_norm = self._layer_norm("inputs_norm")
        self.attention = self._attention(qk, output_channels=query_shape[-1])
        self.attention_output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.mlp = self._mlp()
        self.query_norm.build(query_shape)
        self.inputs_norm.build(inputs_shape)
        self.attention.build(query_shape, inputs_shape)
        self.mlp.build(query_shape)
        self.built = True

    def call(self, query, inputs, attention_mask=None, padding_mask=None, training=None):
        name = self.__class__.__name__
        check_rank("query", query, 3, name)
        check_rank("inputs", inputs, 3, name)
        check_nonempty_index("inputs", inputs, name)
        check_channels("query", query, self._query_channels, name)
        check_channels("inputs", inputs, self._inputs_channels, name)
        check_numeric_dtype("query", query, name, floating=self.use_query_residual)
        check_numeric_dtype("inputs", inputs, name)
        check_same_batch("query", query, "inputs", inputs, name)
        check_mask("padding_mask", padding_mask, inputs, "inputs", name)
        if padding_mask is not None:
            key_mask = ops.cast(padding_mask, "bool")[:, None, :]
            attention_mask = key_mask if attention_mask is None else ops.logical_and(
                ops.cast(attention_mask, "bool"), key_mask
            )
        attended = self.attention(
            self.query_norm(query),
            inputs,
            attention_mask=attention_mask,
            training=training,
            key_value_norm=self.inputs_norm,
        )
        x = self.attention_output_dropout(attended, training=training)
        if self.use_query_residual:
            x = query + x  # `+`: see MLPBlock.call
        return self.mlp(x, training=training)

    def compute_output_shape(self, query_shape, inputs_shape):
        return query_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "use_query_residual": self.use_query_residual,
                "shape_for_attention": self.shape_for_attention,
            }
        )
        return config
