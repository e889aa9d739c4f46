"""Image classification with Perceiver IO (the paper's ImageNet vision perceivers)."""

import keras

from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.core_layers import build_decoder, build_encoder_and_processor, initializer
from keras_perceiver.models.perceiver_image_classifier_presets import PERCEIVER_IMAGE_CLASSIFIER_PRESETS
from keras_perceiver.models.task_model import PerceiverTaskModel
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverImageClassifier(PerceiverTaskModel):
    """Images (B, H, W, C) -> logits (B, num_classes).

    `ImagePreprocessor` (pixels, 1x1 conv or conv stem, with Fourier or
    learned positions) -> encoder -> processor -> one learned query (width
    D, query residual) decoded to `num_classes` logits, as transformers'
    `PerceiverClassificationDecoder`. Presets: `vision_perceiver_learned`,
    `vision_perceiver_fourier`, `vision_perceiver_conv`.

    Source: Perceiver IO (arXiv 2107.14795) section 4.5; transformers
    `PerceiverForImageClassificationLearned` / `...Fourier` /
    `...ConvProcessing`.

    Args:
        image_shape: tuple (H, W, C). Defaults to (224, 224, 3).
        num_classes: int, K. Defaults to 1000.
        prep_type, out_channels, spatial_downsample, conv_padding,
            conv2d_use_batchnorm, position_encoding_type, num_bands,
            max_resolution, concat_pos, sine_only, num_channels,
            concat_or_add_pos, project_pos_dim: `ImagePreprocessor` arguments.
        num_latents, latent_dim, num_blocks, num_self_attends_per_block,
            num_cross_attention_heads, num_self_attention_heads, qk_channels,
            v_channels, cross_attention_shape_for_attention,
            cross_attention_widening_factor, self_attention_widening_factor,
            use_query_residual, activation, dropout, attention_dropout:
            encoder/processor arguments (see `PerceiverIO`).
        initializer_range: float, stddev of the truncated normal that
            initializes every kernel, latent array and embedding table the
            model builds (transformers' `initializer_range`). Defaults to 0.02;
            small models train faster from larger values (e.g. 0.2).
        dtype: dtype policy of every layer.

    Inputs (a dict):
        images: (B, H, W, C) float (or integer) images, channels last.

    Returns:
        (B, num_classes) logits.

    Raises:
        ValueError: for non-positive sizes or invalid preprocessing
            arguments (from `ImagePreprocessor`).

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverImageClassifier
    >>> model = PerceiverImageClassifier(image_shape=(8, 8, 1), num_classes=10, num_bands=4,
    ...     num_latents=8, latent_dim=16, num_blocks=1, num_self_attends_per_block=1,
    ...     num_self_attention_heads=2)
    >>> tuple(model({"images": keras.ops.ones((2, 8, 8, 1))}).shape)
    (2, 10)
    """

    presets = PERCEIVER_IMAGE_CLASSIFIER_PRESETS

    def __init__(
        self,
        image_shape=(224, 224, 3),
        num_classes=1000,
        prep_type="pixels",
        out_channels=64,
        spatial_downsample=1,
        conv_padding="transformers",
        conv2d_use_batchnorm=True,
        position_encoding_type="fourier",
        num_bands=64,
        max_resolution=None,
        concat_pos=True,
        sine_only=False,
        num_channels=256,
        concat_or_add_pos="concat",
        project_pos_dim=None,
        num_latents=512,
        latent_dim=1024,
        num_blocks=8,
        num_self_attends_per_block=6,
        num_cross_attention_heads=1,
        num_self_attention_heads=8,
        qk_channels=None,
        v_channels=None,
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
        config["image_shape"] = tuple(image_shape)
        if config["max_resolution"] is not None:
            config["max_resolution"] = tuple(max_resolution)
        check_positive_int("num_classes", num_classes)
        if len(config["image_shape"]) != 3:
            raise ValueError(f"`image_shape` must be (H, W, C). Received: image_shape={image_shape!r}")
        decoder_config = dict(
            config,
            decoder_num_heads=1,
            decoder_qk_channels=None,
            decoder_v_channels=None,
            decoder_widening_factor=1,
            decoder_use_query_residual=True,
            output_channels=num_classes,
            query_mask_mode="ignore",
        )

        # === Layers ===
        preprocessor = ImagePreprocessor(
            prep_type=prep_type,
            out_channels=out_channels,
            spatial_downsample=spatial_downsample,
            conv_padding=conv_padding,
            conv2d_use_batchnorm=conv2d_use_batchnorm,
            position_encoding_type=position_encoding_type,
            num_bands=num_bands,
            max_resolution=max_resolution,
            concat_pos=concat_pos,
            sine_only=sine_only,
            num_channels=num_channels,
            concat_or_add_pos=concat_or_add_pos,
            project_pos_dim=project_pos_dim,
            dtype=dtype,
            name="image_preprocessor",
        )
        encoder, processor = build_encoder_and_processor(config, dtype=dtype)
        queries = TrainableQueries(
            1, latent_dim, initializer=initializer(config), dtype=dtype, name="decoder_queries"
        )
        decoder = build_decoder(decoder_config, dtype=dtype)
        postprocessor = ClassificationPostprocessor(dtype=dtype, name="postprocessor")

        # === Functional graph ===
        images = keras.Input(shape=config["image_shape"], name="images")
        x = preprocessor(images)
        latents = processor(encoder(x))
        logits = postprocessor(decoder(queries(x), latents))
        super().__init__(inputs={"images": images}, outputs=logits, **kwargs)

        # === Config ===
        self._perceiver_config = config
