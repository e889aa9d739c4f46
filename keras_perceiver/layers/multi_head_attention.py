"""Multi-head attention core of the Perceiver: projections, masked softmax, output projection."""

import math

import keras
from keras import ops

from keras_perceiver.layers import attention_maps
from keras_perceiver.layers.attention_dispatch import attention
from keras_perceiver.layers.dense_matmul import dense_matmul
from keras_perceiver.layers.initializers import clone_initializer, fused_shape_initializer
from keras_perceiver.validation import (
    check_attention_chunk_size,
    check_channels,
    check_divisible,
    check_numeric_dtype,
    check_positive_int,
    check_rank,
    check_same_batch,
    static_shape,
)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverMultiHeadAttention(keras.layers.Layer):
    """Multi-head dot-product attention with Perceiver channel conventions.

    Query and key are projected to `qk_channels` and value to `v_channels`
    (totals over all heads, each split evenly), scores are scaled by
    `1 / sqrt(qk_channels / num_heads)`, softmax runs in float32 whatever the
    compute dtype, and the concatenated heads are projected to
    `output_channels`. Query/key/value/output projections are `EinsumDense`
    layers with per-head kernels `[in, heads, head_dim]` and
    `[heads, head_dim, out]`, the layout of `keras.layers.MultiHeadAttention`.
    They stand for the Linear layers [in, heads*head_dim] and
    [heads*head_dim, out] of the references: a `VarianceScaling`
    initializer (Glorot, He, LeCun included) computes its fans on those
    fused 2-D shapes (`FusedShapeInitializer`), as Haiku and torch do.

    Masking follows DeepMind's `attend` (perceiver/perceiver.py): masked
    positions get a large negative score and rows whose keys are all masked
    (fully padded inputs or fully masked queries) return zeros instead of a
    uniform average. No layer normalization or residual here: see
    `CrossAttention` and `SelfAttention`.

    Source: Perceiver IO (arXiv 2107.14795) appendix; transformers
    `modeling_perceiver.PerceiverSelfAttention` / `PerceiverSelfOutput`.

    Args:
        num_heads: int, number of attention heads.
        qk_channels: int, total query/key width over all heads. Must be
            divisible by `num_heads`.
        v_channels: int or None, total value width over all heads. Defaults
            to `qk_channels`. Must be divisible by `num_heads`.
        output_channels: int, width of the output projection.
        attention_dropout: float in [0, 1), dropout on the attention
            probabilities. Defaults to 0.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        attention_chunk_size: None, 0 or int. None (default): attention over
            T x S > 2^22 scores per head (statically known sizes) runs in
            chunks of the longer axis, so that (B, H, T, S) is never
            materialized; 0: never chunk; an int: chunk the keys when S may
            exceed it (online softmax) and the queries when T may exceed it.
            Chunked results equal the whole attention to float32 round-off
            (`chunked_attention`). Training keeps the chunks, and its
            backward pass recomputes them: over key chunks with their
            keys and values (`recomputed_projection_attention`), over query
            chunks (`recomputed_attention`); except with
            `attention_dropout`, which computes the whole attention.
            Without chunks, the backend's fused kernel where it has one
            (`fused_attention`: JAX on a GPU).

    Call arguments:
        query: (B, T, E) tensor.
        key_value: (B, S, C) tensor attended to.
        attention_mask: optional bool tensor broadcastable to (B, T, S),
            True where attention is allowed, e.g. (B, 1, S) for key padding
            or (B, T, 1) for masked queries.
        training: bool, enables dropout.
        key_value_norm: optional layer applied to `key_value` before its
            projections (the cross-attention's input LayerNorm); inside the
            loop when the keys are chunked, so that neither the normalized
            inputs nor their keys and values exist for all S at once.

    Returns:
        (B, T, output_channels) tensor.

    Raises:
        ValueError: if a channel total is not a positive multiple of
            `num_heads`.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import PerceiverMultiHeadAttention
    >>> layer = PerceiverMultiHeadAttention(num_heads=2, qk_channels=8, output_channels=16)
    >>> tuple(layer(keras.ops.ones((1, 3, 16)), keras.ops.ones((1, 5, 4))).shape)
    (1, 3, 16)
    """

    def __init__(
        self,
        num_heads,
        qk_channels,
        output_channels,
        v_channels=None,
        attention_dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        attention_chunk_size=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_heads", num_heads)
        check_attention_chunk_size(attention_chunk_size)
        check_positive_int("qk_channels", qk_channels)
        check_positive_int("v_channels", v_channels, allow_none=True)
        check_positive_int("output_channels", output_channels)
        check_divisible("qk_channels", qk_channels, "num_heads", num_heads)
        check_divisible("v_channels", v_channels, "num_heads", num_heads)
        self.num_heads = num_heads
        self.qk_channels = qk_channels
        self.v_channels = v_channels
        self.output_channels = output_channels
        self.attention_dropout = attention_dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.attention_chunk_size = attention_chunk_size
        self._v = v_channels if v_channels is not None else qk_channels
        self.supports_masking = False

    def _dense(self, equation, output_shape, bias_axes, name, num_input_axes=1):
        return keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes,
            kernel_initializer=fused_shape_initializer(
                clone_initializer(self.kernel_initializer), num_input_axes
            ),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, key_value_shape):
        h = self.num_heads
        qk_head, v_head = self.qk_channels // h, self._v // h
        self.query_dense = self._dense("btc,chd->bthd", (None, h, qk_head), "hd", "query")
        self.key_dense = self._dense("bsc,chd->bshd", (None, h, qk_head), "hd", "key")
        self.value_dense = self._dense("bsc,chd->bshd", (None, h, v_head), "hd", "value")
        self.output_dense = self._dense(
            "bthd,hdo->bto", (None, self.output_channels), "o", "attention_output", num_input_axes=2
        )
        self._query_channels, self._key_value_channels = query_shape[-1], key_value_shape[-1]
        self.query_dense.build(query_shape)
        self.key_dense.build(key_value_shape)
        self.value_dense.build(key_value_shape)
        self.output_dense.build((query_shape[0], query_shape[1], h, v_head))
        self.dropout_layer = keras.layers.Dropout(
            self.attention_dropout, dtype=self.dtype_policy, name="attention_dropout"
        )
        self._scale = 1.0 / math.sqrt(qk_head)
        self.built = True

    def _check(self, query, key_value, attention_mask):
        name = self.__class__.__name__
        for arg, x, channels in (
            ("query", query, self._query_channels),
            ("key_value", key_value, self._key_value_channels),
        ):
            check_numeric_dtype(arg, x, name)
            check_rank(arg, x, 3, name)
            check_channels(arg, x, channels, name)
        check_same_batch("key_value", key_value, "query", query, name)
        if attention_mask is None:
            return
        check_numeric_dtype("attention_mask", attention_mask, name)
        shape = static_shape(attention_mask)
        expected = (query.shape[0], query.shape[1], key_value.shape[1])
        if len(shape) != 3 or any(
            a not in (None, 1) and b is not None and a != b for a, b in zip(shape, expected)
        ):
            raise ValueError(
                f"{name}: `attention_mask` must be broadcastable to (B, T, S) = {expected}. "
                f"Received: attention_mask.shape={shape}"
            )

    def call(self, query, key_value, attention_mask=None, training=None, key_value_norm=None):
        self._check(query, key_value, attention_mask)
        # Projections as plain 2-D matmuls (see `dense_matmul`): q/k/v (B, T, H, d), output (B, T, E).
        q = dense_matmul(self.query_dense, query, 1) * ops.cast(self._scale, self.compute_dtype)

        def project_key_value(inputs):
            if key_value_norm is not None:
                inputs = key_value_norm(inputs)
            return dense_matmul(self.key_dense, inputs, 1), dense_matmul(self.value_dense, inputs, 1)

        mask = None if attention_mask is None else ops.cast(attention_mask, "bool")
        if attention_maps.is_recording():  # opt-in (`record_attention_maps`); not on the attention's path
            kind = "self" if query is key_value else "cross"
            attention_maps.record(self, kind, q, project_key_value(key_value)[0], mask)
        dropout = None
        if training and self.attention_dropout > 0:
            dropout = lambda probs: self.dropout_layer(probs, training=training)  # noqa: E731
        context = attention(
            q,
            key_value,
            project_key_value,
            mask,
            dropout=dropout,
            attention_chunk_size=self.attention_chunk_size,
            value_width=self._v // self.num_heads,
            training=training,
            variables=self.key_dense.variables
            + self.value_dense.variables
            + (key_value_norm.variables if key_value_norm is not None else []),
        )
        if attention_mask is not None:
            # DeepMind `attend`: a row with every key masked gives zeros, not a uniform mean.
            any_key = ops.any(mask, axis=-1, keepdims=True)
            context = context * ops.cast(any_key[..., None], context.dtype)
        return dense_matmul(self.output_dense, context, 2)

    def compute_output_shape(self, query_shape, key_value_shape):
        return (query_shape[0], query_shape[1], self.output_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "qk_channels": self.qk_channels,
                "output_channels": self.output_channels,
                "v_channels": self.v_channels,
                "attention_dropout": self.attention_dropout,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "attention_chunk_size": self.attention_chunk_size,
            }
        )
        return config
