"""The text backbone of the language models: token ids -> `TextPreprocessor` -> latent stack."""

from keras_perceiver.models.perceiver_backbone import PerceiverBackbone, truncated_normal
from keras_perceiver.models.perceiver_backbone_presets import LANGUAGE_STACK
from keras_perceiver.preprocessors.text_preprocessor import TextPreprocessor


def text_backbone(
    vocab_size=262,
    max_sequence_length=2048,
    embedding_dim=768,
    use_output_bias=False,
    dtype=None,
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
