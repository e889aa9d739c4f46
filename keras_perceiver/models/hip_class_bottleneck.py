"""HiP with class labels entering and leaving at the processor (official `HiPClassBottleneck`)."""

import keras
from keras import ops

from keras_perceiver.layers.modality_embedder import ModalityUnembedder
from keras_perceiver.layers.modality_grouper import ModalityUngrouper
from keras_perceiver.models.hierarchical_perceiver import (
    hip_reconstruction_head,
    hip_task_backbone,
    reconstruct,
    unembedding_widths,
)
from keras_perceiver.models.hip_task_model import HiPTaskModel
from keras_perceiver.models.task_pipeline import MODEL_KEYWORDS


def check_label_backbone(model_name, backbone):
    """Raise a ValueError naming the received value unless `backbone` has label modalities."""
    if not backbone.label_modalities:
        raise ValueError(
            f"{model_name}: the backbone needs label modalities (`label_modalities`, names of "
            f"`input_shapes` that enter at the processor), at least one of {list(backbone.input_shapes)}. "
            "Received: label_modalities=()"
        )


@keras.saving.register_keras_serializable(package="keras_perceiver")
class HiPClassBottleneck(HiPTaskModel):
    """HiP whose label modalities enter and leave at the processor; all modalities reconstructed.

    The official `HiPClassBottleneck` template on a `HiPBackbone` with
    `label_modalities`: the other modalities are embedded, grouped and
    encoded as in `HierarchicalPerceiver`; each label modality (e.g. a class
    label, (B, 1, K)) is embedded to the width entering the processor,
    C = `latent_dim[P-1]`, given learned positions of that width and
    appended to the processor's inputs (see `HiPBackbone`). Right after the
    processor, one reconstruction head shared by all label modalities
    (`label_reconstruction_head`: their positions (B, M_m, C) cross-attend
    to the processor's latents (B, N_P, D_P), one head, no query residual)
    is un-embedded to every label's width (`label_unembedder`). The decoder
    blocks and the final reconstruction head (`reconstruction_head`) then
    reconstruct the other modalities, as in `HierarchicalPerceiver`. The
    label reconstructions are merged into `"input_reconstruction"`.

    Build it from the backbone's arguments,
    `HiPClassBottleneck(input_shapes=..., num_groups=..., ...,
    label_modalities=("label",))`, or from a backbone,
    `HiPClassBottleneck(backbone=HiPBackbone(..., label_modalities=...))`;
    both have the same config (`"backbone"`). For plain classification
    (logits from a zero label token) see `HiPClassifier`.

    Source: HiP (arXiv 2202.10890) sections 3-4; official `perceiver.py`
    `HiPClassBottleneck`, `perceiver_blocks.py` `ReconstructionHead`.

    Args:
        backbone: a `HiPBackbone` with label modalities, or None to build
            one from `**kwargs`.
        output_channels: optional dict of modality name -> channels of its
            output (default: the input's C_m), for dense prediction (see
            `HierarchicalPerceiver`).
        dtype: dtype policy of the head's layers (and of a backbone built
            here).
        **kwargs: `HiPBackbone` arguments (when `backbone` is None; they must
            include `label_modalities`), and `name` / `trainable`.

    Inputs (a dict):
        `<m>`: (B, M_m, C_m) for every modality of the backbone, labels
            included.
        `<m>_padding_mask`: optional (B, M_m) bool.

    Returns:
        dict: `"input_reconstruction"` {m: (B, M_m, C_m)} for every modality
        (the others first, then the labels) and `"latents"`
        {m: (B, M'_m, D_{L-1})} for the modalities that are not labels.

    Raises:
        TypeError: for a `backbone` that is not a `HiPBackbone`, or both a
            backbone and backbone arguments.
        ValueError: for no label modalities, or those raised by
            `HiPBackbone` (label modalities that are not modalities, or all
            of them, ...) and at call for missing modalities or inputs of
            the wrong shape.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import HiPClassBottleneck
    >>> model = HiPClassBottleneck(input_shapes={"image": (12, 3), "label": (1, 5)}, num_groups=(4, 1, 4),
    ...     num_self_attends_per_block=1, num_latents=(2, 4, 2), latent_dim=(8, 16, 8),
    ...     num_cross_attention_heads=1, num_self_attention_heads=2, cross_attention_widening_factor=1,
    ...     self_attention_widening_factor=2, num_embedding_channels=4, label_modalities=("label",))
    >>> outputs = model({"image": keras.ops.ones((2, 12, 3)), "label": keras.ops.ones((2, 1, 5))})
    >>> {m: tuple(x.shape) for m, x in outputs["input_reconstruction"].items()}
    {'image': (2, 12, 3), 'label': (2, 1, 5)}
    """


    def __init__(self, backbone=None, output_channels=None, dtype=None, **kwargs):
        model_kwargs = {key: kwargs.pop(key) for key in MODEL_KEYWORDS if key in kwargs}
        name = self.__class__.__name__
        backbone = hip_task_backbone(name, backbone, dtype, kwargs)
        check_label_backbone(name, backbone)
        input_shapes = backbone.input_shapes
        widths = unembedding_widths(name, input_shapes, output_channels)
        output_channels = None if output_channels is None else dict(output_channels)
        config = {"backbone": backbone, "output_channels": output_channels, "dtype": dtype}
        labels = backbone.label_modalities
        data = backbone.data_modalities

        # === Layers ===
        num_groups = backbone.num_groups[0]
        label_reconstruction_head = hip_reconstruction_head(
            backbone.activation, dtype, name="label_reconstruction_head"
        )
        label_unembedder = ModalityUnembedder(
            {m: widths[m] for m in input_shapes if m in labels}, dtype=dtype, name="label_unembedder"
        )
        reconstruction_head = hip_reconstruction_head(backbone.activation, dtype)
        ungrouper = ModalityUngrouper(
            num_groups, {m: input_shapes[m][0] for m in data}, dtype=dtype, name="ungrouper"
        )
        unembedder = ModalityUnembedder({m: widths[m] for m in data}, dtype=dtype, name="unembedder")

        # === Functional graph ===
        inputs = backbone.task_inputs()
        encoded = backbone.encode(inputs)
        label_reconstruction = label_unembedder(
            read_labels(encoded, label_reconstruction_head, backbone.processor_index)
        )
        reconstruction, latents = reconstruct(encoded, reconstruction_head, ungrouper, unembedder, num_groups)
        outputs = {"input_reconstruction": {**reconstruction, **label_reconstruction}, "latents": latents}
        super().__init__(inputs=inputs, outputs=outputs, **model_kwargs)

        # === Config ===
        self.label_reconstruction_head = label_reconstruction_head
        self.label_unembedder = label_unembedder
        self.reconstruction_head = reconstruction_head
        self.ungrouper = ungrouper
        self.unembedder = unembedder
        self._set_backbone(backbone, config)





def read_labels(encoded, head, processor_index):
    """The label reconstructions {m: (B, M_m, C)} (embedded): each label's positions read the processor.

    One head for all label modalities (the official code calls one
    `ReconstructionHead` per label modality, with shared parameters). The
    processor has one group, dropped by a squeeze (not a reshape to the
    static N_P: at training time the processor may use fewer latents).
    """
    processor_latents = ops.squeeze(encoded["block_outputs"][processor_index], axis=1)
    return {m: head(queries, processor_latents) for m, queries in encoded["label_positions"].items()}
