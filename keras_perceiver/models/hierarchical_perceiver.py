"""The Hierarchical Perceiver (HiP) with its masked auto-encoding reconstruction head."""

import keras

from keras_perceiver.layers.modality_embedder import ModalityUnembedder, hip_initializer
from keras_perceiver.layers.modality_grouper import ModalityUngrouper
from keras_perceiver.layers.query_decoder import QueryDecoder
from keras_perceiver.layers.regroup import fold_groups, unfold_groups
from keras_perceiver.models.hip_backbone import HiPBackbone
from keras_perceiver.models.hip_task_model import HiPTaskModel
from keras_perceiver.models.task_pipeline import MODEL_KEYWORDS
from keras_perceiver.validation import check_positive_int


def hip_task_backbone(model_name, backbone, dtype, kwargs):
    """The `HiPBackbone` of a HiP task: `backbone`, or one built from the backbone arguments `kwargs`.

    Raises:
        TypeError: for both a backbone and backbone arguments, or a backbone
            that is not a `HiPBackbone`.
    """
    if backbone is None:
        return HiPBackbone(dtype=dtype, **kwargs)
    if kwargs:
        raise TypeError(
            f"{model_name}: give either `backbone` or the `HiPBackbone` arguments to build one, not both. "
            f"Received: backbone and {sorted(kwargs)}"
        )
    if not isinstance(backbone, HiPBackbone):
        raise TypeError(
            f"{model_name}: `backbone` must be a `HiPBackbone`. Received: {type(backbone).__name__}"
        )
    return backbone


def hip_reconstruction_head(activation, dtype, name="reconstruction_head"):
    """HiP's reconstruction head (official `ReconstructionHead`): one head, no query residual, widening 1."""
    return QueryDecoder(
        num_cross_attention_heads=1,
        cross_attention_widening_factor=1,
        use_query_residual=False,
        activation=activation,
        kernel_initializer=hip_initializer(),
        dtype=dtype,
        name=name,
    )


def reconstruct(encoded, head, ungrouper, unembedder, num_groups):
    """The final reconstruction {m: (B, M_m, C)} and latents {m: (B, M'_m, D)} from `encode()`'s outputs.

    Group by group, the MAE queries (B*G, N_0, E) read the final latents
    (B*G, N, D); the result is ungrouped and un-embedded.
    """
    queries, latents = fold_groups(encoded["mae_queries"]), fold_groups(encoded["latents"])
    reconstruction = unfold_groups(head(queries, latents), num_groups)
    return unembedder(ungrouper(reconstruction)), ungrouper(encoded["latents"])


def unembedding_widths(model_name, input_shapes, output_channels):
    """{m: the un-embedding width}: `output_channels[m]` where given, else the input's C_m.

    Raises:
        ValueError: for `output_channels` that is not a dict of modalities of
            `input_shapes` to positive ints.
    """
    if output_channels is None:
        output_channels = {}
    if not isinstance(output_channels, dict):
        raise ValueError(
            f"{model_name}: `output_channels` must be None or a dict of modality name -> channels. "
            f"Received: output_channels={output_channels!r}"
        )
    unknown = [m for m in output_channels if m not in input_shapes]
    if unknown:
        raise ValueError(
            f"{model_name}: `output_channels` must name modalities of the backbone, expected names among "
            f"{list(input_shapes)}. Received: {list(output_channels)} (unknown {unknown})"
        )
    for modality, channels in output_channels.items():
        check_positive_int(f"output_channels[{modality!r}]", channels)
    return {m: int(output_channels.get(m, shape[1])) for m, shape in input_shapes.items()}


