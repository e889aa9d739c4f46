"""Pre-norm self-attention block over the latent array."""

import keras

from keras_perceiver.layers.attention_block import AttentionBlock
from keras_perceiver.layers.drop_path import DropPath, check_drop_path_rate
from keras_perceiver.validation import check_channels, check_numeric_dtype, check_positive_int, check_rank


@keras.saving.register_keras_serializable(package="keras_perceiver")
class SelfAttention(AttentionBlock):
    """Self-attention block: `x + Attention(LN(x))`, then `x + MLP(LN(x))`.

    With `drop_path_rate` > 0 both residual branches (after their dropout)
    go through stochastic depth at training time (`DropPath`: one draw per
    example and branch; HiP's `SelfAttention`):
    `x + DropPath(Dropout(Attention(LN(x))))`, then
    `x + DropPath(Dropout(MLP(LN(x))))`.

    When `qk_channels` is None it defaults to the latent width D and
    `v_channels` to `qk_channels`; the attention output has `v_channels`
    channels, which must equal D for the residual (as in the reference).

    Source: Perceiver IO (arXiv 2107.14795); transformers
    `modeling_perceiver.PerceiverLayer(is_cross_attention=False)`; DeepMind
    `perceiver.py` `SelfAttention`.

    Args:
        num_heads: int, attention heads. Defaults to 1.
        qk_channels: int or None, query/key width over all heads; None takes
            D. Must be divisible by `num_heads`.
        v_channels: int or None, value width over all heads; None takes the
            resolved `qk_channels`; must resolve to D.
        widening_factor: int, MLP hidden width = `widening_factor * D`.
            Defaults to 1.
        activation: `"gelu"` (exact, transformers; default),
            `"gelu_approximate"` (tanh, DeepMind) or `"squared_relu"` (HiP).
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
        drop_path_rate: float in [0, 1), stochastic depth of both residual
            branches at training time. Defaults to 0.
        drop_path_scale_by_keep: bool, rescale kept branches by
            1/(1 - drop_path_rate) (timm). Defaults to False (DeepMind's HiP).
        num_groups: int, G: the batch axis holds B x G rows, an example's G
            groups adjacent (HiP's groups folded into the batch,
            `fold_groups`); an example's drop-path draw is shared by its
            groups. Defaults to 1.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        x: (B, N, D) tensor (or (B*G, N, D), see `num_groups`).
        attention_mask: optional bool tensor broadcastable to (B, N, N).
        training: bool, enables dropout.

    Returns:
        (B, N, D) tensor.

    Raises:
        ValueError: if `x` is not rank 3, its width differs from the built
            one, or `v_channels` differs from D.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import SelfAttention
    >>> block = SelfAttention(num_heads=4)
    >>> tuple(block(keras.ops.ones((2, 8, 32))).shape)
    (2, 8, 32)
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
        attention_chunk_size=None,
        drop_path_rate=0.0,
        drop_path_scale_by_keep=False,
        num_groups=1,
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
        check_drop_path_rate(drop_path_rate)
        check_positive_int("num_groups", num_groups)
        self.drop_path_rate = drop_path_rate
        self.drop_path_scale_by_keep = drop_path_scale_by_keep
        self.num_groups = num_groups

    def build(self, x_shape):
        channels = x_shape[-1]
        qk = self.qk_channels if self.qk_channels is not None else channels
        v = self.v_channels if self.v_channels is not None else qk
        if v != channels:
            raise ValueError(
                f"SelfAttention: the value width must equal the latent width for the residual. "
                f"Expected v_channels={channels} (or qk_channels={channels} with v_channels=None). "
                f"Received: qk_channels={self.qk_channels}, v_channels={self.v_channels}"
            )
        self._channels = channels
        self.layer_norm = self._layer_norm("layer_norm")
        self.attention = self._attention(qk, output_channels=v)
        self.attention_output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.attention_drop_path = None
        if self.drop_path_rate > 0:
            self.attention_drop_path = DropPath(
                self.drop_path_rate,
                scale_by_keep=self.drop_path_scale_by_keep,
                num_groups=self.num_groups,
                dtype=self.dtype_policy,
                name="attention_drop_path",
            )
        self.mlp = self._mlp(
            drop_path_rate=self.drop_path_rate,
            drop_path_scale_by_keep=self.drop_path_scale_by_keep,
            num_groups=self.num_groups,
        )
        self.layer_norm.build(x_shape)
        self.attention.build(x_shape, x_shape)
        self.mlp.build(x_shape)
        self.built = True

    def call(self, x, attention_mask=None, training=None):
        name = self.__class__.__name__
        check_rank("x", x, 3, name)
        check_channels("x", x, self._channels, name)
        check_numeric_dtype("x", x, name, floating=True)
        normed = self.layer_norm(x)
        attended = self.attention(normed, normed, attention_mask=attention_mask, training=training)
        attended = self.attention_output_dropout(attended, training=training)
        if self.attention_drop_path is not None:
            attended = self.attention_drop_path(attended, training=training)
        return self.mlp(x + attended, training=training)  # `+`: see MLPBlock.call

    def compute_output_shape(self, x_shape):
        return x_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "drop_path_rate": self.drop_path_rate,
                "drop_path_scale_by_keep": self.drop_path_scale_by_keep,
                "num_groups": self.num_groups,
            }
        )
        return config
