"""Text (UTF-8 bytes) classification and regression, single- or multi-task."""

import keras

from keras_perceiver.layers.task_queries import TaskQueries
from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.core_layers import build_decoder, build_encoder_and_processor, initializer
from keras_perceiver.models.perceiver_text_classifier_presets import PERCEIVER_TEXT_CLASSIFIER_PRESETS
from keras_perceiver.models.task_model import PerceiverTaskModel
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.postprocessors.multi_task_postprocessor import MultiTaskPostprocessor
from keras_perceiver.preprocessors.text_preprocessor import TextPreprocessor
from keras_perceiver.validation import check_choice, check_positive_int

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverTextClassifier(PerceiverTaskModel):
    """Token ids (B, L) -> logits (B, K), or a dict of logits for several tasks.

    The language perceiver's encoder and processor read the text; a single
    learned query (width D, query residual, as transformers'
    `PerceiverClassificationDecoder`) decodes the latents to K outputs.
    With `tasks`, one learned query per task (the paper's GLUE multi-task
    decoder) is decoded and each task has its own head.

    `problem_type` names the loss the outputs are meant for (transformers'
    convention): softmax cross-entropy (`"single_label_classification"`),
    sigmoid cross-entropy per class (`"multi_label_classification"`) or
    mean squared error (`"regression"`, K real values); see `default_loss()`.

    Source: Perceiver IO (arXiv 2107.14795) section 4.1; transformers
    `PerceiverForSequenceClassification`.

    Args:
        num_classes: int, K. Defaults to 2. Ignored with `tasks`.
        tasks: optional dict of task name -> number of outputs; returns a dict.
        problem_type: one of `PROBLEM_TYPES`. Defaults to
            `"single_label_classification"`.
        vocab_size, max_sequence_length, embedding_dim: text embedding
            arguments (see `TextPreprocessor`).
        num_latents, latent_dim, num_blocks, num_self_attends_per_block,
            num_cross_attention_heads, num_self_attention_heads, qk_channels,
            v_channels, cross_attention_shape_for_attention,
            cross_attention_widening_factor, self_attention_widening_factor,
            use_query_residual, activation, dropout, attention_dropout:
            encoder/processor arguments (see `PerceiverIO`). Defaults: the
            language perceiver.
        initializer_range: float, stddev of the truncated normal that
            initializes every kernel, latent array and embedding table the
            model builds (transformers' `initializer_range`). Defaults to 0.02;
            small models train faster from larger values (e.g. 0.2).
        dtype: dtype policy of every layer.

    Inputs (a dict):
        token_ids: (B, L) int32.
        padding_mask: optional (B, L) bool, True for real tokens.

    Returns:
        (B, K) logits, or dict task -> (B, K_task) with `tasks`.

    Raises:
        ValueError: for non-positive sizes or an unknown `problem_type`.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverTextClassifier
    >>> model = PerceiverTextClassifier(num_classes=3, max_sequence_length=32,
    ...     embedding_dim=16, num_latents=8, latent_dim=32, num_self_attends_per_block=1,
    ...     qk_channels=16, v_channels=32)
    >>> tuple(model({"token_ids": keras.ops.ones((2, 20), "int32")}).shape)
    (2, 3)
    """

    presets = PERCEIVER_TEXT_CLASSIFIER_PRESETS

    def __init__(
        self,
        num_classes=2,
        tasks=None,
        problem_type="single_label_classification",
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
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        initializer_range=0.02,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_positive_int("num_classes", num_classes)
        check_choice("problem_type", problem_type, PROBLEM_TYPES)
        decoder_config = dict(
            config,
            decoder_num_heads=1,
            decoder_qk_channels=None,
            decoder_v_channels=None,
            decoder_widening_factor=1,
            decoder_use_query_residual=True,
            output_channels=None if tasks else num_classes,
            query_mask_mode="ignore",
        )

        # === Layers ===
        text_preprocessor = TextPreprocessor(
            vocab_size,
            max_sequence_length,
            embedding_dim,
            embeddings_initializer=initializer(config),
            dtype=dtype,
            name="text_preprocessor",
        )
        encoder, processor = build_encoder_and_processor(config, dtype=dtype)
        if tasks:
            queries = TaskQueries(
                list(tasks), latent_dim, initializer=initializer(config), dtype=dtype, name="decoder_queries"
            )
            postprocessor = MultiTaskPostprocessor(
                tasks, kernel_initializer=initializer(config), dtype=dtype, name="postprocessor"
            )
        else:
            queries = TrainableQueries(
                1, latent_dim, initializer=initializer(config), dtype=dtype, name="decoder_queries"
            )
            postprocessor = ClassificationPostprocessor(dtype=dtype, name="postprocessor")
        decoder = build_decoder(decoder_config, dtype=dtype)

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask", optional=True)
        embeddings = text_preprocessor(token_ids)
        latents = processor(encoder(embeddings, padding_mask=padding_mask))
        outputs = postprocessor(decoder(queries(embeddings), latents))
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask}, outputs=outputs, **kwargs
        )

        # === Config ===
        self._perceiver_config = config

    def default_loss(self):
        """The Keras loss that matches `problem_type` (logits in, as the model outputs)."""
        if self._perceiver_config["problem_type"] == "regression":
            return keras.losses.MeanSquaredError()
        if self._perceiver_config["problem_type"] == "multi_label_classification":
            return keras.losses.BinaryCrossentropy(from_logits=True)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