@keras.saving.register_keras_serializable(package="keras_perceiver")
class HierarchicalPerceiver(HiPTaskModel):
    """HiP: modalities {m: (B, M_m, C_m)} -> their reconstruction, a head on a `HiPBackbone`.

    Backbone: embed -> learned positions -> group -> U-Net of HiP blocks
    (`HiPBackbone`). Head (official `ReconstructionHead`): the grouped
    position encodings (the MAE queries, (B, G, N_0, E)) cross-attend,
    group by group, to the final latents (B, G, N, D) with one head, no
    query residual and MLP widening 1 (a `QueryDecoder`); the result is
    ungrouped (`ModalityUngrouper`) and un-embedded to every modality's width
    (`ModalityUnembedder`, zero-initialized: a fresh model reconstructs
    zeros). The outputs are the official template's: the reconstruction and
    the final latents ungrouped with the input grouping (not aligned with
    the inputs, see `ModalityUngrouper`). No masking or loss is applied
    here: masked auto-encoding masks the inputs and scores the
    reconstruction outside the model, as in the official release.

    Dense prediction: `output_channels={"image": K}` un-embeds that
    modality to K channels instead of its input's C_m, e.g. the class logits
    of a segmentation map, one row per input element (the key stays
    `"input_reconstruction"`; train it with a per-position loss such as
    `SparseCategoricalCrossentropy(from_logits=True)`).

    Build it from a backbone, `HierarchicalPerceiver(backbone=HiPBackbone(...))`,
    or from the backbone's arguments directly,
    `HierarchicalPerceiver(input_shapes=..., num_groups=..., ...)`, which
    builds the `HiPBackbone`; both have the same config (`"backbone"`).

    Source: HiP (arXiv 2202.10890) sections 3-4; official `perceiver.py`
    `HiP`, `perceiver_blocks.py` `ReconstructionHead`.

    Args:
        backbone: a `HiPBackbone` (without label modalities), or None to
            build one from `**kwargs`.
        output_channels: optional dict of modality name -> channels of its
            output (default: the input's C_m), for dense prediction.
        dtype: dtype policy of the head's layers (and of a backbone built
            here).
        **kwargs: `HiPBackbone` arguments (when `backbone` is None), and
            `name` / `trainable`.

    Inputs (a dict):
        `<m>`: (B, M_m, C_m) for every modality of the backbone.
        `<m>_padding_mask`: optional (B, M_m) bool.

    Returns:
        dict: `"input_reconstruction"` {m: (B, M_m, C_m)} (C_m or
        `output_channels[m]`) and `"latents"` {m: (B, M'_m, D_{L-1})}.

    Raises:
        TypeError: for a `backbone` that is not a `HiPBackbone`, or both a
            backbone and backbone arguments.
        ValueError: for a backbone with label modalities (use
            `HiPClassBottleneck`), `output_channels` naming unknown
            modalities; raised by `HiPBackbone` for its arguments, and at
            call for missing modalities or inputs of the wrong shape.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import HierarchicalPerceiver
    >>> model = HierarchicalPerceiver(input_shapes={"image": (12, 3), "label": (1, 5)}, num_groups=(4, 1, 4),
    ...     num_self_attends_per_block=1, num_latents=(2, 4, 2), latent_dim=(8, 16, 8),
    ...     num_cross_attention_heads=1, num_self_attention_heads=2, cross_attention_widening_factor=1,
    ...     self_attention_widening_factor=2, num_embedding_channels=4)
    >>> outputs = model({"image": keras.ops.ones((2, 12, 3)), "label": keras.ops.ones((2, 1, 5))})
    >>> {m: tuple(x.shape) for m, x in outputs["input_reconstruction"].items()}
    {'image': (2, 12, 3), 'label': (2, 1, 5)}
    """


    def __init__(self, backbone=None, output_channels=None, dtype=None, **kwargs):
        model_kwargs = {key: kwargs.pop(key) for key in MODEL_KEYWORDS if key in kwargs}
        name = self.__class__.__name__
        backbone = hip_task_backbone(name, backbone, dtype, kwargs)
        if backbone.label_modalities:
            raise ValueError(
                f"{name}: the backbone must have no label modalities (they enter at the processor: use "
                f"`HiPClassBottleneck`). Received: label_modalities={tuple(backbone.label_modalities)}"
            )
        input_shapes = backbone.input_shapes
        widths = unembedding_widths(name, input_shapes, output_channels)
        output_channels = None if output_channels is None else dict(output_channels)
        config = {"backbone": backbone, "output_channels": output_channels, "dtype": dtype}

        # === Layers ===
        num_groups = backbone.num_groups[0]
        reconstruction_head = hip_reconstruction_head(backbone.activation, dtype)
        ungrouper = ModalityUngrouper(
            num_groups, {m: shape[0] for m, shape in input_shapes.items()}, dtype=dtype, name="ungrouper"
        )
        unembedder = ModalityUnembedder(widths, dtype=dtype, name="unembedder")

        # === Functional graph ===
        inputs = backbone.task_inputs()
        encoded = backbone.encode(inputs)
        reconstruction, latents = reconstruct(encoded, reconstruction_head, ungrouper, unembedder, num_groups)
        outputs = {"input_reconstruction": reconstruction, "latents": latents}
        super().__init__(inputs=inputs, outputs=outputs, **model_kwargs)

        # === Config ===
        self.reconstruction_head = reconstruction_head
        self.ungrouper = ungrouper
        self.unembedder = unembedder
        self._set_backbone(backbone, config)



