"""The Hierarchical Perceiver (HiP) backbone: embed -> positions -> group -> a U-Net of HiP blocks."""

import keras

from keras_perceiver.layers.drop_path import check_drop_path_rate
from keras_perceiver.layers.hip_block import HiPBlock
from keras_perceiver.layers.mlp_block import ACTIVATIONS
from keras_perceiver.layers.modality_embedder import ModalityEmbedder, check_modality_name
from keras_perceiver.layers.modality_grouper import (
    ModalityConcatenation,
    ModalityGrouper,
    assign_groups_to_modalities,
)
from keras_perceiver.layers.modality_position_encoder import ModalityPositionEncoder
from keras_perceiver.layers.regroup import REGROUP_TYPES, regroup
from keras_perceiver.models.functional_model import PerceiverFunctionalModel
from keras_perceiver.models.hip_backbone_presets import HIP_BACKBONE_PRESETS
from keras_perceiver.validation import check_choice, check_positive_int

# The per-block arguments (one entry per block; an int is repeated for every block).
BLOCK_ARGUMENTS = (
    "num_groups",
    "num_self_attends_per_block",
    "num_latents",
    "latent_dim",
    "num_cross_attention_heads",
    "num_self_attention_heads",
    "cross_attention_widening_factor",
    "self_attention_widening_factor",
)


def padding_mask_name(modality):
    """The name of the optional padding-mask input of a modality."""
    return f"{modality}_padding_mask"


def _normalize_input_shapes(model_name, input_shapes):
    if not isinstance(input_shapes, dict) or not input_shapes:
        raise ValueError(
            f"{model_name}: `input_shapes` must be a non-empty dict of modality name -> (M, C). "
            f"Received: input_shapes={input_shapes!r}"
        )
    shapes = {}
    for modality, shape in input_shapes.items():
        check_modality_name(modality, model_name)
        shape = tuple(shape) if isinstance(shape, (list, tuple)) else shape
        if not isinstance(shape, tuple) or len(shape) != 2:
            raise ValueError(
                f"{model_name}: `input_shapes[{modality!r}]` must be (M, C), one example without the "
                f"batch. Received: {shape!r}"
            )
        check_positive_int(f"input_shapes[{modality!r}][0]", shape[0])
        check_positive_int(f"input_shapes[{modality!r}][1]", shape[1])
        shapes[modality] = shape
    clashes = [m for m in shapes if padding_mask_name(m) in shapes]
    if clashes:
        raise ValueError(
            f"{model_name}: a modality may not be named like another one's padding mask input. "
            f"Received: {sorted(clashes)} and {[padding_mask_name(m) for m in clashes]}"
        )
    return shapes


def _normalize_label_modalities(model_name, label_modalities, input_shapes):
    """`label_modalities` as a tuple of names of `input_shapes`, checked (some modality must remain)."""
    if isinstance(label_modalities, str) or not isinstance(label_modalities, (list, tuple)):
        raise ValueError(
            f"{model_name}: `label_modalities` must be a tuple of modality names (of `input_shapes`). "
            f"Received: label_modalities={label_modalities!r}"
        )
    labels = tuple(label_modalities)
    unknown = [m for m in labels if m not in input_shapes]
    if unknown:
        raise ValueError(
            f"{model_name}: every label modality must be a modality of `input_shapes`. Expected names "
            f"among {list(input_shapes)}. Received: label_modalities={list(labels)} (unknown {unknown})"
        )
    repeated = sorted({m for m in labels if labels.count(m) > 1})
    if repeated:
        raise ValueError(
            f"{model_name}: `label_modalities` names a modality more than once. Received: "
            f"label_modalities={list(labels)} (repeated {repeated})"
        )
    if labels and len(labels) == len(input_shapes):
        raise ValueError(
            f"{model_name}: at least one modality must go through the encoder: `label_modalities` may "
            f"not name every modality. Received: input_shapes modalities {list(input_shapes)}, "
            f"label_modalities={list(labels)}"
        )
    return labels


