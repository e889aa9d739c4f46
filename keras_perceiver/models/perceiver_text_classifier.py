"""Text (UTF-8 bytes or tokens) classification and regression, single- or multi-task."""

import keras

from keras_perceiver.layers.task_queries import TaskQueries
from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.class_names import ClassNamesMixin
from keras_perceiver.models.perceiver_backbone import truncated_normal
from keras_perceiver.models.perceiver_text_classifier_presets import PERCEIVER_TEXT_CLASSIFIER_PRESETS
from keras_perceiver.models.task_model import (
    PerceiverTaskModel,
    build_query_decoder,
    check_backbone,
    split_stack_arguments,
)
from keras_perceiver.models.text_backbone import text_backbone
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.postprocessors.multi_task_postprocessor import MultiTaskPostprocessor
from keras_perceiver.validation import check_choice, check_positive_int

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverTextClassifier(ClassNamesMixin, PerceiverTaskModel):
    """Token ids (B, L) -> logits (B, K), or a dict of logits for several tasks: a head on a backbone.

    Backbone: the language perceiver's `TextPreprocessor` -> encoder ->
    processor (e.g. a pretrained masked LM's:
    `PerceiverTextClassifier(backbone=masked_lm.backbone, num_classes=2)`
    shares its weights). Head: a single learned query (width D, query
    residual, as transformers' `PerceiverClassificationDecoder`) decoded by
    a `QueryDecoder` to K outputs. With `tasks`, one learned query per task
    (the paper's GLUE multi-task decoder) is decoded and each task has its
    own Dense head. Preset: `language_perceiver_classifier` (the
    `language_perceiver` backbone, 206,098,690 parameters with 2 classes).

    `problem_type` names the loss the outputs are meant for (transformers'
    convention): softmax cross-entropy (`"single_label_classification"`),
    sigmoid cross-entropy per class (`"multi_label_classification"`) or
    mean squared error (`"regression"`, K real values); see `default_loss()`.

    Source: Perceiver IO (arXiv 2107.14795) section 4.1; transformers
    `PerceiverForSequenceClassification`.

    Args:
        backbone: a `PerceiverBackbone` on token ids (a `TextPreprocessor`
            as its `input_preprocessor`), e.g.
            `PerceiverBackbone.from_preset("language_perceiver")` or a
            `PerceiverMaskedLM`'s `backbone`.
        num_classes: int, K. Defaults to 2. Ignored with `tasks`.
        tasks: optional dict of task name -> number of outputs; the model
            then returns a dict.
        problem_type: one of `PROBLEM_TYPES`. Defaults to
            `"single_label_classification"`.
        decoder_num_cross_attention_heads: int. Defaults to 1.
        decoder_qk_channels, decoder_v_channels: int or None; None uses the
            latent width D. Default None.
        decoder_cross_attention_widening_factor: int. Defaults to 1.
        decoder_use_query_residual: bool, add the query to the attention
            output (transformers' classification decoder). Defaults to True.
        dtype: dtype policy of the head's layers (the backbone keeps its
            own).

    Inputs (a dict):
        token_ids: (B, L) int32 (or the backbone's `input_name`).
        padding_mask: optional (B, L) bool, True for real tokens.

    Returns:
        (B, K) logits, or dict task -> (B, K_task) with `tasks`.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`, or
            token ids that are not integers.
        ValueError: for a non-positive `num_classes` or task size, an empty
            `tasks` dict, or an unknown `problem_type`.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverBackbone, PerceiverTextClassifier
    >>> from keras_perceiver.preprocessors import TextPreprocessor
    >>> backbone = PerceiverBackbone(input_shape=(None,), input_name="token_ids",
    ...     input_dtype="int32", input_preprocessor=TextPreprocessor(262, 32, 16), num_latents=8,
    ...     latent_dim=32, num_self_attends_per_block=1, qk_channels=16, v_channels=32)
    >>> model = PerceiverTextClassifier(backbone, num_classes=3)
    >>> tuple(model({"token_ids": keras.ops.ones((2, 20), "int32")}).shape)
    (2, 3)
    """

    presets = PERCEIVER_TEXT_CLASSIFIER_PRESETS

    def __init__(
        self,
        backbone,
        num_classes=2,
        tasks=None,
        problem_type="single_label_classification",
        decoder_num_cross_attention_heads=1,
        decoder_qk_channels=None,
        decoder_v_channels=None,
        decoder_cross_attention_widening_factor=1,
        decoder_use_query_residual=True,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_backbone(self.__class__.__name__, backbone)
        check_positive_int("num_classes", num_classes)
        check_choice("problem_type", problem_type, PROBLEM_TYPES)
        if tasks is not None:
            config["tasks"] = dict(tasks)

        # === Layers ===
        initializer = truncated_normal(backbone.initializer_range)
        if tasks:
            queries = TaskQueries(
                list(tasks), backbone.latent_dim, initializer=initializer, dtype=dtype, name="decoder_queries"
            )
            postprocessor = MultiTaskPostprocessor(
                tasks, kernel_initializer=initializer, dtype=dtype, name="postprocessor"
            )
        else:
            queries = TrainableQueries(
                1, backbone.latent_dim, initializer=initializer, dtype=dtype, name="decoder_queries"
            )
            postprocessor = ClassificationPostprocessor(dtype=dtype, name="postprocessor")
        decoder = build_query_decoder(
            backbone,
            num_cross_attention_heads=decoder_num_cross_attention_heads,
            qk_channels=decoder_qk_channels,
            v_channels=decoder_v_channels,
            cross_attention_widening_factor=decoder_cross_attention_widening_factor,
            use_query_residual=decoder_use_query_residual,
            output_channels=None if tasks else num_classes,
            query_mask_mode="ignore",
            dtype=dtype,
        )

        # === Functional graph ===
        inputs = backbone.task_inputs(padding_mask=True)
        encoded = backbone.encode(inputs, padding_mask=inputs.get("padding_mask"))
        outputs = postprocessor(decoder(queries(encoded["encoder_inputs"]), encoded["latents"]))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self._set_backbone(backbone, config)

    @classmethod
    def from_hyperparameters(
        cls,
        num_classes=2,
        tasks=None,
        problem_type="single_label_classification",
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

        Args:
            num_classes, tasks, problem_type: the head's arguments (see the
                class).
            vocab_size, max_sequence_length, embedding_dim: `TextPreprocessor`
                arguments. Defaults: 262, 2048, 768 (the language perceiver).
            ngram_sizes, num_ngram_buckets, ngram_embedding_dim: the
                `TextPreprocessor`'s hashed n-gram embedding (none by default,
                as in the published models).
            dtype: dtype policy of every layer.
            name: optional model name.
            **stack: `PerceiverBackbone` latent-stack arguments (defaults:
                the `language_perceiver` backbone's) and the `decoder_*`
                head arguments.

        Returns:
            A `PerceiverTextClassifier`.

        Raises:
            ValueError: for non-positive sizes or an unknown `problem_type`
                (the constructors' errors).
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
        return cls(
            backbone=backbone,
            num_classes=num_classes,
            tasks=tasks,
            problem_type=problem_type,
            dtype=dtype,
            name=name,
            **head,
        )

    def default_loss(self):
        """The Keras loss that matches `problem_type` (logits in, as the model outputs)."""
        if self._perceiver_config["problem_type"] == "regression":
            return keras.losses.MeanSquaredError()
        if self._perceiver_config["problem_type"] == "multi_label_classification":
            return keras.losses.BinaryCrossentropy(from_logits=True)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
