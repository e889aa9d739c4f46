"""The generic Perceiver IO Functional model: preprocess -> encode -> process -> decode -> postprocess."""

import keras

from keras_perceiver.models.core_layers import build_decoder, build_encoder_and_processor
from keras_perceiver.models.task_model import PerceiverTaskModel
from keras_perceiver.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverIO(PerceiverTaskModel):
    """Perceiver IO: inputs (B, M, C) -> latents (B, N, D) -> outputs (B, O, E').

    Graph: optional `preprocessor` (e.g. pixels + positions) ->
    `CrossAttentionEncoder` (masked by `padding_mask`) -> `LatentProcessor`
    -> if a `query_builder` is given, `QueryDecoder` at its queries (masked
    by `query_mask`) -> optional `postprocessor`. Without a query builder
    the model returns the latents, like transformers `PerceiverModel`
    without a decoder.

    Source: Perceiver IO (arXiv 2107.14795) section 2; transformers
    `PerceiverModel`.

    Args:
        input_shape: tuple, shape of one example without the batch, e.g.
            (M, C) or (H, W, C) with an image preprocessor; M may be None.
        num_latents: int, N. Defaults to 256.
        latent_dim: int, D. Defaults to 1280.
        num_blocks: int, repeats of the self-attention block (shared
            weights). Defaults to 1.
        num_self_attends_per_block: int, L. Defaults to 26.
        num_cross_attention_heads: int, encoder heads. Defaults to 8.
        num_self_attention_heads: int. Defaults to 8.
        qk_channels: int or None, query/key width of encoder and processor.
        v_channels: int or None, value width of encoder and processor.
        cross_attention_shape_for_attention: `"kv"` or `"q"`.
        cross_attention_widening_factor: int. Defaults to 1.
        self_attention_widening_factor: int. Defaults to 1.
        use_query_residual: bool, encoder query residual. Defaults to True.
        decoder_num_heads: int. Defaults to 1.
        decoder_qk_channels, decoder_v_channels: int or None; None uses the
            latent width D.
        decoder_widening_factor: int. Defaults to 1.
        decoder_use_query_residual: bool. Defaults to False.
        output_channels: int or None, final projection width of the decoder.
        query_mask_mode: `"zero"` (DeepMind, default) or `"ignore"` (HF).
        activation: `"gelu"` (exact, default) or `"gelu_approximate"`.
        dropout, attention_dropout: float. Default 0.
        preprocessor: optional layer mapping `inputs` to (B, M, C).
        query_builder: optional layer called as `query_builder(x)` (or with
            `output_indices=`) on the preprocessed inputs x, returning
            queries (B, O, E).
        postprocessor: optional layer applied to the decoder outputs.
        input_dtype: dtype of `inputs`. Defaults to `"float32"`.
        use_query_mask: bool, add a `query_mask` (B, O) input.
        use_output_indices: bool, add an `output_indices` (B, O) int32 input
            that selects which queries to decode.
        initializer_range: float, stddev of the truncated normal that
            initializes every kernel, latent array and embedding table the
            model builds (transformers' `initializer_range`). Defaults to 0.02;
            small models train faster from larger values (e.g. 0.2).
        dtype: dtype policy of every layer, e.g. `"mixed_bfloat16"`.

    Inputs (a dict):
        inputs: (B, *input_shape) tensor.
        padding_mask: optional (B, M) bool, True for real inputs.
        query_mask: (B, O) bool, when `use_query_mask`.
        output_indices: (B, O) int32, when `use_output_indices`.

    Returns:
        latents (B, N, D) without query builder; otherwise the decoder
        outputs (B, O, output_channels or E), postprocessed if asked.

    Raises:
        ValueError: for non-positive sizes, or inputs/masks of wrong shape
            (raised by the layers with the received values).

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverIO
    >>> model = PerceiverIO(input_shape=(50, 3), num_latents=8, latent_dim=16,
    ...     num_self_attends_per_block=1, num_cross_attention_heads=1,
    ...     num_self_attention_heads=2)
    >>> tuple(model({"inputs": keras.ops.ones((2, 50, 3))}).shape)
    (2, 8, 16)
    """

    LAYER_ARGUMENTS = ("preprocessor", "query_builder", "postprocessor")

    def __init__(
        self,
        input_shape,
        num_latents=256,
        latent_dim=1280,
        num_blocks=1,
        num_self_attends_per_block=26,
        num_cross_attention_heads=8,
        num_self_attention_heads=8,
        qk_channels=None,
        v_channels=None,
        cross_attention_shape_for_attention="kv",
        cross_attention_widening_factor=1,
        self_attention_widening_factor=1,
        use_query_residual=True,
        decoder_num_heads=1,
        decoder_qk_channels=None,
        decoder_v_channels=None,
        decoder_widening_factor=1,
        decoder_use_query_residual=False,
        output_channels=None,
        query_mask_mode="zero",
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        initializer_range=0.02,
        preprocessor=None,
        query_builder=None,
        postprocessor=None,
        input_dtype="float32",
        use_query_mask=False,
        use_output_indices=False,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        input_shape = tuple(input_shape)
        config["input_shape"] = input_shape
        if not input_shape:
            raise ValueError("`input_shape` must have at least one dimension. Received: input_shape=()")
        check_positive_int("num_latents", num_latents)
        check_positive_int("latent_dim", latent_dim)
        if (use_query_mask or use_output_indices) and query_builder is None:
            raise ValueError(
                "`use_query_mask`/`use_output_indices` need a `query_builder`. "
                f"Received: use_query_mask={use_query_mask}, use_output_indices={use_output_indices}, "
                "query_builder=None"
            )

        # === Layers ===
        encoder, processor = build_encoder_and_processor(config, dtype=dtype)
        decoder = build_decoder(config, dtype=dtype) if query_builder is not None else None

        # === Functional graph ===
        inputs = {"inputs": keras.Input(shape=input_shape, dtype=input_dtype, name="inputs")}
        x = preprocessor(inputs["inputs"]) if preprocessor is not None else inputs["inputs"]
        num_elements = x.shape[1] if len(x.shape) == 3 else None
        inputs["padding_mask"] = keras.Input(
            shape=(num_elements,), dtype="bool", name="padding_mask", optional=True
        )
        latents = processor(encoder(x, padding_mask=inputs["padding_mask"]))
        outputs = latents
        if query_builder is not None:
            query_kwargs = {}
            if use_output_indices:
                inputs["output_indices"] = keras.Input(shape=(None,), dtype="int32", name="output_indices")
                query_kwargs["output_indices"] = inputs["output_indices"]
            queries = query_builder(x, **query_kwargs)
            query_mask = None
            if use_query_mask:
                inputs["query_mask"] = keras.Input(shape=(queries.shape[1],), dtype="bool", name="query_mask")
                query_mask = inputs["query_mask"]
            outputs = decoder(queries, latents, query_mask=query_mask)
            if postprocessor is not None:
                outputs = postprocessor(outputs)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self._perceiver_config = config
