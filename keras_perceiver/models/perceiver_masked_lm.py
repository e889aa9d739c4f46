"""Masked language model on UTF-8 bytes (the paper's language perceiver)."""

import keras

from keras_perceiver.layers.trainable_position_encoding import TrainablePositionEncoding
from keras_perceiver.models.core_layers import build_decoder, build_encoder_and_processor, initializer
from keras_perceiver.models.perceiver_masked_lm_presets import PERCEIVER_MASKED_LM_PRESETS
from keras_perceiver.models.task_model import PerceiverTaskModel
from keras_perceiver.preprocessors.text_preprocessor import TextPreprocessor
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverMaskedLM(PerceiverTaskModel):
    """Byte-level masked LM: token ids (B, L) -> logits (B, L, vocab_size).

    Token + position embedding (B, L, `embedding_dim`) -> encoder ->
    processor -> decoder whose queries are learned position embeddings of
    the L output positions -> logits with the input embedding matrix (tied).
    The defaults are the published `language_perceiver` preset (201,108,230
    parameters).

    Source: Perceiver IO (arXiv 2107.14795) section 4.1; transformers
    `PerceiverForMaskedLM`.

    Args:
        vocab_size: int. Defaults to 262 (bytes + 6 special ids).
        max_sequence_length: int, L_max. Defaults to 2048.
        embedding_dim: int, token/query width E (`d_model`). Defaults to 768.
        num_latents, latent_dim, num_blocks, num_self_attends_per_block,
            num_cross_attention_heads, num_self_attention_heads, qk_channels,
            v_channels, cross_attention_shape_for_attention,
            cross_attention_widening_factor, self_attention_widening_factor,
            use_query_residual: encoder/processor arguments (see `PerceiverIO`).
        decoder_num_heads: int. Defaults to 8.
        decoder_qk_channels: int. Defaults to 256.
        decoder_v_channels: int or None; None uses `embedding_dim`.
        decoder_widening_factor: int. Defaults to 1.
        activation: `"gelu"` (exact, default) or `"gelu_approximate"`.
        dropout, attention_dropout: float. Default 0.
        initializer_range: float, stddev of the truncated normal that
            initializes every kernel, latent array and embedding table the
            model builds (transformers' `initializer_range`). Defaults to 0.02;
            small models train faster from larger values (e.g. 0.2).
        dtype: dtype policy of every layer.

    Inputs (a dict):
        token_ids: (B, L) int32, L <= `max_sequence_length`.
        padding_mask: optional (B, L) bool, True for real tokens.

    Returns:
        (B, L, vocab_size) logits.

    Raises:
        ValueError: for non-positive sizes, token ids of the wrong rank or
            range, longer sequences than `max_sequence_length`.
        TypeError: for token ids that are not integers.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverMaskedLM
    >>> model = PerceiverMaskedLM(max_sequence_length=32, embedding_dim=16, num_latents=8,
    ...     latent_dim=32, num_self_attends_per_block=1, qk_channels=16, v_channels=32,
    ...     decoder_qk_channels=16)
    >>> tuple(model({"token_ids": keras.ops.ones((2, 32), "int32")}).shape)
    (2, 32, 262)
    """

    presets = PERCEIVER_MASKED_LM_PRESETS

    def __init__(
        self,
        vocab_size=262,
        max_sequence_length=2048,
        embedding_dim=768,
        num_latents=256,
        latent_dim=1280,
        num_blocks=1,
        num_self_attends_per_block=26,
        num_cross_attention_heads=8,
        num_self_attention_heads=8,
        qk_channels=256,
        v_channels=1280,
        cross_attention_shape_for_attention="kv",
        cross_attention_widening_factor=1,
        self_attention_widening_factor=1,
        use_query_residual=True,
        decoder_num_heads=8,
        decoder_qk_channels=256,
        decoder_v_channels=None,
        decoder_widening_factor=1,
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        initializer_range=0.02,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_positive_int("max_sequence_length", max_sequence_length)
        check_positive_int("embedding_dim", embedding_dim)
        decoder_config = dict(
            config,
            decoder_v_channels=decoder_v_channels or embedding_dim,
            decoder_use_query_residual=False,
            output_channels=None,
            query_mask_mode="ignore",
        )

        # === Layers ===
        text_preprocessor = TextPreprocessor(
            vocab_size,
            max_sequence_length,
            embedding_dim,
            use_output_bias=True,
            embeddings_initializer=initializer(config),
            dtype=dtype,
            name="text_preprocessor",
        )
        encoder, processor = build_encoder_and_processor(config, dtype=dtype)
        decoder_queries = TrainablePositionEncoding(
            max_sequence_length,
            embedding_dim,
            initializer=initializer(config),
            dtype=dtype,
            name="decoder_queries",
        )
        decoder = build_decoder(decoder_config, dtype=dtype)

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask", optional=True)
        embeddings = text_preprocessor(token_ids)
        latents = processor(encoder(embeddings, padding_mask=padding_mask))
        hidden = decoder(decoder_queries(embeddings), latents)
        logits = text_preprocessor(hidden, reverse=True)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask}, outputs=logits, **kwargs
        )

        # === Config ===
        # Sublayers are assigned after `super().__init__` (on the PyTorch backend a Model is a torch Module,
        # which takes no submodule before its own initialization).
        self.text_preprocessor = text_preprocessor
        self.decoder_queries = decoder_queries
        self._perceiver_config = config
