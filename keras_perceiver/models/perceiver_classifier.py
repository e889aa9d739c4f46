"""The classification head shared by the image and audio classifiers: one learned query decoded to logits."""

import keras

from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.class_names import ClassNamesMixin
from keras_perceiver.models.perceiver_backbone import truncated_normal
from keras_perceiver.models.task_model import PerceiverTaskModel, build_query_decoder, check_backbone
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverClassifier(ClassNamesMixin, PerceiverTaskModel):
    """A backbone's inputs -> logits (B, num_classes): one learned query (B, 1, D) decoded to K logits.

    The head of transformers' `PerceiverClassificationDecoder`: a trainable
    query of the latent width D cross-attends to the latents (query
    residual), and the decoder's final projection gives the logits.
    `PerceiverImageClassifier` and `PerceiverAudioClassifier` are this head
    with their modalities' presets and flat forms.

    Source: Perceiver IO (arXiv 2107.14795) sections 4.3 and 4.5;
    transformers `PerceiverClassificationDecoder`.

    Args:
        backbone: a `PerceiverBackbone`.
        num_classes: int, K. Defaults to 1000.
        decoder_num_cross_attention_heads: int. Defaults to 1.
        decoder_qk_channels, decoder_v_channels: int or None; None uses the
            latent width D. Default None.
        decoder_cross_attention_widening_factor: int. Defaults to 1.
        decoder_use_query_residual: bool, add the query to the attention
            output. Defaults to True.
        dtype: dtype policy of the head's layers (the backbone keeps its
            own).

    Inputs (a dict):
        the backbone's named input(s).

    Returns:
        (B, num_classes) logits.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`.
        ValueError: for a non-positive `num_classes`.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverBackbone, PerceiverClassifier
    >>> backbone = PerceiverBackbone(input_shape=(20, 3), num_latents=8, latent_dim=16,
    ...     num_self_attends_per_block=1, num_cross_attention_heads=1, num_self_attention_heads=2)
    >>> tuple(PerceiverClassifier(backbone, num_classes=4)({"inputs": keras.ops.ones((2, 20, 3))}).shape)
    (2, 4)
    """

    def __init__(
        self,
        backbone,
        num_classes=1000,
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

        # === Layers ===
        queries = TrainableQueries(
            1,
            backbone.latent_dim,
            initializer=truncated_normal(backbone.initializer_range),
            dtype=dtype,
            name="decoder_queries",
        )
        decoder = build_query_decoder(
            backbone,
            num_cross_attention_heads=decoder_num_cross_attention_heads,
            qk_channels=decoder_qk_channels,
            v_channels=decoder_v_channels,
            cross_attention_widening_factor=decoder_cross_attention_widening_factor,
            use_query_residual=decoder_use_query_residual,
            output_channels=num_classes,
            dtype=dtype,
        )
        postprocessor = ClassificationPostprocessor(dtype=dtype, name="postprocessor")

        # === Functional graph ===
        inputs = backbone.task_inputs()
        encoded = backbone.encode(inputs)
        logits = postprocessor(decoder(queries(encoded["encoder_inputs"]), encoded["latents"]))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self._set_backbone(backbone, config)
