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
    check_numeric_dtype,
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

    HiP options (all off by default):
    - `num_groups` G: the inputs are groups folded into the batch, (B*G, M, C)
      with an example's groups adjacent (`fold_groups`), and every group has
      its own N latents: the array is (G*N, D), group-major rows (rows
      g*N .. g*N+N-1 are group g's). Output (B*G, N, D).
    - `skip` (B*G, N, C_skip) at call: a U-Net skip added to the latent
      queries before the attention (and so inside the query residual),
      through a Dense projection `skip_projection` (bias) only when
      C_skip != D.
    - `num_latents_train` < N: at training time every example and group
      attends from its own random subset of `num_latents_train` of its N
      latents, in random (permuted) order; at inference all N, in order.
      The draws come from `keras.random` with the layer's `SeedGenerator`
      (`seed`), so they are reproducible.

    Source: Perceiver IO (arXiv 2107.14795) section 2 "encode"; transformers
    `PerceiverEmbeddings` + `PerceiverEncoder.cross_attention`; HiP (arXiv
    2202.10890) section 3, official `perceiver_blocks.py` `HiPCrossAttention`
    (per-group latents, `pre_attention_residual`, `_subsample_query_inputs`).

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
        activation: `"gelu"` (exact, default), `"gelu_approximate"` or
            `"squared_relu"` (HiP).
        dropout: float, dropout on attention and MLP outputs. Defaults to 0.
        attention_dropout: float, dropout on attention probabilities.
        layer_norm_epsilon: float. Defaults to 1e-5.
        kernel_initializer: initializer of the kernels; defaults to a
            truncated normal with stddev 0.02.
        latent_initializer: initializer of the latent array (G*N, D); defaults
            to a truncated normal with stddev 0.02 (HiP:
            `VarianceScaling(1.0, "fan_in", "truncated_normal")`, whose fan_in
            is then G*N).
        attention_chunk_size: None (default: chunked automatically above
            2^22 scores per head), 0 (never) or int: attention in chunks of
            this many keys/queries (`PerceiverMultiHeadAttention`).
        num_groups: int, G, groups folded into the batch, each with its own
            latents. Defaults to 1.
        num_latents_train: int or None, latents per group at training time
            (a random subset, at most `num_latents`); None uses all.
            Defaults to None.
        seed: optional int, seed of the latent subsets' `SeedGenerator`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: (B*G, M, C) float tensor ((B, M, C) for G = 1).
        padding_mask: optional (B*G, M) bool tensor, True for real elements.
        training: bool, enables dropout and the latent subsets.
        skip: optional (B*G, N', C_skip) tensor added to the latent queries,
            N' the number of latents used (N, or `num_latents_train` at
            training time). The first call decides whether the layer has a
            `skip_projection`.

    Returns:
        (B*G, N', D) latents.

    Raises:
        ValueError: for inputs that are not rank 3, an empty index dimension
            (M = 0), a channel count other than the built one, a
            `padding_mask` whose shape is not (B*G, M), a batch that is not a
            multiple of G, `num_latents_train` above `num_latents`, or a
            `skip` of the wrong shape (or of a width that needs a projection
            the layer was not built with).

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import CrossAttentionEncoder
    >>> encoder = CrossAttentionEncoder(num_latents=8, latent_dim=16)
    >>> tuple(encoder(keras.ops.ones((2, 50, 3))).shape)
    (2, 8, 16)
    >>> grouped = CrossAttentionEncoder(num_latents=8, latent_dim=16, num_groups=4, num_latents_train=2)
    >>> folded = keras.ops.ones((2 * 4, 5, 3))  # B=2 examples, G=4 groups of 5 inputs
    >>> tuple(grouped(folded).shape), tuple(grouped(folded, training=True).shape)
    ((8, 8, 16), (8, 2, 16))
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
        num_groups=1,
        num_latents_train=None,
        seed=None,
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
        check_positive_int("num_groups", num_groups)
        check_positive_int("num_cross_attention_heads", num_cross_attention_heads)
        check_positive_int("num_latents_train", num_latents_train, allow_none=True)
        if num_latents_train is not None and num_latents_train > num_latents:
            raise ValueError(
                "`num_latents_train` must be at most `num_latents` (a subset of the latents is used "
                f"at training time). Received: num_latents_train={num_latents_train}, "
                f"num_latents={num_latents}"
            )
        self.num_groups = num_groups
        self.num_latents_train = num_latents_train
        self.seed = seed
        self.seed_generator = None
        if num_latents_train is not None and num_latents_train < num_latents:
            self.seed_generator = keras.random.SeedGenerator(seed)
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

    def build(self, inputs_shape, skip_shape=None):
        self._inputs_channels = inputs_shape[-1]
        self.latents = self.add_weight(
            name="latents",
            shape=(self.num_groups * self.num_latents, self.latent_dim),
            initializer=clone_initializer(self.latent_initializer),
        )
        self.skip_projection = None
        if skip_shape is not None and skip_shape[-1] != self.latent_dim:
            self.skip_projection = keras.layers.Dense(
                self.latent_dim,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name="skip_projection",
            )
            self.skip_projection.build(skip_shape)
        self.cross_attention.build((None, self.num_latents, self.latent_dim), inputs_shape)
        self.built = True

    def _uses_subsets(self, training):
        return bool(training) and self.seed_generator is not None

    def latent_queries(self, batch_size, training=False):
        """The latent queries of `batch_size` examples: (B*G, N', D), before any skip.

        Group g of example b is row b*G + g and starts from its own N
        latents; at training time with `num_latents_train` < N each row
        holds a random subset of them, in permuted order.

        Args:
            batch_size: int or scalar tensor, B (examples, not rows).
            training: bool, draw the training-time subsets.

        Returns:
            (B*G, N', D) tensor in the compute dtype, N' = N or
            `num_latents_train`.
        """
        groups, num_latents, dim = self.num_groups, self.num_latents, self.latent_dim
        latents = ops.cast(self.latents, self.compute_dtype)
        latents = ops.broadcast_to(
            ops.reshape(latents, (1, groups, num_latents, dim)), (batch_size, groups, num_latents, dim)
        )
        latents = ops.reshape(latents, (batch_size * groups, num_latents, dim))
        if not self._uses_subsets(training):
            return latents
        # A uniform permutation per row (argsort of i.i.d. uniforms), cut to the first N_train entries.
        draws = keras.random.uniform(
            (batch_size * groups, num_latents), seed=self.seed_generator, dtype="float32"
        )
        indices = ops.argsort(draws, axis=-1)[:, : self.num_latents_train]
        return ops.take_along_axis(latents, indices[:, :, None], axis=1)

    def call(self, inputs, padding_mask=None, training=None, skip=None):
        name = self.__class__.__name__
        check_rank("inputs", inputs, 3, name)
        check_nonempty_index("inputs", inputs, name)
        check_channels("inputs", inputs, self._inputs_channels, name)
        check_numeric_dtype("inputs", inputs, name)
        check_mask("padding_mask", padding_mask, inputs, "inputs", name)
        rows = inputs.shape[0]
        if rows is not None and rows % self.num_groups:
            raise ValueError(
                f"{name}: `inputs` must hold B x num_groups rows (groups folded into the batch). "
                f"Expected a multiple of {self.num_groups}. Received: inputs.shape={tuple(inputs.shape)}"
            )
        batch_size = ops.shape(inputs)[0] // self.num_groups
        latents = self.latent_queries(batch_size, training=training)
        if skip is not None:
            latents = latents + self._project_skip(skip, inputs, training)  # `+`: see MLPBlock.call
        return self.cross_attention(latents, inputs, padding_mask=padding_mask, training=training)

    def _project_skip(self, skip, inputs, training):
        name = self.__class__.__name__
        check_rank("skip", skip, 3, name)
        num_latents = self.num_latents_train if self._uses_subsets(training) else self.num_latents
        expected = (inputs.shape[0], num_latents)
        for axis in (0, 1):
            received = skip.shape[axis]
            if received is not None and expected[axis] is not None and received != expected[axis]:
                raise ValueError(
                    f"{name}: `skip` must be (B*G, N', C_skip) = ({expected[0]}, {num_latents}, C_skip), "
                    f"one row per latent query. Received: skip.shape={tuple(skip.shape)}"
                )
        if self.skip_projection is not None:
            check_channels("skip", skip, self.skip_projection.kernel.shape[0], name)
            return self.skip_projection(skip)
        if skip.shape[-1] != self.latent_dim:
            raise ValueError(
                f"{name}: `skip` has {skip.shape[-1]} channels but the latents {self.latent_dim}, and the "
                "layer was built without a `skip_projection` (its first call had no skip of that width). "
                f"Received: skip.shape={tuple(skip.shape)}"
            )
        return ops.cast(skip, self.compute_dtype)

    def compute_output_shape(self, inputs_shape, skip_shape=None):
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
                "num_groups": self.num_groups,
                "num_latents_train": self.num_latents_train,
                "seed": self.seed,
            }
        )
        return config
