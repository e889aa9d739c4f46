"""Build a task's model from a preset or the task's small configuration, with checked overrides."""

import inspect


def build_model(model_class, small_config, params, **required):
    """`model_class` from `params["preset"]` (published hyperparameters) or `small_config`.

    Args:
        model_class: a `PerceiverTaskModel` subclass.
        small_config: dict, the task's small configuration (used without a preset).
        params: the run's parameters (`preset`, `overrides`).
        **required: constructor arguments the task's data fixes (e.g. the
            number of classes), applied over the preset or the small config;
            `params["overrides"]` are applied last.

    Raises:
        ValueError: for overrides that are not constructor arguments of
            `model_class`, or an unknown preset.
    """
    overrides = dict(params.get("overrides") or {})
    accepted = set(inspect.signature(model_class.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(overrides) - accepted)
    if unknown:
        raise ValueError(
            f"Unknown overrides {unknown} for {model_class.__name__}. Expected constructor arguments among "
            f"{sorted(accepted)}"
        )
    if params.get("preset"):
        return model_class.from_preset(params["preset"], **{**required, **overrides})
    return model_class(**{**small_config, **required, **overrides})
