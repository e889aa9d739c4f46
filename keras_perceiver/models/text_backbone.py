"""The text backbone of the language models: token ids -> `TextPreprocessor` -> latent stack."""

from keras_perceiver.layers.query_patches import CentredPatches, QueryPatches
from keras_perceiver.layers.trainable_position_encoding import TrainablePositionEncoding
from keras_perceiver.models.perceiver_backbone import PerceiverBackbone, truncated_normal
from keras_perceiver.models.perceiver_backbone_presets import LANGUAGE_STACK
from keras_perceiver.models.task_model import build_query_decoder
from keras_perceiver.preprocessors.text_preprocessor import TextPreprocessor
from keras_perceiver.validation import check_positive_int


def text_backbone(
    vocab_size=262,
    max_sequence_length=2048,
    embedding_dim=768,
    use_output_bias=False,
    dtype=None,
    ngram_sizes=(),
    num_ngram_buckets=8192,
    ngram_embedding_dim=32,
    **stack,
):
    """A `PerceiverBackbone` on token ids (B, L) with a `TextPreprocessor` named `"text_preprocessor"`.

    The form that the language models' `from_hyperparameters` and the
    converters build (the published backbones are the `PerceiverBackbone`
    presets `language_perceiver` and `language_perceiver_sentencepiece`).

    Args:
        vocab_size, max_sequence_length, embedding_dim: `TextPreprocessor`
            arguments. Defaults: the language perceiver's (262, 2048, 768).
        use_output_bias: bool, the preprocessor holds the masked LM's output
            bias (the version-1 layout of `PerceiverMaskedLM`, see
            `TextPreprocessor`). Defaults to False.
        dtype: dtype policy of every layer.
        ngram_sizes, num_ngram_buckets, ngram_embedding_dim: the
            `TextPreprocessor`'s hashed n-gram embedding (none by default, as
            in the published models).
        **stack: `PerceiverBackbone` latent-stack arguments; defaults: the
            language perceiver's (`LANGUAGE_STACK`), the embeddings'
            initializer uses `initializer_range` (default 0.02).

    Returns:
        A `PerceiverBackbone` with the input `"token_ids"` (int32) and the
        optional `"padding_mask"`.

    Raises:
        ValueError: for non-positive sizes (from the constructors).
    """
    preprocessor = TextPreprocessor(
        vocab_size,
        max_sequence_length,
        embedding_dim,
        use_output_bias=use_output_bias,
        ngram_sizes=ngram_sizes,
        num_ngram_buckets=num_ngram_buckets,
        ngram_embedding_dim=ngram_embedding_dim,
        embeddings_initializer=truncated_normal(stack.get("initializer_range", 0.02)),
        dtype=dtype,
        name="text_preprocessor",
    )
    return PerceiverBackbone(
        input_shape=(None,),
        input_name="token_ids",
        input_dtype="int32",
        input_preprocessor=preprocessor,
        **{**LANGUAGE_STACK, **stack},
        dtype=dtype,
    )


def text_preprocessor_of(task_name, backbone):
    """The backbone's `TextPreprocessor` (its last input preprocessor), for tied output embeddings.

    Raises:
        ValueError: naming the received preprocessors when the last one is
            not a `TextPreprocessor`.
    """
    preprocessors = backbone.input_preprocessors
    if not preprocessors or not isinstance(preprocessors[-1], TextPreprocessor):
        raise ValueError(
            f"{task_name}: the backbone's input preprocessor must be a `TextPreprocessor` (its token "
            "embeddings decode the outputs). Received: input_preprocessor="
            f"{[type(layer).__name__ for layer in preprocessors] or None}"
        )
    return preprocessors[-1]


def position_query_decoder(
    backbone,
    text_preprocessor,
    num_cross_attention_heads,
    qk_channels,
    v_channels,
    cross_attention_widening_factor,
    use_query_residual,
    dtype=None,
):
    """The language models' per-position decoder: position queries (L, E) and a `QueryDecoder` of width E.

    The layout of the masked LM's decoder (Perceiver IO section 4.1,
    transformers `PerceiverBasicDecoder` with trainable position queries):
    a `TrainablePositionEncoding` named `"decoder_queries"` of
    `max_sequence_length` x `embedding_dim` and a `QueryDecoder` named
    `"decoder"` (no output projection), shared by `PerceiverMaskedLM` and
    `PerceiverTokenClassifier` so that the weights of one load into the other.

    Args:
        backbone: the `PerceiverBackbone` (latent width, initializer range).
        text_preprocessor: its `TextPreprocessor` (L and E).
        num_cross_attention_heads, qk_channels: the decoder's attention.
        v_channels: int or None; None uses E.
        cross_attention_widening_factor: int, the decoder MLP's widening.
        use_query_residual: bool, add the queries to the attention output.
        dtype: dtype policy of both layers.

    Returns:
        (decoder_queries, decoder) layers.
    """
    decoder_queries = TrainablePositionEncoding(
        text_preprocessor.max_sequence_length,
        text_preprocessor.embedding_dim,
        initializer=truncated_normal(backbone.initializer_range),
        dtype=dtype,
        name="decoder_queries",
    )
    decoder = build_query_decoder(
        backbone,
        num_cross_attention_heads=num_cross_attention_heads,
        qk_channels=qk_channels,
        v_channels=v_channels or text_preprocessor.embedding_dim,
        cross_attention_widening_factor=cross_attention_widening_factor,
        use_query_residual=use_query_residual,
        output_channels=None,
        query_mask_mode="ignore",
        dtype=dtype,
    )
    return decoder_queries, decoder


def query_patch_layers(backbone, text_preprocessor, patch_size, dtype=None):
    """The optional 1-D patch features added to the position queries (`apply_query_patches`).

    Each query gets a linear projection of the P = `patch_size` embedded
    inputs (B, L, E) centred on its position (padding and the sequence's
    ends count as zeros). Not in the published language models.

    Args:
        backbone: the `PerceiverBackbone` (initializer range).
        text_preprocessor: its `TextPreprocessor` (E).
        patch_size: odd int or None; None or 1 builds no layer.
        dtype: dtype policy.

    Returns:
        None, or the pair (`CentredPatches` named `"query_patch_window"`,
        (B, L, E) -> (B, L, P, E); `QueryPatches` named `"query_patches"`,
        (B, L, P, E) -> (B, L, E)).

    Raises:
        ValueError: for a `patch_size` that is not a positive odd int.
    """
    if patch_size is None:
        return None
    check_positive_int("decoder_query_patch_size", patch_size)
    if patch_size % 2 == 0:
        raise ValueError(
            "`decoder_query_patch_size` must be odd (a patch centred on each position). "
            f"Received: decoder_query_patch_size={patch_size}"
        )
    if patch_size == 1:
        return None
    window = CentredPatches(patch_size, dtype=dtype, name="query_patch_window")
    projection = QueryPatches(
        text_preprocessor.embedding_dim,
        kernel_initializer=truncated_normal(backbone.initializer_range),
        dtype=dtype,
        name="query_patches",
    )
    return window, projection


def apply_query_patches(query_patches, embedded, padding_mask=None):
    """(B, L, E) embedded inputs -> (B, L, E) patch features, by the pair of `query_patch_layers`."""
    window, projection = query_patches
    return projection(window(embedded, padding_mask=padding_mask))
