"""The Hierarchical Perceiver (HiP) with its masked auto-encoding reconstruction head."""

import keras

from keras_perceiver.layers.modality_embedder import ModalityUnembedder, hip_initializer
from keras_perceiver.layers.modality_grouper import ModalityUngrouper
from keras_perceiver.layers.query_decoder import QueryDecoder
from keras_perceiver.layers.regroup import fold_groups, unfold_groups
from keras_perceiver.models.hip_backbone import HiPBackbone, check_modality_inputs, fill_padding_masks
from keras_perceiver.models.hip_backbone_presets import HIERARCHICAL_PERCEIVER_PRESETS
from keras_perceiver.models.task_model import PerceiverTaskModel


@keras.saving.register_keras_serializable(package="keras_perceiver")
class HierarchicalPerceiver(PerceiverTaskModel):
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

    Build it from a backbone, `HierarchicalPerceiver(backbone=HiPBackbone(...))`,
    or from the backbone's arguments directly,
    `HierarchicalPerceiver(input_shapes=..., num_groups=..., ...)`, which
    builds the `HiPBackbone`; both have the same config (`"backbone"`).

    Source: HiP (arXiv 2202.10890) sections 3-4; official `perceiver.py`
    `HiP`, `perceiver_blocks.py` `ReconstructionHead`.

    Args:
        backbone: a `HiPBackbone`, or None to build one from `**kwargs`.
        dtype: dtype policy of the head's layers (and of a backbone built
            here).
        **kwargs: `HiPBackbone` arguments (when `backbone` is None), and
            `name` / `trainable`.

    Inputs (a dict):
        `<m>`: (B, M_m, C_m) for every modality of the backbone.
        `<m>_padding_mask`: optional (B, M_m) bool.

    Returns:
        dict: `"input_reconstruction"` {m: (B, M_m, C_m)} and `"latents"`
        {m: (B, M'_m, D_{L-1})}.

    Raises:
        TypeError: for a `backbone` that is not a `HiPBackbone`, or both a
            backbone and backbone arguments.
        ValueError: raised by `HiPBackbone` for its arguments, and at call for
            missing modalities or inputs of the wrong shape.

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

    presets = HIERARCHICAL_PERCEIVER_PRESETS
    backbone_class = HiPBackbone

    def __init__(self, backbone=None, dtype=None, **kwargs):
        model_kwargs = {key: kwargs.pop(key) for key in ("name", "trainable") if key in kwargs}
        name = self.__class__.__name__
        if backbone is None:
            backbone = HiPBackbone(dtype=dtype, **kwargs)
        elif kwargs:
            raise TypeError(
                f"{name}: give either `backbone` or the `HiPBackbone` arguments to build one, not both. "
                f"Received: backbone and {sorted(kwargs)}"
            )
        if not isinstance(backbone, HiPBackbone):
            raise TypeError(
                f"{name}: `backbone` must be a `HiPBackbone`. Received: {type(backbone).__name__}"
            )
        config = {"backbone": backbone, "dtype": dtype}

        # === Layers ===
        input_shapes = backbone.input_shapes
        num_groups = backbone.num_groups[0]
        reconstruction_head = QueryDecoder(
            num_cross_attention_heads=1,
            cross_attention_widening_factor=1,
            use_query_residual=False,
            activation=backbone.activation,
            kernel_initializer=hip_initializer(),
            dtype=dtype,
            name="reconstruction_head",
        )
        ungrouper = ModalityUngrouper(
            num_groups, {m: shape[0] for m, shape in input_shapes.items()}, dtype=dtype, name="ungrouper"
        )
        unembedder = ModalityUnembedder(
            {m: shape[1] for m, shape in input_shapes.items()}, dtype=dtype, name="unembedder"
        )

        # === Functional graph ===
        inputs = backbone.task_inputs()
        encoded = backbone.encode(inputs)
        # Group by group: the MAE queries (B*G, N_0, E) read the final latents (B*G, N, D).
        queries, latents = fold_groups(encoded["mae_queries"]), fold_groups(encoded["latents"])
        reconstruction = unfold_groups(reconstruction_head(queries, latents), num_groups)
        reconstruction = unembedder(ungrouper(reconstruction))
        outputs = {"input_reconstruction": reconstruction, "latents": ungrouper(encoded["latents"])}
        super().__init__(inputs=inputs, outputs=outputs, **model_kwargs)

        # === Config ===
        self.reconstruction_head = reconstruction_head
        self.ungrouper = ungrouper
        self.unembedder = unembedder
        self._set_backbone(backbone, config)

    def __call__(self, inputs, *args, **kwargs):
        check_modality_inputs(self.__class__.__name__, self.backbone.input_shapes, inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, mask=None, **kwargs):
        inputs = fill_padding_masks(inputs, self.backbone.input_shapes)
        return super().call(inputs, training=training, mask=mask, **kwargs)

    @classmethod
    def from_hyperparameters(cls, **hyperparameters):
        """Build from one flat argument list: the `HiPBackbone` arguments (and `dtype`, `name`).

        Returns:
            A `HierarchicalPerceiver`.
        """
        return cls(**hyperparameters)
