"""Perceiver IO decoder: output queries read the latents by cross-attention."""

import keras
from keras import ops

from keras_perceiver.layers.attention_layer_base import AttentionLayerBase
from keras_perceiver.layers.cross_attention import CrossAttention
from keras_perceiver.layers.initializers import clone_initializer
from keras_perceiver.validation import (
    check_channels,
    check_choice,
    check_mask,
    check_nonempty_index,
    check_numeric_dtype,
    check_positive_int,
    check_rank,
    check_same_batch,
)

QUERY_MASK_MODES = ("zero", "ignore")


@keras.saving.register_keras_serializable(package="keras_perceiver")
class QueryDecoder(AttentionLayerBase):
    """Decode latents (B, N, D) at output queries (B, O, E) into (B, O, E or output_channels).

    Each output query cross-attends to the latents (no query-to-query
    interaction), so the cost is linear in O and any subset of queries can be
    decoded on its own.

    Source: Perceiver IO (arXiv 2107.14795) section 2 "decode"; transformers
    `PerceiverBasicDecoder`; DeepMind `io_processors`/`perceiver.py`
    `BasicDecoder`.

    Args:
        num_cross_attention_heads: int. Defaults to 1.
        qk_channels: int or None, query/key width over heads; None uses the
            latent width D (`cross_attention_shape_for_attention="kv"`) or E.
        v_channels: int or None, value width over heads; defaults to
            `qk_channels`.
        cross_attention_widening_factor: int, MLP widening. Defaults to 1.
        use_query_residual: bool, add the queries to the attention output.
            Defaults to False (the reference decoder's default).
        output_channels: int or None, width of a final Dense projection; None
            returns the width E of the queries.
        query_mask_mode: `"zero"` (default, DeepMind): rows whose `query_mask`
            is False get zero attention and a zero output; `"ignore"`
            (transformers): the mask is not used.
        cross_attention_shape_for_attention: `"kv"` (default) or `"q"`.
        activation: `"gelu"` (exact, default), `"gelu_approximate"` or
            `"squared_relu"` (HiP).
        dropout: float, dropout on attention and MLP outputs. Defaults to 0.
        attention_dropout: float, dropout on attention probabilities.
            Defaults to 0.
        layer_norm_epsilon: float. Defaults to 1e-5.
        kernel_initializer: initializer of the kernels; defaults to a
            truncated normal with stddev 0.02.
        attention_chunk_size: None (default: chunked automatically above
            2^22 scores per head), 0 (never) or int: attention in chunks of
            this many keys/queries (`PerceiverMultiHeadAttention`).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        queries: (B, O, E) tensor.
        latents: (B, N, D) tensor.
        query_mask: optional (B, O) bool tensor, True for real queries.
        training: bool, enables dropout.

    Returns:
        (B, O, output_channels or E) tensor.

    Raises:
        ValueError: for queries or latents that are not rank 3, no queries
            (O = 0), channel counts other than the built ones, or a
            `query_mask` whose shape is not (B, O).

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import QueryDecoder
    >>> decoder = QueryDecoder(output_channels=10)
    >>> tuple(decoder(keras.ops.ones((2, 1, 16)), keras.ops.ones((2, 8, 32))).shape)
    (2, 1, 10)
    """

    def __init__(
        self,
        num_cross_attention_heads=1,
        qk_channels=None,
        v_channels=None,
        cross_attention_widening_factor=1,
        use_query_residual=False,
        output_channels=None,
        query_mask_mode="zero",
        cross_attention_shape_for_attention="kv",
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        attention_chunk_size=None,
        **kwargs,
    ):
        super().__init__(
            qk_channels=qk_channels,
            v_channels=v_channels,
            activation=activation,
            dropout=dropout,
            attention_dropout=attention_dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=kernel_initializer,
            attention_chunk_size=attention_chunk_size,
            **kwargs,
        )
        check_positive_int("output_channels", output_channels, allow_none=True)
        check_positive_int("num_cross_attention_heads", num_cross_attention_heads)
        check_choice("query_mask_mode", query_mask_mode, QUERY_MASK_MODES)
        self.num_cross_attention_heads = num_cross_attention_heads
        self.cross_attention_widening_factor = cross_attention_widening_factor
        self.use_query_residual = use_query_residual
        self.output_channels = output_channels
        self.query_mask_mode = query_mask_mode
        self.cross_attention_shape_for_attention = cross_attention_shape_for_attention
        self.cross_attention = CrossAttention(
            num_heads=num_cross_attention_heads,
            widening_factor=cross_attention_widening_factor,
            use_query_residual=use_query_residual,
            shape_for_attention=cross_attention_shape_for_attention,
            name="cross_attention",
            **self.block_arguments(),
        )
        self.output_projection = None
        if output_channels is not None:
            self.output_projection = keras.layers.Dense(
                output_channels,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name="output_projection",
            )

    def build(self, queries_shape, latents_shape):
        self._queries_channels = queries_shape[-1]
        self._latents_channels = latents_shape[-1]
        self.cross_attention.build(queries_shape, latents_shape)
        if self.output_projection is not None:
            self.output_projection.build(queries_shape)
        self.built = True

    def call(self, queries, latents, query_mask=None, training=None):
        name = self.__class__.__name__
        check_rank("queries", queries, 3, name)
        check_rank("latents", latents, 3, name)
        check_nonempty_index("queries", queries, name)
        check_channels("queries", queries, self._queries_channels, name)
        check_channels("latents", latents, self._latents_channels, name)
        check_numeric_dtype("queries", queries, name)
        check_numeric_dtype("latents", latents, name, floating=True)
        check_same_batch("queries", queries, "latents", latents, name)
        check_mask("query_mask", query_mask, queries, "queries", name)
        attention_mask = None
        if query_mask is not None and self.query_mask_mode == "zero":
            query_mask = ops.cast(query_mask, "bool")
            attention_mask = query_mask[:, :, None]
        outputs = self.cross_attention(
            queries, latents, attention_mask=attention_mask, training=training
        )
        if self.output_projection is not None:
            outputs = self.output_projection(outputs)
        if attention_mask is not None:
            outputs = outputs * ops.cast(attention_mask, outputs.dtype)
        return outputs

    def compute_output_shape(self, queries_shape, latents_shape):
        channels = self.output_channels or queries_shape[-1]
        return (queries_shape[0], queries_shape[1], channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_cross_attention_heads": self.num_cross_attention_heads,
                "cross_attention_widening_factor": self.cross_attention_widening_factor,
                "use_query_residual": self.use_query_residual,
                "output_channels": self.output_channels,
                "query_mask_mode": self.query_mask_mode,
                "cross_attention_shape_for_attention": self.cross_attention_shape_for_attention,
            }
        )
        return config
