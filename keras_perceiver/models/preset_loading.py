"""Build a task model from one of its presets (published hyperparameters)."""


def from_preset(cls, preset, weights=None, **kwargs):
    """Build `cls` with the config of `cls.presets[preset]`, overridden by `kwargs`.

    Args:
        cls: a task model class with a `presets` dict.
        preset: str, the preset name.
        weights: optional path of a `.weights.h5` file to load.
        **kwargs: constructor arguments that override the preset's.

    Returns:
        The built model.

    Raises:
        ValueError: for an unknown preset name.
    """
    if preset not in cls.presets:
        raise ValueError(
            f"Unknown preset {preset!r} for {cls.__name__}. Expected one of {sorted(cls.presets)}"
        )
    model = cls(**{**cls.presets[preset]["config"], **kwargs})
    if weights is not None:
        model.load_weights(weights)
    return model
