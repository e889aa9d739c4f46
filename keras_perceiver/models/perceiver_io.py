"""The generic Perceiver IO Functional model: preprocess -> encode -> process -> decode -> postprocess."""

import keras

from keras_perceiver.models.perceiver_backbone import PerceiverBackbone
from keras_perceiver.models.task_model import (
    PerceiverTaskModel,
    build_query_decoder,
    check_backbone,
    split_stack_arguments,
)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverIO(PerceiverTaskModel):
    """Perceiver IO: a backbone (inputs -> latents (B, N, D)) and an optional decoder to outputs (B, O, E').

    Graph: the backbone (`input_preprocessor` -> `CrossAttentionEncoder`
    masked by `padding_mask` -> `LatentProcessor`) -> if a `query_builder`
    is given, `QueryDecoder` at its queries (masked by `query_mask`) ->
    optional `postprocessor`. Without a query builder the model returns the
    latents, like transformers `PerceiverModel` without a decoder.

    Source: Perceiver IO (arXiv 2107.14795) section 2; transformers
    `PerceiverModel`.

    Args:
        backbone: a `PerceiverBackbone`.
        query_builder: optional layer called as `query_builder(x)` (or with
            `output_indices=`) on the encoder inputs x (B, M, C), returning
            queries (B, O, E). Defaults to None.
        postprocessor: optional layer applied to the decoder outputs.
        decoder_num_cross_attention_heads: int. Defaults to 1.
        decoder_qk_channels, decoder_v_channels: int or None; None uses the
            latent width D. Default None.
        decoder_cross_attention_widening_factor: int. Defaults to 1.
        decoder_use_query_residual: bool. Defaults to False.
        decoder_output_channels: int or None, final projection width of the
            decoder; None keeps the attention output width. Defaults to None.
        query_mask_mode: `"zero"` (DeepMind, default) or `"ignore"` (HF).
        use_query_mask: bool, add a `query_mask` (B, O) input.
        use_output_indices: bool, add an `output_indices` (B, O) int32 input
            that selects which queries to decode.
        dtype: dtype policy of the head's layers.

    Inputs (a dict):
        the backbone's input(s) (`"inputs"` by default): (B, *input_shape).
        padding_mask: optional (B, M) bool, True for real inputs.
        query_mask: (B, O) bool, when `use_query_mask`.
        output_indices: (B, O) int32, when `use_output_indices`.

    Returns:
        latents (B, N, D) without query builder; otherwise the decoder
        outputs (B, O, decoder_output_channels or E), postprocessed if asked.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`.
        ValueError: for `use_query_mask`/`use_output_indices` without a query
            builder, or inputs/masks of wrong shape (raised by the layers
            with the received values).

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import TrainableQueries
    >>> from keras_perceiver.models import PerceiverBackbone, PerceiverIO
    >>> backbone = PerceiverBackbone(input_shape=(50, 3), num_latents=8, latent_dim=16,
    ...     num_self_attends_per_block=1, num_cross_attention_heads=1, num_self_attention_heads=2)
    >>> model = PerceiverIO(backbone, query_builder=TrainableQueries(4, 6), decoder_output_channels=5)
    >>> tuple(model({"inputs": keras.ops.ones((2, 50, 3))}).shape)
    (2, 4, 5)
    """

    LAYER_ARGUMENTS = ("backbone", "query_builder", "postprocessor")

    def __init__(
        self,
        backbone,
        query_builder=None,
        postprocessor=None,
        decoder_num_cross_attention_heads=1,
        decoder_qk_channels=None,
        decoder_v_channels=None,
        decoder_cross_attention_widening_factor=1,
        decoder_use_query_residual=False,
        decoder_output_channels=None,
        query_mask_mode="zero",
        use_query_mask=False,
        use_output_indices=False,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_backbone(self.__class__.__name__, backbone)
        if (use_query_mask or use_output_indices) and query_builder is None:
            raise ValueError(
                "`use_query_mask`/`use_output_indices` need a `query_builder`. "
                f"Received: use_query_mask={use_query_mask}, use_output_indices={use_output_indices}, "
                "query_builder=None"
            )

        # === Layers ===
        decoder = None
        if query_builder is not None:
            decoder = build_query_decoder(
                backbone,
                num_cross_attention_heads=decoder_num_cross_attention_heads,
                qk_channels=decoder_qk_channels,
                v_channels=decoder_v_channels,
                cross_attention_widening_factor=decoder_cross_attention_widening_factor,
                use_query_residual=decoder_use_query_residual,
                output_channels=decoder_output_channels,
                query_mask_mode=query_mask_mode,
                dtype=dtype,
            )

        # === Functional graph ===
        inputs = backbone.task_inputs(padding_mask=True)
        encoded = backbone.encode(inputs, padding_mask=inputs.get("padding_mask"))
        outputs = encoded["latents"]
        if query_builder is not None:
            query_kwargs = {}
            if use_output_indices:
                inputs["output_indices"] = keras.Input(shape=(None,), dtype="int32", name="output_indices")
                query_kwargs["output_indices"] = inputs["output_indices"]
            queries = query_builder(encoded["encoder_inputs"], **query_kwargs)
            query_mask = None
            if use_query_mask:
                inputs["query_mask"] = keras.Input(shape=(queries.shape[1],), dtype="bool", name="query_mask")
                query_mask = inputs["query_mask"]
            outputs = decoder(queries, encoded["latents"], query_mask=query_mask)
            if postprocessor is not None:
                outputs = postprocessor(outputs)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self._set_backbone(backbone, config)

    @classmethod
    def from_hyperparameters(
        cls,
        input_shape,
        preprocessor=None,
        input_dtype="float32",
        output_channels=None,
        dtype=None,
        name=None,
        **arguments,
    ):
        """Build from one flat argument list (the form before the backbone/head split).

        Args:
            input_shape: tuple, shape of one example without the batch.
            preprocessor: optional layer mapping the inputs to (B, M, C)
                (the backbone's `input_preprocessor`).
            input_dtype: dtype of the inputs. Defaults to `"float32"`.
            output_channels: the decoder's final width
                (`decoder_output_channels`).
            dtype: dtype policy of every layer.
            name: optional model name.
            **arguments: `PerceiverBackbone` latent-stack arguments and the
                head's arguments (`query_builder`, `decoder_*`, ...).

        Returns:
            A `PerceiverIO`.
        """
        stack, head = split_stack_arguments(arguments)
        backbone = PerceiverBackbone(
            input_shape=input_shape,
            input_preprocessor=preprocessor,
            input_dtype=input_dtype,
            dtype=dtype,
            **stack,
        )
        return cls(backbone, decoder_output_channels=output_channels, dtype=dtype, name=name, **head)
