"""The original Perceiver classifier (arXiv 2103.03206): repeated cross-attends, pooled head."""

import keras

from keras_perceiver.layers.cross_attention import CrossAttention
from keras_perceiver.layers.cross_attention_encoder import CrossAttentionEncoder
from keras_perceiver.layers.latent_processor import LatentProcessor
from keras_perceiver.models.core_layers import initializer
from keras_perceiver.models.task_model import PerceiverTaskModel
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class Perceiver(PerceiverTaskModel):
    """Perceiver: `num_cross_attends` x (cross-attend, latent Transformer), then a pooled classifier.

    The latents re-read the inputs before every latent block. The first
    cross-attend and latent block have their own weights; with
    `share_weights=True` all later repeats share one cross-attention and one
    latent block (the weight sharing of the paper's ImageNet models, as in
    the common open-source ports). Logits come from the mean of the latents,
    layer-normalized, through a Dense layer.

    Source: Perceiver (arXiv 2103.03206) sections 2-3, figure 1.

    Args:
        input_shape: tuple, shape of one example without the batch, (M, C),
            or any shape that `preprocessor` maps to (M, C).
        num_classes: int, K.
        num_latents: int, N. Defaults to 512.
        latent_dim: int, D. Defaults to 1024.
        num_cross_attends: int, repeats of cross-attend + latent block.
            Defaults to 8.
        num_self_attends_per_block: int, layers per latent block. Defaults to 6.
        num_cross_attention_heads: int. Defaults to 1.
        num_self_attention_heads: int. Defaults to 8.
        qk_channels, v_channels: int or None, attention widths (see
            `CrossAttentionEncoder`, `LatentProcessor`).
        cross_attention_widening_factor, self_attention_widening_factor:
            int. Default 1.
        use_query_residual: bool. Defaults to True.
        share_weights: bool, share weights between repeats 2..K. Defaults to True.
        activation: `"gelu"` (default) or `"gelu_approximate"`.
        dropout, attention_dropout: float. Default 0.
        preprocessor: optional layer mapping `inputs` to (B, M, C) (e.g.
            pixels with Fourier positions).
        input_dtype: dtype of `inputs`. Defaults to `"float32"`.
        initializer_range: float, stddev of the truncated normal that
            initializes every kernel, latent array and embedding table the
            model builds (transformers' `initializer_range`). Defaults to 0.02;
            small models train faster from larger values (e.g. 0.2).
        dtype: dtype policy of every layer.

    Inputs (a dict):
        inputs: (B, *input_shape) tensor.
        padding_mask: optional (B, M) bool, True for real inputs.

    Returns:
        (B, num_classes) logits.

    Raises:
        ValueError: for non-positive sizes and, from the layers, inputs or
            masks of the wrong shape.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import Perceiver
    >>> model = Perceiver(input_shape=(20, 3), num_classes=4, num_latents=8, latent_dim=16,
    ...     num_cross_attends=2, num_self_attends_per_block=1, num_self_attention_heads=2)
    >>> tuple(model({"inputs": keras.ops.ones((2, 20, 3))}).shape)
    (2, 4)
    """

    LAYER_ARGUMENTS = ("preprocessor",)

    def __init__(
        self,
        input_shape,
        num_classes,
        num_latents=512,
        latent_dim=1024,
        num_cross_attends=8,
        num_self_attends_per_block=6,
        num_cross_attention_heads=1,
        num_self_attention_heads=8,
        qk_channels=None,
        v_channels=None,
        cross_attention_widening_factor=1,
        self_attention_widening_factor=1,
        use_query_residual=True,
        share_weights=True,
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        initializer_range=0.02,
        preprocessor=None,
        input_dtype="float32",
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        config["input_shape"] = tuple(input_shape)
        check_positive_int("num_classes", num_classes)
        check_positive_int("num_cross_attends", num_cross_attends)

        # === Layers ===
        common = dict(
            activation=activation,
            dropout=dropout,
            attention_dropout=attention_dropout,
            kernel_initializer=initializer(config),
            dtype=dtype,
        )
        encoder = CrossAttentionEncoder(
            num_latents,
            latent_dim,
            num_cross_attention_heads=num_cross_attention_heads,
            qk_channels=qk_channels,
            v_channels=v_channels,
            cross_attention_widening_factor=cross_attention_widening_factor,
            use_query_residual=use_query_residual,
            latent_initializer=initializer(config),
            name="encoder",
            **common,
        )

        def latent_block(name):
            return LatentProcessor(
                num_blocks=1,
                num_self_attends_per_block=num_self_attends_per_block,
                num_self_attention_heads=num_self_attention_heads,
                qk_channels=qk_channels,
                v_channels=v_channels,
                self_attention_widening_factor=self_attention_widening_factor,
                name=name,
                **common,
            )

        def cross_attend(name):
            return CrossAttention(
                num_heads=num_cross_attention_heads,
                qk_channels=qk_channels,
                v_channels=v_channels,
                widening_factor=cross_attention_widening_factor,
                use_query_residual=use_query_residual,
                name=name,
                **common,
            )

        repeats = range(1, num_cross_attends)
        if share_weights:
            shared = (cross_attend("cross_attention_shared"), latent_block("processor_shared"))
            later = [shared for _ in repeats]
        else:
            later = [(cross_attend(f"cross_attention_{r}"), latent_block(f"processor_{r}")) for r in repeats]
        head_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype, name="head_norm")
        head = keras.layers.Dense(
            num_classes, kernel_initializer=initializer(config), dtype=dtype, name="classifier"
        )

        # === Functional graph ===
        inputs = keras.Input(shape=config["input_shape"], dtype=input_dtype, name="inputs")
        x = preprocessor(inputs) if preprocessor is not None else inputs
        padding_mask = keras.Input(shape=(x.shape[1],), dtype="bool", name="padding_mask", optional=True)
        latents = latent_block("processor_0")(encoder(x, padding_mask=padding_mask))
        for cross_attention, processor in later:
            latents = processor(cross_attention(latents, x, padding_mask=padding_mask))
        pooled = keras.layers.GlobalAveragePooling1D(dtype=dtype, name="pool")(latents)
        logits = head(head_norm(pooled))
        super().__init__(inputs={"inputs": inputs, "padding_mask": padding_mask}, outputs=logits, **kwargs)

        # === Config ===
        self._perceiver_config = config
