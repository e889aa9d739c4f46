"""Masked language model on UTF-8 bytes or tokens (the paper's language perceiver)."""

import keras

from keras_perceiver.models.chunked_decoding import ChunkedDecodingMixin
from keras_perceiver.models.fill_mask import FillMaskMixin
from keras_perceiver.models.perceiver_masked_lm_presets import PERCEIVER_MASKED_LM_PRESETS
from keras_perceiver.models.task_model import (
    PerceiverTaskModel,
    check_backbone,
    split_stack_arguments,
)
from keras_perceiver.models.text_backbone import (
    apply_query_patches,
    position_query_decoder,
    query_patch_layers,
    text_backbone,
    text_preprocessor_of,
)
from keras_perceiver.postprocessors.logits_bias import LogitsBias


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverMaskedLM(FillMaskMixin, ChunkedDecodingMixin, PerceiverTaskModel):
    """Masked LM: token ids (B, L) -> logits (B, L, vocab_size), a head on a text `PerceiverBackbone`.

    Backbone: `TextPreprocessor` (token + position embeddings, width E) ->
    encoder -> processor. Head: the learned position embeddings of the L
    output positions (`TrainablePositionEncoding`, width E) are the queries
    of a `QueryDecoder` (no query residual, no output projection, width E)
    -> logits with the transposed token embedding of the backbone's
    `TextPreprocessor` (tied) + a learned (vocab_size,) bias (`LogitsBias`
    named `"output_bias"`), as transformers' `PerceiverEmbeddingDecoder`.
    The backbone can then become a classifier's:
    `PerceiverTextClassifier(backbone=masked_lm.backbone, num_classes=2)`
    (weights shared). Presets: `language_perceiver` (201,108,230
    parameters), `language_perceiver_sentencepiece`; their backbones are
    the `PerceiverBackbone` presets of the same names.

    A backbone whose `TextPreprocessor` has `use_output_bias=True` (the
    layout of files saved before the backbone/head split, which
    `from_hyperparameters` rebuilds) already adds the bias: the head then
    adds none.

    Source: Perceiver IO (arXiv 2107.14795) section 4.1; transformers
    `PerceiverForMaskedLM` (`PerceiverBasicDecoder`,
    `PerceiverEmbeddingDecoder`).

    Args:
        backbone: a `PerceiverBackbone` on token ids whose (last) input
            preprocessor is a `TextPreprocessor`, e.g.
            `PerceiverBackbone.from_preset("language_perceiver")`.
        decoder_num_cross_attention_heads: int. Defaults to 8.
        decoder_qk_channels: int or None; None uses E. Defaults to 256.
        decoder_v_channels: int or None; None uses E (the
            `TextPreprocessor`'s `embedding_dim`). Defaults to None.
        decoder_cross_attention_widening_factor: int. Defaults to 1.
        decoder_query_patch_size: odd int or None, the width P in positions
            of the patch of embedded inputs projected onto each position
            query (`CentredPatches` and `QueryPatches` layers, see
            `PerceiverTokenClassifier`): each output then sees its
            neighbours directly, not only through the latents. None (the
            default, the published models) or 1 adds none.
        dtype: dtype policy of the head's layers (the backbone keeps its
            own).

    Inputs (a dict):
        token_ids: (B, L) int32, L <= the preprocessor's
            `max_sequence_length`.
        padding_mask: optional (B, L) bool, True for real tokens.

    Returns:
        (B, L, vocab_size) logits.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`, or
            token ids that are not integers.
        ValueError: for a backbone without a `TextPreprocessor`, non-positive
            sizes, token ids of the wrong rank or range, or sequences longer
            than `max_sequence_length`.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverBackbone, PerceiverMaskedLM
    >>> from keras_perceiver.preprocessors import TextPreprocessor
    >>> backbone = PerceiverBackbone(input_shape=(None,), input_name="token_ids",
    ...     input_dtype="int32", input_preprocessor=TextPreprocessor(262, 32, 16), num_latents=8,
    ...     latent_dim=32, num_self_attends_per_block=1, qk_channels=16, v_channels=32)
    >>> model = PerceiverMaskedLM(backbone, decoder_qk_channels=16)
    >>> tuple(model({"token_ids": keras.ops.ones((2, 32), "int32")}).shape)
    (2, 32, 262)
    """

    presets = PERCEIVER_MASKED_LM_PRESETS

    def __init__(
        self,
        backbone,
        decoder_num_cross_attention_heads=8,
        decoder_qk_channels=256,
        decoder_v_channels=None,
        decoder_cross_attention_widening_factor=1,
        decoder_query_patch_size=None,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_backbone(self.__class__.__name__, backbone)
        text_preprocessor = text_preprocessor_of(self.__class__.__name__, backbone)

        # === Layers ===
        decoder_queries, decoder = position_query_decoder(
            backbone,
            text_preprocessor,
            num_cross_attention_heads=decoder_num_cross_attention_heads,
            qk_channels=decoder_qk_channels,
            v_channels=decoder_v_channels,
            cross_attention_widening_factor=decoder_cross_attention_widening_factor,
            use_query_residual=False,
            dtype=dtype,
        )
        query_patches = query_patch_layers(backbone, text_preprocessor, decoder_query_patch_size, dtype)
        output_bias = None
        if not text_preprocessor.use_output_bias:  # else the version-1 layout: the preprocessor adds it
            output_bias = LogitsBias(text_preprocessor.vocab_size, dtype=dtype, name="output_bias")

        # === Functional graph ===
        inputs = backbone.task_inputs(padding_mask=True)
        encoded = backbone.encode(inputs, padding_mask=inputs["padding_mask"])
        queries = decoder_queries(encoded["encoder_inputs"])
        if query_patches is not None:
            patches = apply_query_patches(query_patches, encoded["encoder_inputs"], inputs["padding_mask"])
            queries = keras.layers.Add(dtype=dtype, name="query_patch_features")([queries, patches])
        hidden = decoder(queries, encoded["latents"])
        logits = text_preprocessor(hidden, reverse=True)
        if output_bias is not None:
            logits = output_bias(logits)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self._set_backbone(backbone, config)
        self.text_preprocessor = text_preprocessor
        self.decoder_queries = decoder_queries
        self.query_patches = query_patches

    def _chunked_encode(self, inputs):
        encoded = self.backbone.encode(inputs, padding_mask=inputs.get("padding_mask"), training=False)
        queries = self.decoder_queries(encoded["encoder_inputs"])
        if self.query_patches is not None:
            queries = queries + apply_query_patches(
                self.query_patches, encoded["encoder_inputs"], inputs.get("padding_mask")
            )
        return queries, encoded["latents"]

    def _chunked_finish(self, decoded, inputs):
        logits = self.text_preprocessor(decoded, reverse=True)
        if any(layer.name == "output_bias" for layer in self.layers):
            logits = self.get_layer("output_bias")(logits)
        return logits

    @classmethod
    def from_hyperparameters(
        cls,
        vocab_size=262,
        max_sequence_length=2048,
        embedding_dim=768,
        ngram_sizes=(),
        num_ngram_buckets=8192,
        ngram_embedding_dim=32,
        dtype=None,
        name=None,
        **stack,
    ):
        """Build from one flat argument list (the form before the backbone/head split).

        The output bias lives in the `TextPreprocessor` (`use_output_bias=
        True`), as in the files saved before the split, so that they load
        with their weight paths.

        Args:
            vocab_size: int. Defaults to 262 (bytes + 6 special ids).
            max_sequence_length: int, L_max. Defaults to 2048.
            embedding_dim: int, token/query width E (`d_model`). Defaults
                to 768.
            ngram_sizes, num_ngram_buckets, ngram_embedding_dim: the
                `TextPreprocessor`'s hashed n-gram embedding (none by default,
                as in the published models).
            dtype: dtype policy of every layer.
            name: optional model name.
            **stack: `PerceiverBackbone` latent-stack arguments (defaults:
                the `language_perceiver` backbone's) and the `decoder_*`
                head arguments.

        Returns:
            A `PerceiverMaskedLM`.

        Raises:
            ValueError: for non-positive sizes (the constructors' errors).
        """
        stack, head = split_stack_arguments(stack)
        backbone = text_backbone(
            vocab_size,
            max_sequence_length,
            embedding_dim,
            use_output_bias=True,
            dtype=dtype,
            ngram_sizes=ngram_sizes,
            num_ngram_buckets=num_ngram_buckets,
            ngram_embedding_dim=ngram_embedding_dim,
            **stack,
        )
        return cls(backbone=backbone, dtype=dtype, name=name, **head)
