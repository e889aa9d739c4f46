"""Perceiver IO entity encoder: an unordered set of entities in, one embedding per entity out."""

import keras

from keras_perceiver.layers.input_queries import InputQueries
from keras_perceiver.models.perceiver_backbone import PerceiverBackbone, truncated_normal
from keras_perceiver.models.perceiver_entity_encoder_presets import PERCEIVER_ENTITY_ENCODER_PRESETS
from keras_perceiver.models.task_model import (
    PerceiverTaskModel,
    build_query_decoder,
    check_backbone,
    rename_arguments,
    split_stack_arguments,
)
from keras_perceiver.validation import check_positive_int

# Latent stack of `from_hyperparameters` (this library's defaults, not the preset's).
ENTITY_STACK = {
    "num_latents": 32,
    "latent_dim": 256,
    "num_blocks": 1,
    "num_self_attends_per_block": 3,
    "num_cross_attention_heads": 2,
    "num_self_attention_heads": 4,
    "qk_channels": None,
    "v_channels": None,
    "cross_attention_shape_for_attention": "kv",
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 4,
    "use_query_residual": True,
}


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverEntityEncoder(PerceiverTaskModel):
    """Entity set (B, M, C) with `padding_mask` (B, M) -> one vector per entity (B, M, output_channels).

    The Perceiver IO StarCraft II experiment replaces AlphaStar's entity
    Transformer (self-attention over the game's unit list) with Perceiver
    IO: a small latent array (32 latents in the paper) reads the entity set
    by cross-attention, is refined by latent self-attention, and each
    entity's projected features query the latents for that entity's output
    embedding. There are no position encodings: the set is unordered, and
    the model is permutation-equivariant (permuting the entities and the
    mask permutes the outputs). Padded entities are left out of the
    encoder's attention and get zero outputs (the decoder's `"zero"` query
    mask), so padding never changes the real entities' outputs.

    Backbone: `Dense(embedding_dim)` named `"entity_projection"` on the
    entity features (its `input_preprocessor`; input `"entities"`, shape
    (None, C)) -> encoder (masked by `padding_mask`) -> processor. Head: a
    `QueryDecoder` whose queries are the projected entities (`InputQueries`;
    query residual, `query_mask` = `padding_mask`) -> optional
    Dense(`output_channels`).

    Source: Perceiver IO (arXiv 2107.14795) appendix B (StarCraft II) and
    tables 5, 6 and 9; AlphaStar (Vinyals et al., Nature 2019) entity
    encoder. The preset `starcraft_entity_perceiver` holds the published
    configuration (see its description for the one width the paper does
    not state); `from_hyperparameters`' defaults are this library's.

    Args:
        backbone: a `PerceiverBackbone` whose input is the entity set (B, M,
            C) and whose `input_preprocessor` projects it to the query width
            (e.g. `keras.layers.Dense(embedding_dim)`), e.g.
            `PerceiverBackbone.from_preset("starcraft_entity_perceiver")`.
        output_channels: int or None, width of each entity's output (a Dense
            projection of the decoder); None returns the projected entity
            width. Defaults to None.
        decoder_num_cross_attention_heads: int. Defaults to 2.
        decoder_qk_channels, decoder_v_channels: int or None; None uses the
            latent width D. Default None.
        decoder_cross_attention_widening_factor: int. Defaults to 1.
        decoder_use_query_residual: bool, add each entity's projection to its
            decoded attention output. Defaults to True.
        dtype: dtype policy of the head's layers (the backbone keeps its
            own).

    Inputs (a dict):
        entities (the backbone's `input_name`): (B, M, C) float entity
            features; M may vary per batch.
        padding_mask: optional (B, M) bool (or 0/1 integer), True for real
            entities.

    Returns:
        (B, M, output_channels or the projected width); rows of padded
        entities are zero.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`.
        ValueError: for a non-positive `output_channels`, or entities with
            a channel count other than the backbone's (raised by the layers
            with the received shape).

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverBackbone, PerceiverEntityEncoder
    >>> backbone = PerceiverBackbone(input_shape=(None, 7), input_name="entities",
    ...     input_preprocessor=keras.layers.Dense(16, name="entity_projection"), num_latents=4,
    ...     latent_dim=16, num_self_attends_per_block=1, num_cross_attention_heads=2,
    ...     num_self_attention_heads=4)
    >>> model = PerceiverEntityEncoder(backbone, output_channels=8)
    >>> entities = keras.ops.ones((2, 10, 7))
    >>> tuple(model({"entities": entities, "padding_mask": keras.ops.ones((2, 10), "bool")}).shape)
    (2, 10, 8)
    """

    presets = PERCEIVER_ENTITY_ENCODER_PRESETS

    def __init__(
        self,
        backbone,
        output_channels=None,
        decoder_num_cross_attention_heads=2,
        decoder_qk_channels=None,
        decoder_v_channels=None,
        decoder_cross_attention_widening_factor=1,
        decoder_use_query_residual=True,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_backbone(self.__class__.__name__, backbone)
        check_positive_int("output_channels", output_channels, allow_none=True)

        # === Layers ===
        queries = InputQueries(dtype=dtype, name="decoder_queries")
        decoder = build_query_decoder(
            backbone,
            num_cross_attention_heads=decoder_num_cross_attention_heads,
            qk_channels=decoder_qk_channels,
            v_channels=decoder_v_channels,
            cross_attention_widening_factor=decoder_cross_attention_widening_factor,
            use_query_residual=decoder_use_query_residual,
            output_channels=output_channels,
            query_mask_mode="zero",  # padded entities get zero outputs
            dtype=dtype,
        )

        # === Functional graph ===
        inputs = backbone.task_inputs(padding_mask=True)
        padding_mask = inputs["padding_mask"]
        encoded = backbone.encode(inputs, padding_mask=padding_mask)
        outputs = decoder(queries(encoded["encoder_inputs"]), encoded["latents"], query_mask=padding_mask)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self._set_backbone(backbone, config)

    @classmethod
    def from_hyperparameters(
        cls,
        input_channels,
        embedding_dim=256,
        output_channels=None,
        initializer_range=0.02,
        dtype=None,
        name=None,
        **stack,
    ):
        """Build from one flat argument list (the form before the backbone/head split).

        Args:
            input_channels: int, C, features per entity.
            embedding_dim: int, width of the projected entities (the decoder
                queries). Defaults to 256.
            output_channels: int or None, width of each entity's output; None
                returns `embedding_dim` channels. Defaults to None.
            initializer_range: float, stddev of the truncated normal that
                initializes every kernel (the projection's too) and the
                latents. Defaults to 0.02.
            dtype: dtype policy of every layer.
            name: optional model name.
            **stack: `PerceiverBackbone` latent-stack arguments (defaults:
                `ENTITY_STACK`: 32 x 256 latents, 1 block of 3 self-attends,
                2 cross / 4 self heads, widening 1 / 4) and `decoder_*` head
                arguments (defaults: the constructor's, 2 decoder heads).

        Returns:
            A `PerceiverEntityEncoder`.

        Raises:
            ValueError: for non-positive sizes, and the errors of the
                constructors.
        """
        check_positive_int("input_channels", input_channels)
        check_positive_int("embedding_dim", embedding_dim)
        check_positive_int("output_channels", output_channels, allow_none=True)
        stack, head = split_stack_arguments(stack)
        head = rename_arguments(head)
        output_channels = head.pop("output_channels", output_channels)  # old name `out_channels`
        projection = keras.layers.Dense(
            embedding_dim,
            kernel_initializer=truncated_normal(initializer_range),
            dtype=dtype,
            name="entity_projection",
        )
        backbone = PerceiverBackbone(
            input_shape=(None, input_channels),
            input_name="entities",
            input_preprocessor=projection,
            **{**ENTITY_STACK, **stack},
            initializer_range=initializer_range,
            dtype=dtype,
        )
        return cls(
            backbone=backbone,
            output_channels=output_channels,
            dtype=dtype,
            name=name,
            **head,
        )
