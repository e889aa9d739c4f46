"""The Perceiver backbone: input preprocessor -> cross-attention encoder -> latent processor."""

import copy
import inspect

import keras

from keras_perceiver.layers.cross_attention import CrossAttention
from keras_perceiver.layers.cross_attention_encoder import CrossAttentionEncoder
from keras_perceiver.layers.latent_processor import LatentProcessor
from keras_perceiver.models.functional_model import PerceiverFunctionalModel
from keras_perceiver.models.perceiver_backbone_presets import PERCEIVER_BACKBONE_PRESETS
from keras_perceiver.validation import check_positive_int, check_shape

# The backbone's arguments that describe the latent stack (and so are shared by every task head).
STACK_ARGUMENTS = (
    "num_latents",
    "latent_dim",
    "num_blocks",
    "num_self_attends_per_block",
    "num_cross_attention_heads",
    "num_self_attention_heads",
    "qk_channels",
    "v_channels",
    "cross_attention_shape_for_attention",
    "cross_attention_widening_factor",
    "self_attention_widening_factor",
    "use_query_residual",
    "num_cross_attends",
    "share_cross_attend_weights",
    "activation",
    "dropout",
    "attention_dropout",
    "initializer_range",
)


def truncated_normal(initializer_range):
    """The initializer of every kernel, latent array and embedding table: TruncatedNormal(stddev)."""
    return keras.initializers.TruncatedNormal(stddev=initializer_range)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverBackbone(PerceiverFunctionalModel):
    """Perceiver backbone: inputs -> latents (B, N, D), shared by every task head.

    Graph: `input_preprocessor` (the modality's input layer(s): e.g. pixels
    + Fourier positions, byte embeddings; DeepMind's input processors) maps
    the model inputs to the encoder inputs (B, M, C) -> `CrossAttentionEncoder`
    (N learned latents read the inputs, masked by `padding_mask`) ->
    `LatentProcessor` (`num_blocks` x `num_self_attends_per_block`
    self-attention layers). With `num_cross_attends` > 1 the latents re-read
    the inputs before every further latent block, as in the original
    Perceiver (the repeats share one cross-attention and one latent block
    with `share_cross_attend_weights`).

    Task models (`PerceiverImageClassifier(backbone, num_classes)`, ...) add
    a head (decoder queries, `QueryDecoder`, postprocessor) and call this
    backbone's layers in their own graph (`encode`), so a backbone, its
    weights included, moves from one task to another:
    `PerceiverTextClassifier(backbone=masked_lm.backbone, num_classes=2)`.

    Source: Perceiver IO (arXiv 2107.14795) section 2 (encode, process);
    Perceiver (arXiv 2103.03206) section 2 (repeated cross-attends);
    transformers `PerceiverModel` (embeddings, encoder) and keras-hub's
    `Backbone` contract.

    Args:
        input_shape: tuple, shape of one example without the batch (e.g.
            (M, C), (H, W, C), (None,) for token ids), or a dict of name ->
            shape for several named inputs (multimodal; `input_preprocessor`
            then takes the dict).
        input_preprocessor: optional layer, or list of layers applied in
            order, mapping the inputs to (B, M, C). Defaults to None (the
            inputs are already (B, M, C)).
        input_name: str, name of the single input. Defaults to `"inputs"`.
        input_dtype: dtype of the input(s). Defaults to `"float32"`.
        num_latents: int, N. Defaults to 256.
        latent_dim: int, D. Defaults to 1280.
        num_blocks: int, repeats of the latent block with shared weights.
            Defaults to 1.
        num_self_attends_per_block: int, L, self-attention layers per block.
            Defaults to 26.
        num_cross_attention_heads: int, heads of the encoder's
            cross-attention. Defaults to 8.
        num_self_attention_heads: int. Defaults to 8.
        qk_channels: int or None, query/key width (over all heads) of the
            encoder and processor; None uses the query width.
        v_channels: int or None, value width; None uses `qk_channels`.
        cross_attention_shape_for_attention: `"kv"` (widths from the inputs'
            channels C, default) or `"q"` (from D).
        cross_attention_widening_factor: int, MLP width multiplier of the
            encoder. Defaults to 1.
        self_attention_widening_factor: int. Defaults to 1.
        use_query_residual: bool, add the latents to the encoder's attention
            output. Defaults to True.
        num_cross_attends: int, cross-attends over the inputs (1 for Perceiver
            IO; 8 in the Perceiver's ImageNet models). Defaults to 1.
        share_cross_attend_weights: bool, the cross-attends and latent blocks
            after the first share weights (used when `num_cross_attends` > 1).
            Defaults to True.
        activation: `"gelu"` (exact, default) or `"gelu_approximate"`.
        dropout: float, dropout after attention and MLP. Defaults to 0.
        attention_dropout: float, dropout on the attention weights. Default 0.
        initializer_range: float, stddev of the truncated normal that
            initializes every kernel and the latent array (transformers'
            `initializer_range`). Defaults to 0.02.
        dtype: dtype policy of every layer, e.g. `"mixed_bfloat16"`.

    Inputs (a dict):
        `input_name` (or each name of a dict `input_shape`): the inputs.
        padding_mask: optional (B, M) bool, True for real inputs (single
            input only).

    Returns:
        dict: `"latents"` (B, N, D) and `"encoder_inputs"` (B, M, C), the
        preprocessed inputs that the heads read (their queries are built
        from them).

    Raises:
        ValueError: for non-positive sizes, an empty `input_shape`, or
            inputs/masks of the wrong shape (raised by the layers with the
            received values).

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverBackbone
    >>> backbone = PerceiverBackbone(input_shape=(50, 3), num_latents=8, latent_dim=16,
    ...     num_self_attends_per_block=1, num_cross_attention_heads=1, num_self_attention_heads=2)
    >>> outputs = backbone({"inputs": keras.ops.ones((2, 50, 3))})
    >>> tuple(outputs["latents"].shape), tuple(outputs["encoder_inputs"].shape)
    ((2, 8, 16), (2, 50, 3))
    """

    LAYER_ARGUMENTS = ("input_preprocessor",)
    presets = PERCEIVER_BACKBONE_PRESETS

    def __init__(
        self,
        input_shape,
        input_preprocessor=None,
        input_name="inputs",
        input_dtype="float32",
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
        num_cross_attends=1,
        share_cross_attend_weights=True,
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        initializer_range=0.02,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        if isinstance(input_shape, dict):
            config["input_shape"] = {
                key: check_shape(f"input_shape[{key!r}]", shape, allow_none=True)
                for key, shape in input_shape.items()
            }
            if not input_shape:
                raise ValueError("`input_shape` must name at least one input. Received: input_shape={}")
        else:
            if isinstance(input_shape, (tuple, list)) and not input_shape:
                raise ValueError("`input_shape` must have at least one dimension. Received: input_shape=()")
            config["input_shape"] = check_shape("input_shape", input_shape, allow_none=True)
        if isinstance(input_preprocessor, tuple):
            config["input_preprocessor"] = list(input_preprocessor)
        for name in (
            "num_latents",
            "latent_dim",
            "num_blocks",
            "num_self_attends_per_block",
            "num_cross_attends",
        ):
            check_positive_int(name, config[name])

        # === Layers ===
        if input_preprocessor is None:
            preprocessors = []
        elif isinstance(input_preprocessor, (list, tuple)):
            preprocessors = list(input_preprocessor)
        else:
            preprocessors = [input_preprocessor]
        common = dict(
            activation=activation,
            dropout=dropout,
            attention_dropout=attention_dropout,
            kernel_initializer=truncated_normal(initializer_range),
            dtype=dtype,
        )
        encoder = CrossAttentionEncoder(
            num_latents=num_latents,
            latent_dim=latent_dim,
            num_cross_attention_heads=num_cross_attention_heads,
            qk_channels=qk_channels,
            v_channels=v_channels,
            cross_attention_widening_factor=cross_attention_widening_factor,
            use_query_residual=use_query_residual,
            cross_attention_shape_for_attention=cross_attention_shape_for_attention,
            latent_initializer=truncated_normal(initializer_range),
            name="encoder",
            **common,
        )

        def latent_block(name):
            return LatentProcessor(
                num_blocks=num_blocks,
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
                shape_for_attention=cross_attention_shape_for_attention,
                name=name,
                **common,
            )

        processor = latent_block("processor")
        repeats = range(1, num_cross_attends)
        if share_cross_attend_weights:
            shared = (cross_attend("cross_attention_shared"), latent_block("processor_shared"))
            cross_attends = [shared for _ in repeats]
        else:
            cross_attends = [
                (cross_attend(f"cross_attention_{r}"), latent_block(f"processor_{r}")) for r in repeats
            ]

        # === Functional graph ===
        layers = _BackboneLayers(preprocessors, encoder, processor, cross_attends)
        inputs = _new_inputs(layers, config["input_shape"], input_name, input_dtype, padding_mask=True)
        outputs = layers.encode(
            inputs, config["input_shape"], input_name, padding_mask=inputs.get("padding_mask")
        )
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        # Layers are assigned after `super().__init__` (on the PyTorch backend a Model is a torch Module,
        # which takes no submodule before its own initialization).
        self.input_preprocessors = preprocessors
        self.encoder = encoder
        self.processor = processor
        self.cross_attends = cross_attends
        for name in ("input_name",) + STACK_ARGUMENTS:
            setattr(self, name, config[name])
        self._perceiver_config = config

    @classmethod
    def from_preset(cls, preset, weights=None, **kwargs):
        """Build a named preset (see `presets`) or load a directory written by `save_to_preset`.

        Args:
            preset: str, a name in `presets`, or the path of a preset
                directory of a backbone or of a task (its backbone is
                returned).
            weights: optional path of a `.weights.h5` file to load.
            **kwargs: arguments that override the preset's: `PerceiverBackbone`
                arguments, or arguments of its input preprocessor (the last
                one of a list), e.g. `num_bands` or `max_sequence_length`.

        Raises:
            ValueError: for an unknown preset name, a corrupt preset directory
                or one that holds another model class.
            TypeError: for an argument that neither the backbone nor its
                input preprocessor takes.
            FileNotFoundError: for a preset directory with missing files.

        Example:
        >>> from keras_perceiver.models import PerceiverBackbone
        >>> backbone = PerceiverBackbone.from_preset("vision_perceiver_fourier",  # doctest: +SKIP
        ...     input_shape=(64, 64, 3), max_resolution=(64, 64), num_blocks=2)
        """
        if isinstance(preset, str) and preset in cls.presets:
            kwargs = _route_preprocessor_arguments(cls.presets[preset]["config"], kwargs)
        return super().from_preset(preset, weights=weights, **kwargs)

    def task_inputs(self, padding_mask=False):
        """Fresh `keras.Input`s like the backbone's, for a task graph that calls its layers (`encode`).

        Args:
            padding_mask: bool, add the optional (B, M) `padding_mask` input
                (single input only). Defaults to False.

        Returns:
            dict of name -> symbolic input.
        """
        config = self._perceiver_config
        return _new_inputs(
            self._layers_view(),
            config["input_shape"],
            config["input_name"],
            config["input_dtype"],
            padding_mask,
        )

    def encode(self, inputs, padding_mask=None, training=None):
        """Run the backbone's layers: inputs -> `{"latents", "encoder_inputs"}`.

        Task models call it on their own `keras.Input`s, so that their graph
        holds the backbone's layers themselves (weight paths as in a flat
        model, and one set of weights shared with `backbone`); it also runs
        eagerly.

        Args:
            inputs: a dict holding the backbone's named input(s) (other keys
                are ignored).
            padding_mask: optional (B, M) bool, True for real inputs.
            training: bool or None, passed to the layers.

        Returns:
            dict: `"latents"` (B, N, D), `"encoder_inputs"` (B, M, C).
        """
        config = self._perceiver_config
        return self._layers_view().encode(
            inputs, config["input_shape"], config["input_name"], padding_mask=padding_mask, training=training
        )

    def _layers_view(self):
        return _BackboneLayers(self.input_preprocessors, self.encoder, self.processor, self.cross_attends)


class _BackboneLayers:
    """The backbone's layers and the order in which they run (usable before the Model exists)."""

    def __init__(self, preprocessors, encoder, processor, cross_attends):
        self.preprocessors = list(preprocessors)
        self.encoder, self.processor = encoder, processor
        self.cross_attends = [tuple(pair) for pair in cross_attends]

    def encoder_inputs_length(self, input_shape):
        """M of the preprocessed inputs of one example shape (None when unknown or varying)."""
        shape = (None, *input_shape)
        for layer in self.preprocessors:
            try:
                shape = layer.compute_output_shape(shape)
            except NotImplementedError:  # e.g. embeddings: M is the (varying) sequence length
                return input_shape[0] if len(input_shape) == 1 else None
        return shape[1] if len(shape) == 3 else None

    def encode(self, inputs, input_shape, input_name, padding_mask=None, training=None):
        if isinstance(input_shape, dict):
            x = {name: inputs[name] for name in input_shape}
        else:
            x = inputs[input_name]
        for layer in self.preprocessors:
            x = layer(x, training=training)
        latents = self.processor(
            self.encoder(x, padding_mask=padding_mask, training=training), training=training
        )
        for cross_attention, latent_block in self.cross_attends:
            latents = latent_block(
                cross_attention(latents, x, padding_mask=padding_mask, training=training), training=training
            )
        return {"latents": latents, "encoder_inputs": x}


def backbone_arguments():
    """The constructor arguments of `PerceiverBackbone` (a set of names)."""
    return set(inspect.signature(PerceiverBackbone.__init__).parameters) - {"self", "kwargs"}


def _route_preprocessor_arguments(config, kwargs):
    """`kwargs` for a backbone preset `config`; input preprocessor arguments go into that layer's config."""
    names = backbone_arguments()
    for_preprocessor = {key: value for key, value in kwargs.items() if key not in names}
    if not for_preprocessor:
        return kwargs
    layers = config.get("input_preprocessor")
    layers = copy.deepcopy(layers if isinstance(layers, list) else [layers] if layers else [])
    layer = layers[-1] if layers and isinstance(layers[-1], dict) else None
    accepted = set()
    if layer is not None:
        layer_class = keras.saving.get_registered_object(layer["class_name"])
        if layer_class is not None:
            accepted = set(inspect.signature(layer_class.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(for_preprocessor) - accepted)
    if unknown:
        raise TypeError(
            f"PerceiverBackbone.from_preset: unknown arguments {unknown}. Expected `PerceiverBackbone` "
            f"arguments {sorted(names)} or arguments of its input preprocessor {sorted(accepted)}"
        )
    layer["config"] = {**layer["config"], **for_preprocessor}
    preprocessor = layers if isinstance(config.get("input_preprocessor"), list) else layers[0]
    rest = {key: value for key, value in kwargs.items() if key in names}
    return {**rest, "input_preprocessor": kwargs.get("input_preprocessor", preprocessor)}


def _new_inputs(layers, input_shape, input_name, input_dtype, padding_mask):
    if isinstance(input_shape, dict):
        return {
            name: keras.Input(shape=shape, dtype=input_dtype, name=name)
            for name, shape in input_shape.items()
        }
    inputs = {input_name: keras.Input(shape=input_shape, dtype=input_dtype, name=input_name)}
    if padding_mask:
        inputs["padding_mask"] = keras.Input(
            shape=(layers.encoder_inputs_length(input_shape),),
            dtype="bool",
            name="padding_mask",
            optional=True,
        )
    return inputs
