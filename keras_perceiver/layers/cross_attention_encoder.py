"""Perceiver IO encoder: a learned latent array reads the inputs by cross-attention."""

import keras
from keras import ops

from keras_perceiver.layers.attention_layer_base import AttentionLayerBase
from keras_perceiver.layers.cross_attention import CrossAttention
from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.validation import (
    check_channels,
    check_mask,
    check_nonempty_index,
    check_positive_int,
    check_rank,
)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class CrossAttentionEncoder(AttentionLayerBase):
    """Encode inputs (B, M, C) into latents (B, N, D) with one cross-attention.

    Owns the learned latent array (N, D), broadcasts it over the batch and lets
    it attend to the inputs; padded inputs (`padding_mask` False) are never
    attended to, and an example whose inputs are all padded gets a zero
    attention output (DeepMind semantics) instead of NaN or a uniform mean.

    Source: Perceiver IO (arXiv 2107.14795) section 2 "encode"; transformers
    `PerceiverEmbeddings` + `PerceiverEncoder.cross_attention`.

    Args:
        num_latents: int, N, number of latent vectors.
        latent_dim: int, D, latent width.
        num_cross_attention_heads: int. Defaults to 1.
        qk_channels: int or None, query/key width over heads; None uses the
            input width C (`cross_attention_shape_for_attention="kv"`) or D
            (`"q"`).
        v_channels: int or None, value width over heads; defaults to
            `qk_channels`.
        cross_attention_widening_factor: int, MLP widening. Defaults to 1.
        use_query_residual: bool, add the latents to the attention output.
            Defaults to True.
        cross_attention_shape_for_attention: `"kv"` (default) or `"q"`.
        activation: `"gelu"` (exact, default) or `"gelu_approximate"`.
        dropout: float, dropout on attention and MLP outputs. Defaults to 0.
        attention_dropout: float, dropout on attention probabilities.
        layer_norm_epsilon: float. Defaults to 1e-5.
        kernel_initializer: initializer of the kernels; defaults to a
            truncated normal with stddev 0.02.
        latent_initializer: initializer of the latent array; defaults to a
            truncated normal with stddev 0.02.
        attention_chunk_size: None (default: chunked automatically above
            2^22 scores per head), 0 (never) or int: attention in chunks of
            this many keys/queries (`PerceiverMultiHeadAttention`).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: (B, M, C) float tensor.
        padding_mask: optional (B, M) bool tensor, True for real elements.
        training: bool, enables dropout.

    Returns:
        (B, N, D) latents.

    Raises:
        ValueError: for inputs that are not rank 3, an empty index dimension
            (M = 0), a channel count other than the built one, or a
            `padding_mask` whose shape is not (B, M).

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import CrossAttentionEncoder
    >>> encoder = CrossAttentionEncoder(num_latents=8, latent_dim=16)
    >>> tuple(encoder(keras.ops.ones((2, 50, 3))).shape)
    (2, 8, 16)
    """

    def __init__(
        self,
        num_latents,
        latent_dim,
        num_cross_attention_heads=1,
        qk_channels=None,
        v_channels=None,
        cross_attention_widening_factor=1,
        use_query_residual=True,
        cross_attention_shape_for_attention="kv",
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        attention_chunk_size=None,
        latent_initializer=None,
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
        check_positive_int("num_latents", num_latents)
        check_positive_int("latent_dim", latent_dim)
        self.num_latents = num_latents
        self.latent_dim = latent_dim
        self.num_cross_attention_heads = num_cross_attention_heads
        self.cross_attention_widening_factor = cross_attention_widening_factor
        self.use_query_residual = use_query_residual
        self.cross_attention_shape_for_attention = cross_attention_shape_for_attention
        self.latent_initializer = keras.initializers.get(
            latent_initializer or default_kernel_initializer()
        )
        # Validates heads/channels eagerly, at construction time.
        self.cross_attention = CrossAttention(
            num_heads=num_cross_attention_heads,
            widening_factor=cross_attention_widening_factor,
            use_query_residual=use_query_residual,
            shape_for_attention=cross_attention_shape_for_attention,
            name="cross_attention",
            **self.block_arguments(),
        )

    def build(self, inputs_shape):
        self._inputs_channels = inputs_shape[-1]
        self.latents = self.add_weight(
            name="latents",
            shape=(self.num_latents, self.latent_dim),
            initializer=clone_initializer(self.latent_initializer),
        )
        self.cross_attention.build((None, self.num_latents, self.latent_dim), inputs_shape)
        self.built = True

    def call(self, inputs, padding_mask=None, training=None):
        name = self.__class__.__name__
        check_rank("inputs", inputs, 3, name)
        check_nonempty_index("inputs", inputs, name)
        check_channels("inputs", inputs, self._inputs_channels, name)
        check_mask("padding_mask", padding_mask, inputs, "inputs", name)
        batch_size = ops.shape(inputs)[0]
        latents = ops.cast(self.latents, self.compute_dtype)
        latents = ops.broadcast_to(latents[None], (batch_size, self.num_latents, self.latent_dim))
        return self.cross_attention(latents, inputs, padding_mask=padding_mask, training=training)

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], self.num_latents, self.latent_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_latents": self.num_latents,
                "latent_dim": self.latent_dim,
                "num_cross_attention_heads": self.num_cross_attention_heads,
                "cross_attention_widening_factor": self.cross_attention_widening_factor,
                "use_query_residual": self.use_query_residual,
                "cross_attention_shape_for_attention": self.cross_attention_shape_for_attention,
                "latent_initializer": keras.initializers.serialize(self.latent_initializer),
            }
        )
        return config
