"""Build a task's model from a preset or the task's small configuration, with checked overrides."""

import inspect

from keras_perceiver.models.perceiver_backbone import STACK_ARGUMENTS

# Flat-form names whose `from_preset` (backbone) name differs.
PRESET_NAMES = {"image_shape": "input_shape"}


def accepted_arguments(model_class):
    """Names a task's overrides may use: the flat form's (`from_hyperparameters`), the latent stack's
    (`STACK_ARGUMENTS`), the backbone's and the head's constructor arguments (a set)."""
    flat = inspect.signature(model_class.from_hyperparameters).parameters
    # HiP's flat form takes the backbone's arguments as **kwargs: name them from the backbone class.
    backbone = inspect.signature(model_class.backbone_class.__init__).parameters
    named = {
        name
        for name, parameter in [*flat.items(), *backbone.items()]
        if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    } | model_class.head_argument_names()
    return (named | set(STACK_ARGUMENTS)) - {"self", "cls", "backbone"}


def build_model(model_class, small_config, params, **required):
    """`model_class` from `params["preset"]` (published hyperparameters) or `small_config`.

    Without a preset the model is built from one flat argument list,
    `model_class.from_hyperparameters(**{**small_config, **required,
    **overrides})` (modality, latent-stack and head arguments together).

    Args:
        model_class: a `PerceiverTaskModel` subclass.
        small_config: dict, the task's small configuration (used without a preset), in the flat form of
            `model_class.from_hyperparameters`.
        params: the run's parameters (`preset`, `overrides`).
        **required: arguments the task's data fixes (e.g. the number of
            classes), applied over the preset (as `from_preset` arguments:
            backbone or head arguments) or the small config;
            `params["overrides"]` are applied last.

    Raises:
        ValueError: for overrides that are neither arguments of
            `model_class.from_hyperparameters`, latent-stack arguments
            (`STACK_ARGUMENTS`) nor head arguments, or an unknown preset.
    """
    overrides = dict(params.get("overrides") or {})
    accepted = accepted_arguments(model_class)
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise ValueError(
            f"Unknown overrides {unknown} for {model_class.__name__}. Expected arguments among "
            f"{sorted(accepted)}"
        )
    if params.get("preset"):
        arguments = {PRESET_NAMES.get(key, key): value for key, value in {**required, **overrides}.items()}
        return model_class.from_preset(params["preset"], **arguments)
    return model_class.from_hyperparameters(**{**small_config, **required, **overrides})
