"""Token classification (one label per input byte or token): a head on the language perceiver's backbone."""

import keras

from keras_perceiver.models.class_names import ClassNamesMixin
from keras_perceiver.models.perceiver_backbone import truncated_normal
from keras_perceiver.models.perceiver_token_classifier_presets import PERCEIVER_TOKEN_CLASSIFIER_PRESETS
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
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverTokenClassifier(ClassNamesMixin, PerceiverTaskModel):
    """Token ids (B, L) -> logits (B, L, num_labels): one classification per input position.

    Backbone: the language perceiver's `TextPreprocessor` -> encoder ->
    processor. Head: as the masked LM's decoder (Perceiver IO section 4.1,
    transformers `PerceiverBasicDecoder`): the learned position embeddings
    of the L input positions (`TrainablePositionEncoding` named
    `"decoder_queries"`, width E) query the latents with a `QueryDecoder`
    (width E, no output projection), then a Dense layer named
    `"classifier"` maps each position to `num_labels` logits. With
    `decoder_query_inputs=True` the embedded inputs (the backbone's
    `TextPreprocessor` output, token + position embeddings) are added to the
    position queries, so each output also sees its own token directly (the
    optical-flow decoder's choice of querying with the inputs, Perceiver IO
    section 4.2); `decoder_use_query_residual=True` adds them to the
    decoder's output as well. With `decoder_query_patch_size=P` each query
    also gets a linear projection of the P embedded inputs centred on its
    position (`CentredPatches` and `QueryPatches` layers named
    `"query_patch_window"` and `"query_patches"`; padding and the sequence's
    ends count as zeros): the optical-flow model's patch features (Perceiver
    IO section 4.2, 3x3 patches), in one dimension, so that each output sees
    its neighbours directly instead of through the latents only.

    The head's decoder has the masked LM's layout: `from_masked_lm` builds a
    token classifier on a (pretrained) `PerceiverMaskedLM`'s backbone and
    copies its decoder queries and decoder, so that the masked LM
    fine-tunes to tagging. Presets: `language_perceiver_token_classifier`
    (the `language_perceiver` backbone; 201,3xx,xxx parameters with
    `num_labels` 4, see `presets`).

    Padding positions (padding_mask False) get logits too; leave them out of
    the loss and metrics with sample weights equal to the padding mask
    (`default_loss` is the per-position softmax cross-entropy, which Keras
    weights per position with a (B, L) `sample_weight`).

    Source: Perceiver IO (arXiv 2107.14795) section 4.1 (decoder of the
    language model); the never-merged transformers pull request #14487
    (`PerceiverForTokenClassification`) asked for this head.

    Args:
        backbone: a `PerceiverBackbone` on token ids whose (last) input
            preprocessor is a `TextPreprocessor`, e.g.
            `PerceiverBackbone.from_preset("language_perceiver")` or a
            `PerceiverMaskedLM`'s `backbone`.
        num_labels: int, labels per position. Defaults to 2.
        decoder_num_cross_attention_heads: int. Defaults to 8.
        decoder_qk_channels: int or None; None uses E. Defaults to 256.
        decoder_v_channels: int or None; None uses E (the
            `TextPreprocessor`'s `embedding_dim`). Defaults to None.
        decoder_cross_attention_widening_factor: int. Defaults to 1.
        decoder_query_inputs: bool, add the embedded inputs to the position
            queries (see above). Defaults to False (the masked LM's queries).
        decoder_query_patch_size: odd int or None, the width P in positions
            of the input patch added to each query (see above); None (the
            default, the masked LM's queries) or 1 adds none.
        decoder_use_query_residual: bool, add the queries to the decoder's
            attention output (with `decoder_query_inputs`, each token's
            embedding then reaches its output directly; no weights are
            added, so the masked LM's decoder still loads). Defaults to
            False (the masked LM's decoder).
        id2label: optional sequence of `num_labels` label names.
        dtype: dtype policy of the head's layers (the backbone keeps its
            own).

    Inputs (a dict):
        token_ids: (B, L) int32, L <= the preprocessor's
            `max_sequence_length`.
        padding_mask: optional (B, L) bool, True for real tokens.

    Returns:
        (B, L, num_labels) logits.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`, or
            token ids that are not integers.
        ValueError: for a backbone without a `TextPreprocessor`, a
            non-positive `num_labels`, token ids of the wrong rank or range,
            or sequences longer than `max_sequence_length`.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverBackbone, PerceiverTokenClassifier
    >>> from keras_perceiver.preprocessors import TextPreprocessor
    >>> backbone = PerceiverBackbone(input_shape=(None,), input_name="token_ids",
    ...     input_dtype="int32", input_preprocessor=TextPreprocessor(262, 32, 16), num_latents=8,
    ...     latent_dim=32, num_self_attends_per_block=1, qk_channels=16, v_channels=32)
    >>> model = PerceiverTokenClassifier(backbone, num_labels=4, decoder_qk_channels=16)
    >>> tuple(model({"token_ids": keras.ops.ones((2, 20), "int32")}).shape)
    (2, 20, 4)
    """

    presets = PERCEIVER_TOKEN_CLASSIFIER_PRESETS

    def __init__(
        self,
        backbone,
        num_labels=2,
        decoder_num_cross_attention_heads=8,
        decoder_qk_channels=256,
        decoder_v_channels=None,
        decoder_cross_attention_widening_factor=1,
        decoder_query_inputs=False,
        decoder_query_patch_size=None,
        decoder_use_query_residual=False,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_backbone(self.__class__.__name__, backbone)
        check_positive_int("num_labels", num_labels)
        text_preprocessor = text_preprocessor_of(self.__class__.__name__, backbone)
        initializer = truncated_normal(backbone.initializer_range)

        # === Layers ===
        decoder_queries, decoder = position_query_decoder(
            backbone,
            text_preprocessor,
            num_cross_attention_heads=decoder_num_cross_attention_heads,
            qk_channels=decoder_qk_channels,
            v_channels=decoder_v_channels,
            cross_attention_widening_factor=decoder_cross_attention_widening_factor,
            use_query_residual=decoder_use_query_residual,
            dtype=dtype,
        )
        classifier = keras.layers.Dense(
            num_labels, kernel_initializer=initializer, dtype=dtype, name="classifier"
        )
        query_patches = query_patch_layers(backbone, text_preprocessor, decoder_query_patch_size, dtype)

        # === Functional graph ===
        inputs = backbone.task_inputs(padding_mask=True)
        encoded = backbone.encode(inputs, padding_mask=inputs["padding_mask"])
        queries = decoder_queries(encoded["encoder_inputs"])
        if decoder_query_inputs:
            queries = keras.layers.Add(dtype=dtype, name="query_inputs")([queries, encoded["encoder_inputs"]])
        if query_patches is not None:
            patches = apply_query_patches(query_patches, encoded["encoder_inputs"], inputs["padding_mask"])
            queries = keras.layers.Add(dtype=dtype, name="query_patch_features")([queries, patches])
        logits = classifier(decoder(queries, encoded["latents"]))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self._set_backbone(backbone, config)
        self.decoder_queries = decoder_queries
        self.query_patches = query_patches

    @classmethod
    def from_masked_lm(cls, masked_lm, num_labels=2, **kwargs):
        """A token classifier on `masked_lm`'s backbone (shared) with a copy of its decoder.

        The decoder queries and the `QueryDecoder` weights are copied from
        the masked LM (same layout); the classifier layer is new.

        Args:
            masked_lm: a `PerceiverMaskedLM` (e.g. from `from_transformers`,
                `from_deepmind` or `from_preset`).
            num_labels: int. Defaults to 2.
            **kwargs: other constructor arguments (`decoder_query_inputs`,
                `decoder_use_query_residual`, `id2label`, `name`, ...).

        Returns:
            A `PerceiverTokenClassifier` whose backbone is `masked_lm.backbone`.

        Raises:
            TypeError: if `masked_lm` is not a `PerceiverMaskedLM`.
        """
        from keras_perceiver.models.perceiver_masked_lm import PerceiverMaskedLM

        if not isinstance(masked_lm, PerceiverMaskedLM):
            raise TypeError(
                f"{cls.__name__}.from_masked_lm: expected a `PerceiverMaskedLM`. "
                f"Received: {type(masked_lm).__name__}"
            )
        head = {key: value for key, value in masked_lm.get_config().items() if key.startswith("decoder_")}
        model = cls(
            backbone=masked_lm.backbone,
            num_labels=num_labels,
            **{**head, **kwargs},
        )
        for name in ("decoder_queries", "query_patches", "decoder"):
            if name == "query_patches" and model.query_patches is None:
                continue
            model.get_layer(name).set_weights(masked_lm.get_layer(name).get_weights())
        return model

    @classmethod
    def from_hyperparameters(
        cls,
        num_labels=2,
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
        """Build from one flat argument list (text, latent-stack and head arguments).

        Args:
            num_labels: the head's number of labels per position.
            vocab_size, max_sequence_length, embedding_dim: `TextPreprocessor`
                arguments. Defaults: 262, 2048, 768 (the language perceiver).
            ngram_sizes, num_ngram_buckets, ngram_embedding_dim: the
                `TextPreprocessor`'s hashed n-gram embedding (none by default,
                as in the published models).
            dtype: dtype policy of every layer.
            name: optional model name.
            **stack: `PerceiverBackbone` latent-stack arguments (defaults:
                the `language_perceiver` backbone's) and the `decoder_*` /
                `id2label` head arguments.

        Returns:
            A `PerceiverTokenClassifier`.

        Raises:
            ValueError: for non-positive sizes (the constructors' errors).
        """
        stack, head = split_stack_arguments(stack)
        backbone = text_backbone(
            vocab_size,
            max_sequence_length,
            embedding_dim,
            dtype=dtype,
            ngram_sizes=ngram_sizes,
            num_ngram_buckets=num_ngram_buckets,
            ngram_embedding_dim=ngram_embedding_dim,
            **stack,
        )
        return cls(backbone=backbone, num_labels=num_labels, dtype=dtype, name=name, **head)

    def default_loss(self):
        """Per-position softmax cross-entropy on the logits (weight it with the padding mask)."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
