"""One HiP block: regroup -> per-group cross-attention from own latents (+ U-Net skip) -> self-attention."""

import keras

from keras_perceiver.layers.cross_attention_encoder import CrossAttentionEncoder
from keras_perceiver.layers.drop_path import check_drop_path_rate
from keras_perceiver.layers.initializers import clone_initializer
from keras_perceiver.layers.latent_processor import LatentProcessor
from keras_perceiver.layers.modality_embedder import hip_initializer
from keras_perceiver.layers.regroup import REGROUP_TYPES, check_regroup, fold_groups, regroup, unfold_groups
from keras_perceiver.validation import (
    check_channels,
    check_choice,
    check_divisible,
    check_mask,
    check_numeric_dtype,
    check_positive_int,
    check_rank,
)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class HiPBlock(keras.layers.Layer):
    """A HiP block: grouped inputs (B, G_in, M, C) -> grouped latents (B, G, N, D).

    `regroup` the inputs into G groups (unless `regroup_inputs` is False),
    fold the groups into the batch (B*G, M', C), let each group's own N
    latents cross-attend to its inputs (`CrossAttentionEncoder` with
    `num_groups=G`: one head by default, the attention widths those of the
    inputs, C; the query residual on; an optional U-Net `skip` added to the
    latent queries first, projected when its width differs from D), refine
    them with `num_self_attends_per_block` self-attention layers
    (`LatentProcessor`, with dropout and drop path), and unfold to
    (B, G, N, D). Groups never interact inside a block.

    As the official code: dropout and drop path act in the self-attention
    layers only; the cross-attention has none. Train-time latent subsets
    (`num_latents_train`) are drawn per example and group.

    Source: HiP (arXiv 2202.10890) section 3 and figure 2; official
    `perceiver_blocks.py` `PerceiverBlock`, `HiPCrossAttention`,
    `SelfAttention`.

    Args:
        num_groups: int, G, the block's groups.
        num_latents: int, N, latents per group (official `output_index_dim`,
            `z_index_dim`).
        latent_dim: int, D (official `num_z_channels`).
        num_self_attends_per_block: int, self-attention layers (0 for none).
            Defaults to 1.
        num_cross_attention_heads: int. Defaults to 1.
        num_self_attention_heads: int. Defaults to 8.
        cross_attention_widening_factor: int. Defaults to 1.
        self_attention_widening_factor: int. Defaults to 4.
        regroup_inputs: bool, regroup the inputs into G groups; when False
            the inputs must have G groups. Defaults to True.
        regroup_type: `"reshape"` (default) or `"transpose_reshape"`
            (`regroup`).
        num_latents_train: int or None, latents per group at training time
            (a random subset); None uses all N. Defaults to None.
        activation: MLP activation, `"squared_relu"` (HiP, default),
            `"gelu"` or `"gelu_approximate"`.
        dropout: float, dropout of the self-attention layers. Defaults to 0.
        drop_path_rate: float in [0, 1), stochastic depth of the
            self-attention layers (one draw per example, shared by its
            groups; no 1/keep rescaling). Defaults to 0.
        layer_norm_epsilon: float. Defaults to 1e-5.
        kernel_initializer: initializer of every kernel; defaults to HiP's
            `VarianceScaling(1.0, "fan_in", "truncated_normal")` (on the
            fused [in, heads*head_dim] shape for attention kernels).
        latent_initializer: initializer of the latents (G*N, D); defaults to
            the same VarianceScaling (fan_in G*N).
        attention_chunk_size: None, 0 or int (`PerceiverMultiHeadAttention`).
        seed: optional int, seed of the latent subsets' `SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: (B, G_in, M, C) tensor.
        skip: optional (B, G, N', C_skip) tensor (U-Net skip), N' the
            latents in use.
        padding_mask: optional (B, G_in, M) bool tensor, True for real
            inputs (regrouped with the inputs).
        training: bool, enables dropout, drop path and latent subsets.

    Returns:
        (B, G, N', D) tensor, N' = N (or `num_latents_train` in training).

    Raises:
        ValueError: for non-positive sizes, D not divisible by the heads,
            inputs that are not rank 4, G_in*M not divisible by G, G_in != G
            without regrouping, inputs whose C differs from the built one, a
            `padding_mask` that is not (B, G_in, M) of the inputs, or a `skip` of
            the wrong shape.
        TypeError: for inputs or a mask that are not numbers (e.g. strings).

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import HiPBlock
    >>> block = HiPBlock(num_groups=2, num_latents=4, latent_dim=16, num_self_attention_heads=2)
    >>> tuple(block(keras.ops.ones((3, 4, 5, 8))).shape)  # 4 groups of 5 -> 2 groups of 4 latents
    (3, 2, 4, 16)
    """

    def __init__(
        self,
        num_groups,
        num_latents,
        latent_dim,
        num_self_attends_per_block=1,
        num_cross_attention_heads=1,
        num_self_attention_heads=8,
        cross_attention_widening_factor=1,
        self_attention_widening_factor=4,
        regroup_inputs=True,
        regroup_type="reshape",
        num_latents_train=None,
        activation="squared_relu",
        dropout=0.0,
        drop_path_rate=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        latent_initializer=None,
        attention_chunk_size=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("num_groups", num_groups),
            ("num_latents", num_latents),
            ("latent_dim", latent_dim),
            ("num_cross_attention_heads", num_cross_attention_heads),
            ("num_self_attention_heads", num_self_attention_heads),
        ):
            check_positive_int(name, value)
        if num_self_attends_per_block != 0:
            check_positive_int("num_self_attends_per_block", num_self_attends_per_block)
        if isinstance(num_self_attends_per_block, bool):
            raise ValueError(
                "`num_self_attends_per_block` must be a non-negative integer. "
                f"Received: num_self_attends_per_block={num_self_attends_per_block!r}"
            )
        check_divisible("latent_dim", latent_dim, "num_self_attention_heads", num_self_attention_heads)
        check_divisible("latent_dim", latent_dim, "num_cross_attention_heads", num_cross_attention_heads)
        check_choice("regroup_type", regroup_type, REGROUP_TYPES)
        check_drop_path_rate(drop_path_rate)
        self.num_groups = num_groups
        self.num_latents = num_latents
        self.latent_dim = latent_dim
        self.num_self_attends_per_block = num_self_attends_per_block
        self.num_cross_attention_heads = num_cross_attention_heads
        self.num_self_attention_heads = num_self_attention_heads
        self.cross_attention_widening_factor = cross_attention_widening_factor
        self.self_attention_widening_factor = self_attention_widening_factor
        self.regroup_inputs = regroup_inputs
        self.regroup_type = regroup_type
        self.num_latents_train = num_latents_train
        self.activation = activation
        self.dropout = dropout
        self.drop_path_rate = drop_path_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer or hip_initializer())
        self.latent_initializer = keras.initializers.get(latent_initializer or hip_initializer())
        self.attention_chunk_size = attention_chunk_size
        self.seed = seed
        common = dict(
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            attention_chunk_size=attention_chunk_size,
            dtype=self.dtype_policy,
        )
        self.encoder = CrossAttentionEncoder(
            num_latents=num_latents,
            latent_dim=latent_dim,
            num_cross_attention_heads=num_cross_attention_heads,
            cross_attention_widening_factor=cross_attention_widening_factor,
            use_query_residual=True,
            latent_initializer=clone_initializer(self.latent_initializer),
            num_groups=num_groups,
            num_latents_train=num_latents_train,
            seed=seed,
            name="encoder",
            **common,
        )
        self.processor = None
        if num_self_attends_per_block:
            self.processor = LatentProcessor(
                num_blocks=1,
                num_self_attends_per_block=num_self_attends_per_block,
                num_self_attention_heads=num_self_attention_heads,
                self_attention_widening_factor=self_attention_widening_factor,
                dropout=dropout,
                drop_path_rate=drop_path_rate,
                num_groups=num_groups,
                name="processor",
                **common,
            )

    def _check_groups(self, inputs_shape):
        name = self.__class__.__name__
        groups, index_dim = inputs_shape[1], inputs_shape[2]
        if self.regroup_inputs:
            check_regroup(groups, index_dim, self.num_groups, name)
        elif groups is not None and groups != self.num_groups:
            raise ValueError(
                f"{name}: without regrouping, the inputs must have num_groups={self.num_groups} groups. "
                f"Received: inputs.shape={tuple(inputs_shape)}"
            )

    def _folded_inputs_shape(self, inputs_shape):
        groups, index_dim = inputs_shape[1], inputs_shape[2]
        if self.regroup_inputs and groups is not None and index_dim is not None:
            index_dim = groups * index_dim // self.num_groups
        return (None, index_dim, inputs_shape[-1])

    def build(self, inputs_shape, skip_shape=None):
        if len(inputs_shape) != 4:
            raise ValueError(
                f"{self.__class__.__name__}: `inputs` must have rank 4 (B, G, M, C). "
                f"Received: inputs.shape={tuple(inputs_shape)}"
            )
        self._check_groups(inputs_shape)
        self._input_channels = inputs_shape[-1]
        folded_skip = None if skip_shape is None else (None,) + tuple(skip_shape[2:])
        self.encoder.build(self._folded_inputs_shape(inputs_shape), folded_skip)
        if self.processor is not None:
            self.processor.build((None, self.num_latents, self.latent_dim))
        self.built = True

    def call(self, inputs, skip=None, padding_mask=None, training=None):
        name = self.__class__.__name__
        check_rank("inputs", inputs, 4, name)
        check_numeric_dtype("inputs", inputs, name)
        self._check_groups(inputs.shape)
        check_channels("inputs", inputs, getattr(self, "_input_channels", None), name)
        # Checked on the caller's (B, G, M) layout, before regrouping changes it.
        check_mask("padding_mask", padding_mask, inputs, "inputs", name, axes="B, G, M")
        if self.regroup_inputs:
            inputs = regroup(inputs, self.num_groups, self.regroup_type)
            if padding_mask is not None:
                padding_mask = regroup(padding_mask, self.num_groups, self.regroup_type)
        if padding_mask is not None:
            padding_mask = fold_groups(padding_mask)
        if skip is not None:
            check_rank("skip", skip, 4, name)
            if skip.shape[1] is not None and skip.shape[1] != self.num_groups:
                raise ValueError(
                    f"{name}: `skip` must have num_groups={self.num_groups} groups. "
                    f"Received: skip.shape={tuple(skip.shape)}"
                )
            skip = fold_groups(skip)
        latents = self.encoder(fold_groups(inputs), padding_mask=padding_mask, skip=skip, training=training)
        if self.processor is not None:
            latents = self.processor(latents, training=training)
        return unfold_groups(latents, self.num_groups)

    def compute_output_shape(self, inputs_shape, skip_shape=None):
        return (inputs_shape[0], self.num_groups, self.num_latents, self.latent_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_groups": self.num_groups,
                "num_latents": self.num_latents,
                "latent_dim": self.latent_dim,
                "num_self_attends_per_block": self.num_self_attends_per_block,
                "num_cross_attention_heads": self.num_cross_attention_heads,
                "num_self_attention_heads": self.num_self_attention_heads,
                "cross_attention_widening_factor": self.cross_attention_widening_factor,
                "self_attention_widening_factor": self.self_attention_widening_factor,
                "regroup_inputs": self.regroup_inputs,
                "regroup_type": self.regroup_type,
                "num_latents_train": self.num_latents_train,
                "activation": self.activation,
                "dropout": self.dropout,
                "drop_path_rate": self.drop_path_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "latent_initializer": keras.initializers.serialize(self.latent_initializer),
                "attention_chunk_size": self.attention_chunk_size,
                "seed": self.seed,
            }
        )
        return config