def _per_block(model_name, arguments):
    """The per-block arguments as tuples of length L (ints repeated); L from `num_groups`."""
    groups = arguments["num_groups"]
    if not isinstance(groups, (list, tuple)) or not groups:
        raise ValueError(
            f"{model_name}: `num_groups` must be a non-empty tuple, one entry per block. "
            f"Received: num_groups={groups!r}"
        )
    _check_block_count(model_name, groups)
    num_blocks = len(groups)
    blocks = {}
    for name in BLOCK_ARGUMENTS:
        value = arguments[name]
        if isinstance(value, int) and not isinstance(value, bool):  # one value for every block
            if not (value == 0 and name == "num_self_attends_per_block"):
                check_positive_int(name, value)
            value = (value,) * num_blocks
        if not isinstance(value, (list, tuple)) or len(value) != num_blocks:
            raise ValueError(
                f"{model_name}: `{name}` must have one entry per block ({num_blocks}, the length of "
                f"num_groups). Received: {name}={value!r}"
            )
        for i, entry in enumerate(value):
            if name == "num_self_attends_per_block" and entry == 0 and not isinstance(entry, bool):
                continue
            check_positive_int(f"{name}[{i}]", entry)
        blocks[name] = tuple(value)
    return blocks


def _check_block_count(model_name, groups):
    num_blocks = len(groups)
    if num_blocks < 3 or num_blocks % 2 == 0:
        raise ValueError(
            f"{model_name}: HiP needs an odd number of blocks, at least 3 (encoder blocks, one processor "
            f"block, as many decoder blocks). Received: {num_blocks} blocks (num_groups={tuple(groups)})"
        )


def _check_architecture(model_name, blocks, modalities, num_embedding_channels, processor_latents):
    """Raise a ValueError naming the block and the received values for a U-Net that cannot be built."""
    groups = blocks["num_groups"]
    num_blocks = len(groups)
    processor = num_blocks // 2
    if groups[processor] != 1:
        raise ValueError(
            f"{model_name}: the processor (the middle block, block {processor}) must have 1 group. "
            f"Received: num_groups[{processor}]={groups[processor]} (num_groups={groups})"
        )
    try:
        assign_groups_to_modalities(groups[0], [1] * len(modalities))
    except ValueError:
        raise ValueError(
            f"{model_name}: there are more modalities than groups in block 0 (a group never mixes "
            f"modalities). Expected at most num_groups[0]={groups[0]} modalities. "
            f"Received: {len(modalities)} ({list(modalities)})"
        ) from None
    latents, dims = blocks["num_latents"], blocks["latent_dim"]
    for i in range(num_blocks):
        width = num_embedding_channels if i == 0 else dims[i - 1]
        for heads_name, width_name, channels in (
            ("num_self_attention_heads", f"latent_dim[{i}]", dims[i]),
            ("num_cross_attention_heads", f"latent_dim[{i}]", dims[i]),
            (
                "num_cross_attention_heads",
                "num_embedding_channels" if i == 0 else f"latent_dim[{i - 1}] (its inputs)",
                width,
            ),
        ):
            heads = blocks[heads_name][i]
            if channels % heads:
                raise ValueError(
                    f"{model_name}: block {i}: {width_name}={channels} channels must be divisible by "
                    f"{heads_name}[{i}]={heads}."
                )
        if i > 0:
            sizes = processor_latents if i - 1 == processor else (latents[i - 1],)
            for size in sizes:
                if (groups[i - 1] * size) % groups[i]:
                    raise ValueError(
                        f"{model_name}: block {i} regroups {groups[i - 1]} groups x {size} latents into "
                        f"num_groups[{i}]={groups[i]} groups: expected num_groups[{i - 1}] x "
                        f"num_latents[{i - 1}] divisible by num_groups[{i}]. Received: "
                        f"{groups[i - 1]} x {size} = {groups[i - 1] * size}"
                    )
        if i > processor:
            j = num_blocks - 1 - i
            if groups[i] != groups[j] or latents[i] != latents[j]:
                raise ValueError(
                    f"{model_name}: decoder block {i} adds the output of encoder block {j} (U-Net skip): "
                    f"their groups and latents must match. Received: (num_groups, num_latents) = "
                    f"({groups[i]}, {latents[i]}) for block {i} and ({groups[j]}, {latents[j]}) for block {j}"
                )


