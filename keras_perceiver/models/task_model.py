"""Base class of the task models: a head on a `PerceiverBackbone` (keras-hub's Backbone/Task split)."""

import inspect

from keras_perceiver.layers.query_decoder import QueryDecoder
from keras_perceiver.models.functional_model import PerceiverFunctionalModel
from keras_perceiver.models.layer_arguments import deserialize_layers
from keras_perceiver.models.perceiver_backbone import (
    STACK_ARGUMENTS,
    PerceiverBackbone,
    truncated_normal,
)
from keras_perceiver.models.preset_loading import load_preset_directory, resolve_preset_directory
from keras_perceiver.models.task_pipeline import TaskPipelineMixin

# Names of task arguments before the backbone/head split -> their names now.
RENAMED_ARGUMENTS = {
    "decoder_num_heads": "decoder_num_cross_attention_heads",
    "decoder_widening_factor": "decoder_cross_attention_widening_factor",
    "out_channels": "output_channels",
}


def rename_arguments(config):
    """`config` with the argument names of `RENAMED_ARGUMENTS` replaced by the current ones."""
    return {RENAMED_ARGUMENTS.get(key, key): value for key, value in config.items()}


def split_stack_arguments(config):
    """(latent-stack arguments of `config` for `PerceiverBackbone`, the rest), both dicts."""
    stack = {key: value for key, value in config.items() if key in STACK_ARGUMENTS}
    rest = {key: value for key, value in config.items() if key not in STACK_ARGUMENTS}
    return stack, rest


