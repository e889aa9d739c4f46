"""Perceiver IO entity encoder: an unordered set of entities in, one embedding per entity out."""

import keras

from keras_perceiver.layers.input_queries import InputQueries
from keras_perceiver.models.core_layers import build_decoder, build_encoder_and_processor, initializer
from keras_perceiver.models.perceiver_entity_set_presets import PERCEIVER_ENTITY_ENCODER_PRESETS
from keras_perceiver.models.task_model import PerceiverTaskModel
from keras_perceiver.validation import check_positive_int


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

    Graph: Dense(`embedding_dim`) on the entity features -> encoder (masked
    by `padding_mask`) -> processor -> decoder whose queries are the
    projected entities (query residual, `query_mask` = `padding_mask`) ->
    Dense(`output_channels`).

    Source: Perceiver IO (arXiv 2107.14795) appendix B (StarCraft II) and
    tables 5, 6 and 9; AlphaStar (Vinyals et al., Nature 2019) entity
    encoder. The preset `starcraft_entity_perceiver` holds the published
    configuration (see its description for the one width the paper does
    not state); the constructor defaults below are this library's.

    Args:
        input_channels: int, C, features per entity.
        embedding_dim: int, width of the projected entities (the decoder
            queries). Defaults to 256.
        output_channels: int or None, width of each entity's output; None
            returns `embedding_dim` channels. Defaults to None.
        num_latents: int, N. Defaults to 32 (the paper's StarCraft II model).
        latent_dim: int, D. Defaults to 256.
        num_blocks, num_self_attends_per_block, num_cross_attention_heads,
            num_self_attention_heads, qk_channels, v_channels,
            cross_attention_shape_for_attention,
            cross_attention_widening_factor, self_attention_widening_factor,
            use_query_residual, activation, dropout, attention_dropout:
            encoder/processor arguments (see `PerceiverIO`). Defaults: 1
            block of 3 self-attends, 2 cross / 4 self heads, widening 1 / 4.
        decoder_num_heads: int. Defaults to 2.
        decoder_qk_channels, decoder_v_channels: int or None; None uses the
            latent width D.
        decoder_widening_factor: int. Defaults to 1.
        decoder_use_query_residual: bool, add each entity's projection to its
            decoded attention output. Defaults to True.
        initializer_range: float, stddev of the truncated normal that
            initializes every kernel and the latents. Defaults to 0.02.
        dtype: dtype policy of every layer.

    Inputs (a dict):
        entities: (B, M, C) float entity features; M may vary per batch.
        padding_mask: optional (B, M) bool (or 0/1 integer), True for real
            entities.

    Returns:
        (B, M, output_channels or embedding_dim); rows of padded entities
        are zero.

    Raises:
        ValueError: for non-positive sizes, or entities with a channel count
            other than `input_channels` (raised by the layers with the
            received shape).

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverEntityEncoder
    >>> model = PerceiverEntityEncoder(input_channels=7, embedding_dim=16, output_channels=8,
    ...     num_latents=4, latent_dim=16, num_self_attends_per_block=1)
    >>> entities = keras.ops.ones((2, 10, 7))
    >>> tuple(model({"entities": entities, "padding_mask": keras.ops.ones((2, 10), "bool")}).shape)
    (2, 10, 8)
    """

    presets = PERCEIVER_ENTITY_ENCODER_PRESETS

    def __init__(
        self,
        input_channels,
        embedding_dim=256,
        output_channels=None,
        num_latents=32,
        latent_dim=256,
        num_blocks=1,
        num_self_attends_per_block=3,
        num_cross_attention_heads=2,
        num_self_attention_heads=4,
        qk_channels=None,
        v_channels=None,
        cross_attention_shape_for_attention="kv",
        cross_attention_widening_factor=1,
        self_attention_widening_factor=4,
        use_query_residual=True,
        decoder_num_heads=2,
        decoder_qk_channels=None,
        decoder_v_channels=None,
        decoder_widening_factor=1,
        decoder_use_query_residual=True,
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        initializer_range=0.02,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_positive_int("input_channels", input_channels)
        check_positive_int("embedding_dim", embedding_dim)
        check_positive_int("output_channels", output_channels, allow_none=True)
        check_positive_int("num_latents", num_latents)
        check_positive_int("latent_dim", latent_dim)
        decoder_config = dict(config, query_mask_mode="zero")

        # === Layers ===
        projection = keras.layers.Dense(
            embedding_dim, kernel_initializer=initializer(config), dtype=dtype, name="entity_projection"
        )
        encoder, processor = build_encoder_and_processor(config, dtype=dtype)
        queries = InputQueries(dtype=dtype, name="decoder_queries")
        decoder = build_decoder(decoder_config, dtype=dtype)

        # === Functional graph ===
        entities = keras.Input(shape=(None, input_channels), name="entities")
        padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask", optional=True)
        x = projection(entities)
        latents = processor(encoder(x, padding_mask=padding_mask))
        outputs = decoder(queries(x), latents, query_mask=padding_mask)
        super().__init__(
            inputs={"entities": entities, "padding_mask": padding_mask}, outputs=outputs, **kwargs
        )

        # === Config ===
        self._perceiver_config = config
