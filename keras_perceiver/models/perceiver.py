"""The original Perceiver classifier (arXiv 2103.03206): repeated cross-attends, pooled head."""

import keras

from keras_perceiver.models.perceiver_backbone import PerceiverBackbone, truncated_normal
from keras_perceiver.models.task_model import PerceiverTaskModel, check_backbone
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class Perceiver(PerceiverTaskModel):
    """Perceiver: a pooled classification head on a backbone that cross-attends `num_cross_attends` times.

    The backbone's latents re-read the inputs before every latent block
    (`PerceiverBackbone(num_cross_attends=8, share_cross_attend_weights=True)`:
    the first cross-attend and latent block have their own weights, all
    later repeats share one, the weight sharing of the paper's ImageNet
    models). Head: the mean of the latents, layer-normalized, through a
    Dense layer to the logits.

    Source: Perceiver (arXiv 2103.03206) sections 2-3, figure 1.

    Args:
        backbone: a `PerceiverBackbone` (with `num_cross_attends` > 1 for the
            Perceiver's repeated cross-attends).
        num_classes: int, K.
        dtype: dtype policy of the head's layers.

    Inputs (a dict):
        the backbone's input (`"inputs"` by default): (B, *input_shape).
        padding_mask: optional (B, M) bool, True for real inputs.

    Returns:
        (B, num_classes) logits.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`.
        ValueError: for a non-positive `num_classes` and, from the layers,
            inputs or masks of the wrong shape.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import Perceiver, PerceiverBackbone
    >>> backbone = PerceiverBackbone(input_shape=(20, 3), num_latents=8, latent_dim=16,
    ...     num_cross_attends=2, num_self_attends_per_block=1, num_cross_attention_heads=1,
    ...     num_self_attention_heads=2)
    >>> model = Perceiver(backbone, num_classes=4)
    >>> tuple(model({"inputs": keras.ops.ones((2, 20, 3))}).shape)
    (2, 4)
    """

    def __init__(self, backbone, num_classes, dtype=None, **kwargs):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_backbone(self.__class__.__name__, backbone)
        check_positive_int("num_classes", num_classes)

        # === Layers ===
        pool = keras.layers.GlobalAveragePooling1D(dtype=dtype, name="pool")
        head_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype, name="head_norm")
        head = keras.layers.Dense(
            num_classes,
            kernel_initializer=truncated_normal(backbone.initializer_range),
            dtype=dtype,
            name="classifier",
        )

        # === Functional graph ===
        inputs = backbone.task_inputs(padding_mask=True)
        latents = backbone.encode(inputs, padding_mask=inputs.get("padding_mask"))["latents"]
        logits = head(head_norm(pool(latents)))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self._set_backbone(backbone, config)

    @classmethod
    def from_hyperparameters(
        cls,
        input_shape,
        num_classes,
        num_latents=512,
        latent_dim=1024,
        num_cross_attends=8,
        num_self_attends_per_block=6,
        num_cross_attention_heads=1,
        share_weights=True,
        preprocessor=None,
        input_dtype="float32",
        dtype=None,
        name=None,
        **stack,
    ):
        """Build from one flat argument list (the form before the backbone/head split).

        Args:
            input_shape: tuple, shape of one example without the batch.
            num_classes: int, K.
            num_latents, latent_dim, num_cross_attends,
                num_self_attends_per_block, num_cross_attention_heads: the
                Perceiver's defaults (512, 1024, 8, 6, 1).
            share_weights: bool, `share_cross_attend_weights`.
            preprocessor: optional layer mapping the inputs to (B, M, C).
            input_dtype: dtype of the inputs. Defaults to `"float32"`.
            dtype: dtype policy of every layer.
            name: optional model name.
            **stack: other `PerceiverBackbone` latent-stack arguments.

        Returns:
            A `Perceiver`.
        """
        backbone = PerceiverBackbone(
            input_shape=input_shape,
            input_preprocessor=preprocessor,
            input_dtype=input_dtype,
            num_latents=num_latents,
            latent_dim=latent_dim,
            num_blocks=1,
            num_cross_attends=num_cross_attends,
            num_self_attends_per_block=num_self_attends_per_block,
            num_cross_attention_heads=num_cross_attention_heads,
            share_cross_attend_weights=share_weights,
            dtype=dtype,
            **stack,
        )
        return cls(backbone, num_classes=num_classes, dtype=dtype, name=name)