def fill_padding_masks(inputs, input_shapes):
    """`inputs` with None for every absent optional `<m>_padding_mask`.

    `__call__` does it too (`ModelInputsMixin`); `call` needs it where Keras
    calls it directly (the JAX trainer's `stateless_call`).
    """
    if not isinstance(inputs, dict):
        return inputs
    return {**{padding_mask_name(m): None for m in input_shapes}, **inputs}


def check_modality_inputs(model_name, input_shapes, inputs):
    """Raise a ValueError unless `inputs` is a dict (its keys, shapes and dtypes: `check_model_inputs`)."""
    if not isinstance(inputs, dict):
        raise ValueError(
            f"{model_name}: the inputs must be a dict of modality name -> (B, M, C) tensor, with the "
            f"modalities {list(input_shapes)}. Received: {type(inputs).__name__}"
        )


@keras.saving.register_keras_serializable(package="keras_perceiver")
class HiPBackbone(PerceiverFunctionalModel):
    """Hierarchical Perceiver backbone: modalities {m: (B, M_m, C_m)} -> grouped latents (B, G, N, D).

    Graph (official `HiP.__call__` up to the reconstruction head):
    1. `ModalityEmbedder`: every modality to E = `num_embedding_channels`.
    2. `ModalityPositionEncoder`: learned positions pos_m (M_m, E) added;
       pos_m are also the masked auto-encoding (MAE) queries.
    3. `ModalityGrouper`: the modalities into G_0 = `num_groups[0]` groups
       of N_0 elements (B, G_0, N_0, E), in the input dict's order; also the
       MAE queries. Optional per-modality padding masks are grouped too.
    4. L `HiPBlock`s (L odd, at least 3) as a U-Net: encoder blocks
       0 .. P-1, the processor P = L // 2 (1 group), decoder blocks
       P+1 .. L-1. Block i regroups its inputs into `num_groups[i]` groups
       (block 0 takes the grouper's), cross-attends from its own
       `num_latents[i]` latents per group (width `latent_dim[i]`), and runs
       `num_self_attends_per_block[i]` self-attention layers. Decoder block i
       adds encoder block L-1-i's output to its latent queries (U-Net skip,
       projected when the widths differ).

    For HiP-16: num_groups (16, 4, 1, 1, 1, 4, 16), skips 4 <- 2, 5 <- 1,
    6 <- 0. Task models (`HierarchicalPerceiver`, `HiPClassBottleneck`,
    `HiPClassifier`) call these layers in their own graph (`encode`).

    Label modalities (official `HiPClassBottleneck`): the modalities named in
    `label_modalities` skip steps 1-3 and the encoder. They are embedded to
    the width entering the processor, C = `latent_dim[P-1]`
    (`label_embedder`), get learned positions of that width without
    projection (`label_position_encoder`; the positions are the queries of
    the label reconstruction head) and are appended, one group each, to the
    latents regrouped into the processor's single group
    (`ModalityConcatenation`): the processor cross-attends to
    G_{P-1} * N_{P-1} + sum M_label inputs. Steps 1-3 and the grouping of
    the reconstruction use the other modalities only.

    `num_position_encoding_channels` follows the official code: the learned
    positions always have E channels, and a value other than None and E only
    adds a bias-free E x E projection per modality (the official docstring's
    projection from that width is never built).

    Padding masks: an optional input `<m>_padding_mask` (B, M_m) bool (True =
    real) per modality. Padded elements, and then the grouper's own zero
    padding, are not attended to by block 0. Without masks (the default) the
    outputs equal the official code's, which attends to the zero padding.
    A label modality's mask acts at the processor: its padded elements are
    not attended to there.

    Source: HiP (arXiv 2202.10890) sections 3-4, table 1 (HiP-16, HiP-256);
    official `perceiver.py` `HiP`, `HiPClassBottleneck`,
    `perceiver_blocks.py`.

    Args:
        input_shapes: dict of modality name -> (M_m, C_m), one example
            without the batch. The dict's order sets the group order.
        num_groups: tuple of ints, groups per block (L entries; the middle
            one 1).
        num_self_attends_per_block: tuple (or int), self-attention layers per
            block.
        num_latents: tuple (or int), N, latents per group (official
            `z_index_dim`).
        latent_dim: tuple (or int), D, latent widths (official
            `num_z_channels`).
        num_cross_attention_heads: tuple (or int).
        num_self_attention_heads: tuple (or int).
        cross_attention_widening_factor: tuple (or int).
        self_attention_widening_factor: tuple (or int).
        num_embedding_channels: int, E, the width of every modality's
            embedding and position encoding.
        num_position_encoding_channels: int or None; a value other than None
            and E adds the E x E position projection (see above). Defaults
            to None.
        regroup_type: `"reshape"` (default) or `"transpose_reshape"`.
        activation: MLP activation, `"squared_relu"` (default, HiP's),
            `"gelu"` or `"gelu_approximate"`.
        processor_num_latents_train: int or None, the processor's latents at
            training time (a random subset per example). Defaults to None
            (`num_latents[P]`).
        processor_num_latents_eval: int or None, the processor's latents at
            inference (then `num_latents[P]` at training time). Only one of
            the two may be given. Defaults to None.
        dropout: float, dropout in the self-attention layers. Defaults to 0.
        drop_path_rate: float in [0, 1), stochastic depth in every
            self-attention layer (one draw per example, no rescaling).
            Defaults to 0.
        label_modalities: tuple of modality names (of `input_shapes`) that
            enter at the processor (see above). Defaults to `()`: none, the
            official `HiP`.
        position_encoding_type: `"learned"` (default, the official code's)
            or `"fourier"`: HiP-Fourier, the paper's ablation, where pos_m
            is a learned bias-free projection of the Fourier features of
            `fourier_positions[m]` (see `ModalityPositionEncoder`).
        fourier_positions: dict of data modality name -> (M_m, d)
            coordinates of its elements (e.g. a pixel's original row and
            column in [-1, 1]); required for `"fourier"`, stored in the
            config.
        num_bands: int, Fourier bands per axis. Defaults to 16.
        max_resolution: None or d ints, the Fourier resolution per axis;
            None: round(M_m ** (1 / d)) per axis.
        input_dtype: dtype of the inputs. Defaults to `"float32"`.
        seed: optional int, seed of the processor's latent subsets.
        dtype: dtype policy of every layer, e.g. `"mixed_bfloat16"`.

    Inputs (a dict):
        `<m>`: (B, M_m, C_m) for every modality.
        `<m>_padding_mask`: optional (B, M_m) bool.

    Returns:
        dict: `"latents"` (B, G_{L-1}, N_{L-1}, D_{L-1}), the last block's
        grouped latents, and `"mae_queries"` (B, G_0, N_0, E), the grouped
        position encodings that the reconstruction head reads with. With
        label modalities also `"processor_latents"` (B, 1, N_P, D_P), the
        processor's output, and `"label_queries"` {m: (B, M_m, D_{P-1})},
        the label modalities' positions.

    Raises:
        ValueError: for an even number of blocks (or fewer than 3), a
            processor with more than one group, more modalities than groups,
            latent widths not divisible by the heads, per-block tuples of
            different lengths, groups that cannot be regrouped, skips whose
            groups or latents differ, both processor overrides, label
            modalities that are not modalities (or all of them), or (at
            call) missing modalities or inputs of the wrong shape; every
            message names the expected and received values.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import HiPBackbone
    >>> backbone = HiPBackbone(input_shapes={"image": (12, 3)}, num_groups=(4, 1, 4),
    ...     num_self_attends_per_block=1, num_latents=(2, 4, 2), latent_dim=(8, 16, 8),
    ...     num_cross_attention_heads=1, num_self_attention_heads=2, cross_attention_widening_factor=1,
    ...     self_attention_widening_factor=2, num_embedding_channels=4)
    >>> outputs = backbone({"image": keras.ops.ones((2, 12, 3))})
    >>> tuple(outputs["latents"].shape), tuple(outputs["mae_queries"].shape)
    ((2, 4, 2, 8), (2, 4, 3, 4))
    """

    # The official variants (HiP-16, HiP-256, Mini, 16x3); `from_preset(name, input_shapes={...})`.
    presets = HIP_BACKBONE_PRESETS

    def __init__(
        self,
        input_shapes,
        num_groups,
        num_self_attends_per_block,
        num_latents,
        latent_dim,
        num_cross_attention_heads,
        num_self_attention_heads,
        cross_attention_widening_factor,
        self_attention_widening_factor,
        num_embedding_channels,
        num_position_encoding_channels=None,
        regroup_type="reshape",
        activation="squared_relu",
        processor_num_latents_train=None,
        processor_num_latents_eval=None,
        dropout=0.0,
        drop_path_rate=0.0,
        label_modalities=(),
        position_encoding_type="learned",
        fourier_positions=None,
        num_bands=16,
        max_resolution=None,
        input_dtype="float32",
        seed=None,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        model_name = self.__class__.__name__
        config["input_shapes"] = _normalize_input_shapes(model_name, input_shapes)
        config["label_modalities"] = labels = _normalize_label_modalities(
            model_name, label_modalities, config["input_shapes"]
        )
        blocks = _per_block(model_name, config)
        config.update(blocks)
        check_positive_int("num_embedding_channels", num_embedding_channels)
        check_positive_int("num_position_encoding_channels", num_position_encoding_channels, allow_none=True)
        check_positive_int("processor_num_latents_train", processor_num_latents_train, allow_none=True)
        check_positive_int("processor_num_latents_eval", processor_num_latents_eval, allow_none=True)
        check_choice("regroup_type", regroup_type, REGROUP_TYPES)
        check_choice("activation", activation, ACTIVATIONS)
        check_drop_path_rate(drop_path_rate)
        num_blocks = len(blocks["num_groups"])
        processor = num_blocks // 2
        if processor_num_latents_train is not None and processor_num_latents_eval is not None:
            raise ValueError(
                f"{model_name}: give at most one of `processor_num_latents_train` and "
                "`processor_num_latents_eval` (the other one is num_latents of the processor). Received: "
                f"processor_num_latents_train={processor_num_latents_train}, "
                f"processor_num_latents_eval={processor_num_latents_eval}"
            )
        train = processor_num_latents_train or blocks["num_latents"][processor]
        evaluation = processor_num_latents_eval or blocks["num_latents"][processor]
        if train > evaluation:
            raise ValueError(
                f"{model_name}: the processor's latents at training time must be at most those at "
                f"inference (a random subset is used). Received: train={train}, eval={evaluation}"
            )
        modalities = config["input_shapes"]
        data_modalities = {m: shape for m, shape in modalities.items() if m not in labels}
        _check_architecture(
            model_name, blocks, data_modalities, num_embedding_channels, sorted({train, evaluation})
        )

        # === Layers ===
        index_dims = {m: shape[0] for m, shape in data_modalities.items()}
        use_projection = num_position_encoding_channels not in (None, num_embedding_channels)
        embedder = ModalityEmbedder(num_embedding_channels, dtype=dtype, name="embedder")
        position_encoder = ModalityPositionEncoder(
            index_dims,
            use_projection=use_projection,
            position_encoding_type=position_encoding_type,
            fourier_positions=fourier_positions,
            num_bands=num_bands,
            max_resolution=max_resolution,
            dtype=dtype,
            name="position_encoder",
        )
        position_config = position_encoder.get_config()
        for key in ("fourier_positions", "max_resolution"):
            config[key] = position_config[key]
        grouper = ModalityGrouper(blocks["num_groups"][0], index_dims, dtype=dtype, name="grouper")
        hip_blocks = [
            HiPBlock(
                num_groups=blocks["num_groups"][i],
                num_latents=evaluation if i == processor else blocks["num_latents"][i],
                latent_dim=blocks["latent_dim"][i],
                num_self_attends_per_block=blocks["num_self_attends_per_block"][i],
                num_cross_attention_heads=blocks["num_cross_attention_heads"][i],
                num_self_attention_heads=blocks["num_self_attention_heads"][i],
                cross_attention_widening_factor=blocks["cross_attention_widening_factor"][i],
                self_attention_widening_factor=blocks["self_attention_widening_factor"][i],
                regroup_inputs=i > 0,
                regroup_type=regroup_type,
                num_latents_train=train if i == processor and train < evaluation else None,
                activation=activation,
                dropout=dropout,
                drop_path_rate=drop_path_rate,
                seed=None if seed is None else seed + i,
                dtype=dtype,
                name=f"block_{i}",
            )
            for i in range(num_blocks)
        ]
        label_layers = None
        if labels:
            label_index_dims = {m: shape[0] for m, shape in modalities.items() if m in labels}
            label_layers = _LabelLayers(
                ModalityEmbedder(blocks["latent_dim"][processor - 1], dtype=dtype, name="label_embedder"),
                ModalityPositionEncoder(label_index_dims, dtype=dtype, name="label_position_encoder"),
                ModalityConcatenation(label_index_dims, dtype=dtype, name="label_concatenation"),
            )

        # === Functional graph ===
        layers = _HiPLayers(embedder, position_encoder, grouper, hip_blocks, label_layers, regroup_type)
        inputs = _new_inputs(modalities, input_dtype)
        encoded = layers.encode(inputs, modalities)
        outputs = {"latents": encoded["latents"], "mae_queries": encoded["mae_queries"]}
        if labels:
            outputs["processor_latents"] = encoded["block_outputs"][processor]
            outputs["label_queries"] = encoded["label_positions"]
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.embedder = embedder
        self.position_encoder = position_encoder
        self.grouper = grouper
        self.hip_blocks = hip_blocks
        self._label_layers = label_layers
        self.label_embedder = label_layers.embedder if label_layers else None
        self.label_position_encoder = label_layers.position_encoder if label_layers else None
        self.label_concatenation = label_layers.concatenation if label_layers else None
        self.input_shapes = modalities
        self.data_modalities = tuple(data_modalities)
        self.processor_index = processor
        for name in BLOCK_ARGUMENTS + (
            "num_embedding_channels",
            "num_position_encoding_channels",
            "regroup_type",
            "activation",
            "processor_num_latents_train",
            "processor_num_latents_eval",
            "dropout",
            "drop_path_rate",
            "label_modalities",
            "position_encoding_type",
            "fourier_positions",
            "num_bands",
            "max_resolution",
            "seed",
        ):
            setattr(self, name, config[name])
        self._perceiver_config = config

    def __call__(self, inputs, *args, **kwargs):
        inputs = self.named_inputs(inputs)  # a lone tensor for a model of one modality
        check_modality_inputs(self.__class__.__name__, self.input_shapes, inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, mask=None, **kwargs):
        inputs = fill_padding_masks(inputs, self.input_shapes)
        return super().call(inputs, training=training, mask=mask, **kwargs)

    def task_inputs(self):
        """Fresh `keras.Input`s like the backbone's, for a task graph that calls its layers (`encode`).

        Returns:
            dict: `<m>` (B, M_m, C_m) and optional `<m>_padding_mask` (B, M_m)
            inputs.
        """
        return _new_inputs(self.input_shapes, self._perceiver_config["input_dtype"])

    def encode(self, inputs, training=None):
        """Run the backbone's layers on a dict of inputs (symbolic or eager).

        Args:
            inputs: dict holding `<m>` (B, M_m, C_m) for every modality and
                optionally `<m>_padding_mask` (B, M_m) bool.
            training: bool or None, passed to the layers.

        The label modalities (if any) are in `inputs` too: they enter at
        the processor.

        Returns:
            dict: `"embeddings"` {m: (B, M_m, E)}; `"positions"` {m: (B, M_m,
            E)} (the MAE queries, ungrouped); `"encoder_inputs"` (B, G_0, N_0,
            E), the grouped embeddings with positions; `"padding_mask"`
            (B, G_0, N_0) bool or None; `"block_outputs"`, a list of every
            block's (B, G_i, N_i, D_i); `"latents"`, the last of them; and
            `"mae_queries"` (B, G_0, N_0, E); all of the modalities that go
            through the encoder. For the label modalities:
            `"label_embeddings"` {m: (B, M_m, D_{P-1})}, `"label_positions"`
            {m: (B, M_m, D_{P-1})} (the label reconstruction's queries) and
            `"processor_inputs"` (B, 1, G_{P-1} * N_{P-1} + sum M_m,
            D_{P-1}), what the processor reads; empty dicts and None
            without label modalities.
        """
        layers = _HiPLayers(
            self.embedder,
            self.position_encoder,
            self.grouper,
            self.hip_blocks,
            self._label_layers,
            self.regroup_type,
        )
        return layers.encode(inputs, self.input_shapes, training=training)


class _LabelLayers:
    """The layers of the label modalities (official `HiPClassBottleneck`)."""

    def __init__(self, embedder, position_encoder, concatenation):
        self.embedder, self.position_encoder, self.concatenation = embedder, position_encoder, concatenation


class _HiPLayers:
    """The backbone's layers and the order in which they run (usable before the Model exists)."""

    def __init__(
        self, embedder, position_encoder, grouper, blocks, label_layers=None, regroup_type="reshape"
    ):
        self.embedder, self.position_encoder, self.grouper = embedder, position_encoder, grouper
        self.blocks = list(blocks)
        self.label_layers = label_layers
        self.regroup_type = regroup_type

    def encode(self, inputs, modalities, training=None):
        labels = list(self.label_layers.position_encoder.index_dims) if self.label_layers else []
        data = [m for m in modalities if m not in labels]
        embeddings = self.embedder({m: inputs[m] for m in data})
        with_positions, positions = self.position_encoder(embeddings)
        masks = {m: inputs.get(padding_mask_name(m)) for m in data}
        encoder_inputs, padding_mask = self.grouper(with_positions, padding_mask=masks)
        mae_queries = self.grouper(positions)
        label_embeddings, label_positions, processor_inputs = {}, {}, None
        num_blocks = len(self.blocks)
        processor = num_blocks // 2
        hidden = []
        z = encoder_inputs
        for i, block in enumerate(self.blocks):
            skip = hidden[num_blocks - 1 - i] if i > processor else None
            mask = padding_mask if i == 0 else None
            if i == processor and labels:
                # Official `HiPClassBottleneck`: regroup into the processor's group, append the labels.
                label_embeddings = self.label_layers.embedder({m: inputs[m] for m in labels})
                label_inputs, label_positions = self.label_layers.position_encoder(label_embeddings)
                label_masks = {m: inputs.get(padding_mask_name(m)) for m in labels}
                z = regroup(z, 1, self.regroup_type)
                if all(label_mask is None for label_mask in label_masks.values()):
                    z = self.label_layers.concatenation(z, label_inputs)
                else:
                    z, mask = self.label_layers.concatenation(z, label_inputs, padding_mask=label_masks)
                processor_inputs = z
            z = block(z, skip=skip, padding_mask=mask, training=training)
            hidden.append(z)
        return {
            "embeddings": embeddings,
            "positions": positions,
            "encoder_inputs": encoder_inputs,
            "padding_mask": padding_mask,
            "block_outputs": hidden,
            "latents": z,
            "mae_queries": mae_queries,
            "label_embeddings": label_embeddings,
            "label_positions": label_positions,
            "processor_inputs": processor_inputs,
        }


def _new_inputs(modalities, input_dtype):
    inputs = {m: keras.Input(shape=shape, dtype=input_dtype, name=m) for m, shape in modalities.items()}
    for m, shape in modalities.items():
        name = padding_mask_name(m)
        inputs[name] = keras.Input(shape=(shape[0],), dtype="bool", name=name, optional=True)
    return inputs