class PerceiverTaskModel(TaskPipelineMixin, PerceiverFunctionalModel):
    """A Functional task model: a head on a `PerceiverBackbone`.

    Subclasses take `backbone` plus their head's own arguments, build their
    graph on `backbone.task_inputs()` with `backbone.encode(...)` (the
    backbone's layers, not a nested model, so weight paths stay those of a
    flat model) and keep the backbone as `self.backbone`.

    Configs: `get_config()` holds `"backbone"` (its serialization) and the
    head's arguments. A config without `"backbone"` was saved before the
    backbone/head split (version 1, one flat argument list);
    `from_config` reads it with `from_hyperparameters`, and old argument
    names (`RENAMED_ARGUMENTS`) are accepted.

    Presets: `presets[name]` holds `"backbone"` (a preset name of
    `backbone_class`, `PerceiverBackbone` by default, shared by the tasks
    that use it) and `"config"` (the head's arguments).

    Raw inputs: `preprocessor=` (any task's constructor) or
    `model.preprocessor = ...` attaches a task preprocessor
    (`keras_perceiver.task_preprocessors`), with which `fit`, `predict` and
    `evaluate` take raw strings, images, frames or audio
    (`TaskPipelineMixin`).
    """

    LAYER_ARGUMENTS = ("backbone",)
    # The class whose presets `presets[name]["backbone"]` names.
    backbone_class = PerceiverBackbone

    @classmethod
    def from_hyperparameters(cls, **hyperparameters):
        """Build from one flat argument list: modality, latent-stack and head arguments.

        The form of configs saved before the backbone/head split, and of the
        training job's small configurations and `--override` flags.
        Subclasses define it.

        Raises:
            NotImplementedError: for a task without a flat form.
        """
        raise NotImplementedError(f"{cls.__name__} has no flat (version 1) argument form.")

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "backbone" not in config:  # version 1: saved before the backbone/head split
            config.pop("trainable", None)
            # (its "preprocessor" is the input preprocessor of the flat form)
            config = deserialize_layers(config, cls.LAYER_ARGUMENTS + ("preprocessor",))
            return cls.from_hyperparameters(**rename_arguments(config))
        config, preprocessor = cls._pop_preprocessor(config)
        if config.get("id2label") is None:
            config.pop("id2label", None)  # classifiers only (ClassNamesMixin)
        return cls(**deserialize_layers(config, cls.LAYER_ARGUMENTS), preprocessor=preprocessor)

    def get_config(self):
        config = self._preprocessor_config(super().get_config())
        if getattr(self, "id2label", None) is not None:
            config["id2label"] = list(self.id2label)
        return config

    @classmethod
    def head_argument_names(cls):
        """The named constructor arguments of the task (not `backbone`): the head's and the mixins'
        (`preprocessor`, `id2label`), over the classes of the MRO (a subclass may take `**kwargs`)."""
        names = set()
        for klass in cls.__mro__:
            if klass is PerceiverFunctionalModel:
                break
            if "__init__" in vars(klass):
                parameters = inspect.signature(klass.__init__).parameters.values()
                names |= {p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        return names - {"self", "backbone"}

    @classmethod
    def from_preset(cls, preset, weights=None, **kwargs):
        """Build a named preset (see `presets`) or load a directory written by `save_to_preset`.

        Args:
            preset: str, a name in `presets`, the path of a preset
                directory (config, weights and metadata) of this task, or of
                a `PerceiverBackbone` (then the head is new), or such a
                preset on the Hugging Face Hub, `"hf://owner/name"`
                (optionally `"@revision"`), read through `huggingface_hub`.
            weights: optional path of a `.weights.h5` file to load (for a
                directory: instead of its own weights).
            **kwargs: arguments that override the preset's: the head's
                constructor arguments go to the head (`dtype` to both), the
                others to the backbone (`PerceiverBackbone` arguments, or its
                input preprocessor's, e.g. `num_bands`).

        Raises:
            ValueError: for an unknown preset name, a corrupt preset directory
                or one that holds another model class.
            FileNotFoundError: for a preset directory or hub repository with
                missing files.

        Example:
        >>> from keras_perceiver.models import PerceiverTextClassifier
        >>> model = PerceiverTextClassifier.from_preset("language_perceiver_classifier",  # doctest: +SKIP
        ...     num_classes=3)
        """
        head_names = cls.head_argument_names()
        backbone_kwargs = {
            key: value for key, value in kwargs.items() if key not in head_names or key == "dtype"
        }
        head_kwargs = {key: value for key, value in kwargs.items() if key in head_names}
        if isinstance(preset, str) and preset in cls.presets:
            entry = cls.presets[preset]
            backbone = cls.backbone_class.from_preset(entry["backbone"], **backbone_kwargs)
            model = cls(backbone=backbone, **{**entry["config"], **head_kwargs})
            if weights is not None:
                model.load_weights(weights)
            return model
        directory = resolve_preset_directory(preset)
        if directory is not None:
            return load_preset_directory(cls, directory, weights=weights, **kwargs)
        raise ValueError(
            f"Unknown preset {preset!r} for {cls.__name__}. Expected one of {sorted(cls.presets)}, "
            "an existing directory written by `save_to_preset` or a hub id 'hf://owner/name[@revision]'."
        )

    def _set_backbone(self, backbone, config):
        """Keep `backbone` and the config (call after `super().__init__`)."""
        self.backbone = backbone
        self._perceiver_config = config


def check_backbone(task_name, backbone):
    """Raise a `TypeError` naming the received value unless `backbone` is a `PerceiverBackbone`."""
    if not isinstance(backbone, PerceiverBackbone):
        raise TypeError(
            f"{task_name}: `backbone` must be a `PerceiverBackbone`. Received: {type(backbone).__name__}"
        )


def build_query_decoder(
    backbone,
    num_cross_attention_heads=1,
    qk_channels=None,
    v_channels=None,
    cross_attention_widening_factor=1,
    use_query_residual=False,
    output_channels=None,
    query_mask_mode="ignore",
    dtype=None,
):
    """The head's `QueryDecoder` named `"decoder"`, with the backbone's activation, dropout and initializer.

    Args:
        backbone: the `PerceiverBackbone` the head reads.
        num_cross_attention_heads, qk_channels, v_channels,
            cross_attention_widening_factor, use_query_residual,
            output_channels, query_mask_mode: `QueryDecoder` arguments
            (a task's `decoder_*` arguments).
        dtype: dtype policy.

    Returns:
        The `QueryDecoder` layer.
    """
    return QueryDecoder(
        num_cross_attention_heads=num_cross_attention_heads,
        qk_channels=qk_channels,
        v_channels=v_channels,
        cross_attention_widening_factor=cross_attention_widening_factor,
        use_query_residual=use_query_residual,
        output_channels=output_channels,
        query_mask_mode=query_mask_mode,
        activation=backbone.activation,
        dropout=backbone.dropout,
        attention_dropout=backbone.attention_dropout,
        kernel_initializer=truncated_normal(backbone.initializer_range),
        dtype=dtype,
        name="decoder",
    )
