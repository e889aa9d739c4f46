"""Perceiver IO processor: a stack of latent self-attention layers, repeated with shared weights."""

import keras

from keras_perceiver.layers.attention_layer_base import AttentionLayerBase
from keras_perceiver.layers.drop_path import check_drop_path_rate
from keras_perceiver.layers.self_attention import SelfAttention
from keras_perceiver.validation import check_channels, check_numeric_dtype, check_positive_int, check_rank


@keras.saving.register_keras_serializable(package="keras_perceiver")
class LatentProcessor(AttentionLayerBase):
    """Refine latents (B, N, D) with `num_blocks` x `num_self_attends_per_block` self-attentions.

    The same `num_self_attends_per_block` layers are applied `num_blocks`
    times (weights shared across blocks), as in the reference.

    Source: Perceiver IO (arXiv 2107.14795) section 2 "process"; transformers
    `PerceiverEncoder.self_attends`; DeepMind `perceiver.py` `PerceiverEncoder`.

    Args:
        num_blocks: int, L repeats of the block (shared weights). Defaults to 1.
        num_self_attends_per_block: int, layers per block. Defaults to 6.
        num_self_attention_heads: int. Defaults to 8.
        qk_channels: int or None, query/key width over heads; None uses D.
        v_channels: int or None, value width over heads; must resolve to D.
        self_attention_widening_factor: int, MLP widening. Defaults to 1.
        activation: `"gelu"` (exact, default), `"gelu_approximate"` or
            `"squared_relu"` (HiP).
        dropout: float, dropout on attention and MLP outputs.
        attention_dropout: float, dropout on attention probabilities.
        layer_norm_epsilon: float. Defaults to 1e-5.
        kernel_initializer: kernels' initializer; truncated normal 0.02 by default.
        attention_chunk_size: None (default: chunked automatically above
            2^22 scores per head), 0 (never) or int: attention in chunks of
            this many keys/queries (`PerceiverMultiHeadAttention`).
        drop_path_rate: float in [0, 1), stochastic depth of every
            self-attention's residual branches at training time (the same
            rate in every layer, as HiP). Defaults to 0.
        drop_path_scale_by_keep: bool, rescale kept branches by
            1/(1 - drop_path_rate). Defaults to False (DeepMind's HiP).
        num_groups: int, G: the batch axis holds B x G rows (HiP's groups
            folded into the batch); drop-path draws are shared by an
            example's groups. Defaults to 1.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        latents: (B, N, D) tensor (or (B*G, N, D), see `num_groups`).
        training: bool, enables dropout.

    Returns:
        (B, N, D) latents.

    Raises:
        ValueError: for latents that are not rank 3 or whose width differs
            from the built one, or heads that do not divide the channels.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import LatentProcessor
    >>> processor = LatentProcessor(num_self_attends_per_block=2, num_self_attention_heads=4)
    >>> tuple(processor(keras.ops.ones((2, 8, 32))).shape)
    (2, 8, 32)
    """

    def __init__(
        self,
        num_blocks=1,
        num_self_attends_per_block=6,
        num_self_attention_heads=8,
        qk_channels=None,
        v_channels=None,
        self_attention_widening_factor=1,
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        attention_chunk_size=None,
        drop_path_rate=0.0,
        drop_path_scale_by_keep=False,
        num_groups=1,
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
        check_positive_int("num_blocks", num_blocks)
        check_positive_int("num_self_attends_per_block", num_self_attends_per_block)
        check_positive_int("num_self_attention_heads", num_self_attention_heads)
        check_drop_path_rate(drop_path_rate)
        check_positive_int("num_groups", num_groups)
        self.num_blocks = num_blocks
        self.num_self_attends_per_block = num_self_attends_per_block
        self.num_self_attention_heads = num_self_attention_heads
        self.self_attention_widening_factor = self_attention_widening_factor
        self.drop_path_rate = drop_path_rate
        self.drop_path_scale_by_keep = drop_path_scale_by_keep
        self.num_groups = num_groups
        self.self_attends = [
            SelfAttention(
                num_heads=num_self_attention_heads,
                widening_factor=self_attention_widening_factor,
                drop_path_rate=drop_path_rate,
                drop_path_scale_by_keep=drop_path_scale_by_keep,
                num_groups=num_groups,
                name=f"self_attention_{i}",
                **self.block_arguments(),
            )
            for i in range(num_self_attends_per_block)
        ]

    def build(self, latents_shape):
        self._channels = latents_shape[-1]
        for layer in self.self_attends:
            layer.build(latents_shape)
        self.built = True

    def call(self, latents, training=None):
        name = self.__class__.__name__
        check_rank("latents", latents, 3, name)
        check_channels("latents", latents, self._channels, name)
        check_numeric_dtype("latents", latents, name, floating=True)
        for _ in range(self.num_blocks):
            for layer in self.self_attends:
                latents = layer(latents, training=training)
        return latents

    def compute_output_shape(self, latents_shape):
        return latents_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_blocks": self.num_blocks,
                "num_self_attends_per_block": self.num_self_attends_per_block,
                "num_self_attention_heads": self.num_self_attention_heads,
                "self_attention_widening_factor": self.self_attention_widening_factor,
                "drop_path_rate": self.drop_path_rate,
                "drop_path_scale_by_keep": self.drop_path_scale_by_keep,
                "num_groups": self.num_groups,
            }
        )
        return config
