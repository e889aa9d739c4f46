"""Image classification with Perceiver IO (the paper's ImageNet vision perceivers)."""

import keras

from keras_perceiver.models.perceiver_backbone import PerceiverBackbone
from keras_perceiver.models.perceiver_backbone_presets import VISION_STACK
from keras_perceiver.models.perceiver_classifier import PerceiverClassifier
from keras_perceiver.models.perceiver_image_classifier_presets import PERCEIVER_IMAGE_CLASSIFIER_PRESETS
from keras_perceiver.models.task_model import (
    split_stack_arguments,
)
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.validation import check_shape


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverImageClassifier(PerceiverClassifier):
    """Images (B, H, W, C) -> logits (B, num_classes): a classification head on a `PerceiverBackbone`.

    Backbone: `ImagePreprocessor` (pixels, 1x1 conv or conv stem, with
    Fourier or learned positions) -> encoder -> processor. Head: one learned
    query (width D) decoded by a `QueryDecoder` (query residual) to
    `num_classes` logits, as transformers' `PerceiverClassificationDecoder`.
    Presets: `vision_perceiver_learned`, `vision_perceiver_fourier`,
    `vision_perceiver_conv` (their backbones are `PerceiverBackbone` presets
    of the same names).

    Source: Perceiver IO (arXiv 2107.14795) section 4.5; transformers
    `PerceiverForImageClassificationLearned` / `...Fourier` /
    `...ConvProcessing`.

    Args:
        backbone: a `PerceiverBackbone` whose input is the images (B, H, W,
            C) (an `ImagePreprocessor` as its `input_preprocessor`), e.g.
            `PerceiverBackbone.from_preset("vision_perceiver_fourier")`.
        num_classes: int, K. Defaults to 1000.
        decoder_num_cross_attention_heads: int. Defaults to 1.
        decoder_qk_channels, decoder_v_channels: int or None; None uses the
            latent width D. Default None.
        decoder_cross_attention_widening_factor: int. Defaults to 1.
        decoder_use_query_residual: bool, add the query to the attention
            output (transformers' classification decoder). Defaults to True.
        dtype: dtype policy of the head's layers (the backbone keeps its
            own).

    Inputs (a dict):
        images (or the backbone's `input_name`): (B, H, W, C) float (or
            integer) images, channels last. H and W may differ from the
            backbone's `input_shape`, as in transformers: Fourier positions
            are computed for the actual size and a learned position table is
            resampled bicubically (transformers' `interpolate_pos_encoding`).
            Exported SavedModels and TFLite files keep the configured size.

    Returns:
        (B, num_classes) logits.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`.
        ValueError: for a non-positive `num_classes`.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverBackbone, PerceiverImageClassifier
    >>> from keras_perceiver.preprocessors import ImagePreprocessor
    >>> backbone = PerceiverBackbone(input_shape=(8, 8, 1), input_name="images",
    ...     input_preprocessor=ImagePreprocessor(num_bands=4), num_latents=8, latent_dim=16,
    ...     num_blocks=1, num_self_attends_per_block=1, num_cross_attention_heads=1,
    ...     num_self_attention_heads=2)
    >>> model = PerceiverImageClassifier(backbone, num_classes=10)
    >>> tuple(model({"images": keras.ops.ones((2, 8, 8, 1))}).shape)
    (2, 10)
    """

    presets = PERCEIVER_IMAGE_CLASSIFIER_PRESETS

    def __init__(self, backbone, **kwargs):
        super().__init__(backbone, **kwargs)
        # Any image height and width, as transformers' image classifiers (`ImagePreprocessor` computes the
        # positions of the actual grid, or resamples a learned table).
        self.free_input_axes = {name: (1, 2) for name in self.input}
        self.input_spec = [
            keras.InputSpec(
                shape=(None, None, None, tensor.shape[-1]), allow_last_axis_squeeze=True, name=name
            )
            for name, tensor in sorted(self.input.items())
        ]

    @classmethod
    def from_hyperparameters(
        cls,
        image_shape=(224, 224, 3),
        num_classes=1000,
        prep_type="pixels",
        output_channels=64,
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
        dtype=None,
        name=None,
        **stack,
    ):
        """Build from one flat argument list (the form before the backbone/head split).

        Args:
            image_shape: tuple (H, W, C). Defaults to (224, 224, 3).
            num_classes: int, K. Defaults to 1000.
            prep_type, output_channels, spatial_downsample, conv_padding,
                conv2d_use_batchnorm, position_encoding_type, num_bands,
                max_resolution, concat_pos, sine_only, num_channels,
                concat_or_add_pos, project_pos_dim: `ImagePreprocessor`
                arguments.
            dtype: dtype policy of every layer.
            name: optional model name.
            **stack: `PerceiverBackbone` latent-stack arguments (defaults:
                the `vision_perceiver_fourier` backbone's) and `decoder_*`
                head arguments.

        Returns:
            A `PerceiverImageClassifier`.

        Raises:
            ValueError: for an `image_shape` that is not (H, W, C), 3
                positive integers, and the errors of the constructors.
        """
        check_shape("image_shape", image_shape, length=3)
        stack, head = split_stack_arguments(stack)
        preprocessor = ImagePreprocessor(
            prep_type=prep_type,
            output_channels=output_channels,
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
        backbone = PerceiverBackbone(
            input_shape=tuple(image_shape),
            input_name="images",
            input_preprocessor=preprocessor,
            **{**VISION_STACK, **stack},
            dtype=dtype,
        )
        return cls(backbone=backbone, num_classes=num_classes, dtype=dtype, name=name, **head)
