"""Optical flow with Perceiver IO: two frames in, a flow field out."""

import keras
import numpy as np
from keras import ops

from keras_perceiver.layers.input_queries import InputQueries
from keras_perceiver.models.chunked_decoding import ChunkedDecodingMixin
from keras_perceiver.models.perceiver_backbone import PerceiverBackbone, truncated_normal
from keras_perceiver.models.perceiver_backbone_presets import FLOW_STACK
from keras_perceiver.models.perceiver_optical_flow_presets import PERCEIVER_OPTICAL_FLOW_PRESETS
from keras_perceiver.models.task_model import (
    PerceiverTaskModel,
    build_query_decoder,
    check_backbone,
    split_stack_arguments,
)
from keras_perceiver.postprocessors.flow_postprocessor import FlowPostprocessor
from keras_perceiver.preprocessors.optical_flow_preprocessor import OpticalFlowPreprocessor
from keras_perceiver.validation import check_shape


def _frames_shape(task_name, backbone):
    """The backbone's (2, H, W, C) frame-pair input shape, or a ValueError naming it."""
    shape = backbone.get_config()["input_shape"]
    if isinstance(shape, dict) or len(shape) != 4 or shape[0] != 2 or None in shape[1:3]:
        raise ValueError(
            f"{task_name}: the backbone's input must be a frame pair of shape (2, H, W, C) with known H "
            f"and W. Received: input_shape={shape!r}"
        )
    return tuple(shape)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverOpticalFlow(ChunkedDecodingMixin, PerceiverTaskModel):
    """Frame pairs (B, 2, H, W, 3) -> flow (B, H, W, 2) in pixels: a flow head on a `PerceiverBackbone`.

    Backbone: `OpticalFlowPreprocessor` (3x3 patches of both frames, Dense
    64, Fourier positions) -> encoder (`cross_attention_shape_for_attention=
    "kv"`) -> processor. Head: the preprocessed inputs themselves are the
    decoder queries (one per pixel, `InputQueries`), decoded by a
    `QueryDecoder` (no query residual) to 2 channels, divided by
    `rescale_factor` and reshaped to the (H, W) of the backbone's frames
    (`FlowPostprocessor`). With `subsample_outputs=True` the model also takes
    `output_indices` (B, O) into the H*W pixels and returns only those
    (B, O, 2), for training on a subset of pixels. Preset:
    `optical_flow_perceiver` (its backbone is the `PerceiverBackbone` preset
    of the same name).

    Source: Perceiver IO (arXiv 2107.14795) section 4.2; transformers
    `PerceiverForOpticalFlow`.

    Args:
        backbone: a `PerceiverBackbone` whose input is the frame pairs (B, 2,
            H, W, C) (an `OpticalFlowPreprocessor` as its
            `input_preprocessor`), e.g.
            `PerceiverBackbone.from_preset("optical_flow_perceiver")`. The
            output size (H, W) is the backbone's.
        rescale_factor: float, outputs are divided by it. Defaults to 100.
        subsample_outputs: bool, decode only `output_indices`. Defaults to
            False.
        decoder_num_cross_attention_heads: int. Defaults to 1.
        decoder_qk_channels, decoder_v_channels: int or None; None uses the
            query (input) width. Default None.
        decoder_cross_attention_widening_factor: int. Defaults to 1.
        decoder_use_query_residual: bool. Defaults to False (transformers'
            flow decoder).
        dtype: dtype policy of the head's layers (the backbone keeps its
            own).

    Inputs (a dict):
        frames (or the backbone's `input_name`): (B, 2, H, W, 3) float
            frames (the reference feeds RGB scaled to [-1, 1]).
        output_indices: (B, O) int32 pixel indices (row-major), with
            `subsample_outputs`.

    Returns:
        (B, H, W, 2) flow (u, v) in pixels, or (B, O, 2) with
        `subsample_outputs`.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`.
        ValueError: for a backbone whose input is not (2, H, W, C).

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverBackbone, PerceiverOpticalFlow
    >>> from keras_perceiver.preprocessors import OpticalFlowPreprocessor
    >>> backbone = PerceiverBackbone(input_shape=(2, 8, 8, 3), input_name="frames",
    ...     input_preprocessor=OpticalFlowPreprocessor(train_size=(8, 8), num_bands=4),
    ...     num_latents=8, latent_dim=16, num_self_attends_per_block=1,
    ...     num_cross_attention_heads=1, num_self_attention_heads=2)
    >>> model = PerceiverOpticalFlow(backbone)
    >>> tuple(model({"frames": keras.ops.ones((1, 2, 8, 8, 3))}).shape)
    (1, 8, 8, 2)
    """

    presets = PERCEIVER_OPTICAL_FLOW_PRESETS

    def __init__(
        self,
        backbone,
        rescale_factor=100.0,
        subsample_outputs=False,
        decoder_num_cross_attention_heads=1,
        decoder_qk_channels=None,
        decoder_v_channels=None,
        decoder_cross_attention_widening_factor=1,
        decoder_use_query_residual=False,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_backbone(self.__class__.__name__, backbone)
        image_size = _frames_shape(self.__class__.__name__, backbone)[1:3]

        # === Layers ===
        queries = InputQueries(dtype=dtype, name="decoder_queries")
        decoder = build_query_decoder(
            backbone,
            num_cross_attention_heads=decoder_num_cross_attention_heads,
            qk_channels=decoder_qk_channels,
            v_channels=decoder_v_channels,
            cross_attention_widening_factor=decoder_cross_attention_widening_factor,
            use_query_residual=decoder_use_query_residual,
            output_channels=2,
            query_mask_mode="ignore",
            dtype=dtype,
        )
        postprocessor = FlowPostprocessor(
            image_size=None if subsample_outputs else image_size,
            rescale_factor=rescale_factor,
            dtype=dtype,
            name="flow",
        )

        # === Functional graph ===
        inputs = backbone.task_inputs()
        encoded = backbone.encode(inputs)
        if subsample_outputs:
            inputs["output_indices"] = keras.Input(shape=(None,), dtype="int32", name="output_indices")
            query = queries(encoded["encoder_inputs"], output_indices=inputs["output_indices"])
        else:
            query = queries(encoded["encoder_inputs"])
        flow = postprocessor(decoder(query, encoded["latents"]))
        super().__init__(inputs=inputs, outputs=flow, **kwargs)

        # === Config ===
        self._set_backbone(backbone, config)
        self.image_size = image_size
        self.subsample_outputs = subsample_outputs

    def _chunked_placeholders(self, inputs):
        if not self.subsample_outputs:
            return {}
        batch_size = np.shape(next(iter(inputs.values())))[0]
        return {"output_indices": np.zeros((batch_size, 1), "int32")}

    def _chunked_encode(self, inputs):
        encoded = self.backbone.encode(inputs, training=False)
        return self.get_layer("decoder_queries")(encoded["encoder_inputs"]), encoded["latents"]

    def _chunked_finish(self, decoded, inputs):
        flow = self.get_layer("flow")(decoded)  # (B, O, 2) when built with `subsample_outputs`
        return ops.reshape(flow, (-1, *self.image_size, 2))

    @classmethod
    def from_hyperparameters(
        cls,
        image_size=(368, 496),
        train_size=(368, 496),
        num_bands=64,
        output_channels=64,
        rescale_factor=100.0,
        subsample_outputs=False,
        initializer_range=0.02,
        dtype=None,
        name=None,
        **stack,
    ):
        """Build from one flat argument list (the form before the backbone/head split).

        Args:
            image_size: tuple (H, W) of the input frames. Defaults to
                (368, 496).
            train_size, num_bands, output_channels: `OpticalFlowPreprocessor`
                arguments (`train_size` sets the Fourier frequencies).
                Defaults: (368, 496), 64, 64 (`out_channels` is accepted for
                `output_channels`).
            rescale_factor, subsample_outputs: head arguments.
            initializer_range: float, stddev of the truncated normal that
                initializes every kernel. Defaults to 0.02.
            dtype: dtype policy of every layer.
            name: optional model name.
            **stack: `PerceiverBackbone` latent-stack arguments (defaults:
                the `optical_flow_perceiver` backbone's) and `decoder_*` head
                arguments.

        Returns:
            A `PerceiverOpticalFlow`.

        Raises:
            ValueError: for an `image_size` that is not (H, W), and the errors
                of the constructors.
        """
        if "out_channels" in stack:
            output_channels = stack.pop("out_channels")
        check_shape("image_size", image_size, length=2)
        check_shape("train_size", train_size, length=2)
        stack, head = split_stack_arguments(stack)
        preprocessor = OpticalFlowPreprocessor(
            train_size=tuple(train_size),
            num_bands=num_bands,
            output_channels=output_channels,
            kernel_initializer=truncated_normal(initializer_range),
            dtype=dtype,
            name="flow_preprocessor",
        )
        backbone = PerceiverBackbone(
            input_shape=(2, *image_size, 3),
            input_name="frames",
            input_preprocessor=preprocessor,
            **{**FLOW_STACK, **stack},
            initializer_range=initializer_range,
            dtype=dtype,
        )
        return cls(
            backbone=backbone,
            rescale_factor=rescale_factor,
            subsample_outputs=subsample_outputs,
            dtype=dtype,
            name=name,
            **head,
        )
