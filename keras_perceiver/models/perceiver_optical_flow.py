"""Optical flow with Perceiver IO: two frames in, a flow field out."""

import keras

from keras_perceiver.layers.input_queries import InputQueries
from keras_perceiver.models.core_layers import build_decoder, build_encoder_and_processor, initializer
from keras_perceiver.models.perceiver_optical_flow_presets import PERCEIVER_OPTICAL_FLOW_PRESETS
from keras_perceiver.models.task_model import PerceiverTaskModel
from keras_perceiver.postprocessors.flow_postprocessor import FlowPostprocessor
from keras_perceiver.preprocessors.optical_flow_preprocessor import OpticalFlowPreprocessor


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverOpticalFlow(PerceiverTaskModel):
    """Frame pairs (B, 2, H, W, 3) -> flow (B, H, W, 2) in pixels.

    `OpticalFlowPreprocessor` (3x3 patches of both frames, Dense 64, Fourier
    positions) -> encoder -> processor -> decoder whose queries are the
    preprocessed inputs themselves (one per pixel) -> 2 channels / 100.
    With `subsample_outputs=True` the model also takes `output_indices`
    (B, O) into the H*W pixels and returns only those (B, O, 2), for
    training on a subset of pixels.

    Source: Perceiver IO (arXiv 2107.14795) section 4.2; transformers
    `PerceiverForOpticalFlow`.

    Args:
        image_size: tuple (H, W) of the input frames. Defaults to (368, 496).
        train_size: tuple (H, W) that sets the Fourier frequencies. Defaults
            to (368, 496).
        num_bands: int. Defaults to 64.
        out_channels: int, width after patching. Defaults to 64.
        rescale_factor: float, outputs are divided by it. Defaults to 100.
        subsample_outputs: bool, decode only `output_indices`. Defaults to False.
        num_latents, latent_dim, num_blocks, num_self_attends_per_block,
            num_cross_attention_heads, num_self_attention_heads, qk_channels,
            v_channels, cross_attention_widening_factor,
            self_attention_widening_factor, use_query_residual, activation,
            dropout, attention_dropout: encoder/processor arguments (see
            `PerceiverIO`); defaults are the published model's.
        initializer_range: float, stddev of the truncated normal
            initialization. Defaults to 0.02.
        dtype: dtype policy of every layer.

    Inputs (a dict):
        frames: (B, 2, H, W, 3) float frames (the reference feeds RGB scaled
            to [-1, 1]).
        output_indices: (B, O) int32 pixel indices (row-major), with
            `subsample_outputs`.

    Returns:
        (B, H, W, 2) flow (u, v) in pixels, or (B, O, 2) with `subsample_outputs`.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverOpticalFlow
    >>> model = PerceiverOpticalFlow(image_size=(8, 8), train_size=(8, 8), num_bands=4,
    ...     num_latents=8, latent_dim=16, num_self_attends_per_block=1, num_self_attention_heads=2)
    >>> tuple(model({"frames": keras.ops.ones((1, 2, 8, 8, 3))}).shape)
    (1, 8, 8, 2)
    """

    presets = PERCEIVER_OPTICAL_FLOW_PRESETS

    def __init__(
        self,
        image_size=(368, 496),
        train_size=(368, 496),
        num_bands=64,
        out_channels=64,
        rescale_factor=100.0,
        subsample_outputs=False,
        num_latents=2048,
        latent_dim=512,
        num_blocks=1,
        num_self_attends_per_block=24,
        num_cross_attention_heads=1,
        num_self_attention_heads=16,
        qk_channels=None,
        v_channels=None,
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
        config["image_size"] = tuple(image_size)
        config["train_size"] = tuple(train_size)
        if len(config["image_size"]) != 2:
            raise ValueError(f"`image_size` must be (H, W). Received: image_size={image_size!r}")
        core_config = dict(config, cross_attention_shape_for_attention="kv")
        decoder_config = dict(
            core_config,
            decoder_num_heads=1,
            decoder_qk_channels=None,
            decoder_v_channels=None,
            decoder_widening_factor=1,
            decoder_use_query_residual=False,
            output_channels=2,
            query_mask_mode="ignore",
        )

        # === Layers ===
        preprocessor = OpticalFlowPreprocessor(
            train_size=train_size,
            num_bands=num_bands,
            out_channels=out_channels,
            kernel_initializer=initializer(config),
            dtype=dtype,
            name="flow_preprocessor",
        )
        encoder, processor = build_encoder_and_processor(core_config, dtype=dtype)
        queries = InputQueries(dtype=dtype, name="decoder_queries")
        decoder = build_decoder(decoder_config, dtype=dtype)
        postprocessor = FlowPostprocessor(
            image_size=None if subsample_outputs else image_size,
            rescale_factor=rescale_factor,
            dtype=dtype,
            name="flow",
        )

        # === Functional graph ===
        inputs = {"frames": keras.Input(shape=(2, *config["image_size"], 3), name="frames")}
        x = preprocessor(inputs["frames"])
        latents = processor(encoder(x))
        if subsample_outputs:
            inputs["output_indices"] = keras.Input(shape=(None,), dtype="int32", name="output_indices")
            query = queries(x, output_indices=inputs["output_indices"])
        else:
            query = queries(x)
        flow = postprocessor(decoder(query, latents))
        super().__init__(inputs=inputs, outputs=flow, **kwargs)

        # === Config ===
        self._perceiver_config = config
