"""Task-model presets: built-in published hyperparameters, or a directory written by `save_to_preset`.

A preset directory holds, in Keras' own formats:

- `config.json`: `keras.saving.serialize_keras_object(model)` (module, class
  name, registered name and the model's `get_config()`, i.e. its
  constructor arguments);
- `model.weights.h5`: `model.save_weights(...)`;
- `metadata.json`: the keras_perceiver and Keras versions, the registered
  class name, the parameter count and the format version.

Directories are written into a temporary sibling first and swapped into
place in one step (`keras_perceiver.atomic_files`), so a failure or a kill
at any moment leaves either the previous preset or the new one, complete.
"""

import json
import os

import keras

from keras_perceiver.atomic_files import staged_directory
from keras_perceiver.hub import HF_SCHEME, hub_directory, parse_hub_id
from keras_perceiver.json_files import read_json_object

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
PRESET_FORMAT_VERSION = 1
BACKBONE_CLASSES = ("PerceiverBackbone", "HiPBackbone")


def save_to_preset(model, directory, overwrite=False):
    """Write `model`'s config, weights and metadata to `directory`.

    Args:
        model: a built `PerceiverBackbone` or task model.
        directory: str or path-like, the preset directory. Created if
            missing; an existing empty directory is used.
        overwrite: bool, replace an existing non-empty directory. Defaults to
            False.

    Raises:
        FileExistsError: if `directory` exists, is not empty and `overwrite`
            is False, or is a file.
        OSError, ValueError: from writing (e.g. `OSError` EFBIG or ENOSPC
            for a full disk); an existing preset is kept as it was, and a
            new `directory` is not created.
    """
    import keras_perceiver  # the package imports this module: read its version at call time

    directory = os.path.abspath(os.fspath(directory))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise FileExistsError(f"save_to_preset: `directory` is a file, expected a directory: {directory}")
    if os.path.isdir(directory) and os.listdir(directory) and not overwrite:
        raise FileExistsError(
            f"save_to_preset: {directory} exists and is not empty. Pass overwrite=True to replace it, "
            "or choose a new directory."
        )
    with staged_directory(directory) as staging:
        config = keras.saving.serialize_keras_object(model)
        _write_json(os.path.join(staging, CONFIG_FILE), config)
        model.save_weights(os.path.join(staging, WEIGHTS_FILE))
        metadata = {
            "format_version": PRESET_FORMAT_VERSION,
            "keras_perceiver_version": keras_perceiver.__version__,
            "keras_version": keras.__version__,
            "class_name": config.get("registered_name") or config["class_name"],
            "parameter_count": int(model.count_params()),
        }
        _write_json(os.path.join(staging, METADATA_FILE), metadata)


def _write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def is_preset_directory(preset):
    """True if `preset` names an existing directory (rather than a built-in preset name)."""
    return isinstance(preset, (str, os.PathLike)) and os.path.isdir(os.fspath(preset))


def resolve_preset_directory(preset):
    """The local directory of `preset`: an existing directory, or a hub id `hf://owner/name[@revision]`
    whose config, metadata and weights are fetched into the Hugging Face cache (`keras_perceiver.hub`);
    None for anything else (a built-in name is looked up by the caller).

    Raises:
        FileNotFoundError: for a hub repository, revision or preset file that is missing.
        ValueError: for a malformed `hf://` id.
    """
    if is_preset_directory(preset):
        return os.fspath(preset)
    if isinstance(preset, str) and preset.startswith(HF_SCHEME):
        repo_id, revision = parse_hub_id(preset)
        return hub_directory(repo_id, [CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE], revision)
    return None


def _read_json(directory, filename):
    path = os.path.join(directory, filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Preset directory {directory} has no {filename}: expected a directory written by "
            f"`save_to_preset` (with {CONFIG_FILE}, {WEIGHTS_FILE} and {METADATA_FILE})."
        )
    return read_json_object(path, f"a preset's {filename}")


# Modules a preset's config may name: deserializing imports them.
SAFE_MODULES = ("keras_perceiver", "keras")


def _check_modules(config, directory):
    """Raise a ValueError if the serialized config names a module outside `SAFE_MODULES`."""
    if isinstance(config, dict):
        module = config.get("module")
        if isinstance(module, str) and module.split(".")[0] not in SAFE_MODULES:
            raise ValueError(
                f"Preset directory {directory}: {CONFIG_FILE} names the module {module!r}, which loading "
                f"would import. Expected modules of {list(SAFE_MODULES)}. Received: module={module!r}"
            )
        for value in config.values():
            _check_modules(value, directory)
    elif isinstance(config, list):
        for value in config:
            _check_modules(value, directory)


def load_preset_directory(cls, directory, weights=None, **kwargs):
    """Rebuild the model saved in `directory` by `save_to_preset`.

    Args:
        cls: the class `from_preset` was called on; the saved model must be
            an instance of it (`PerceiverTaskModel` accepts every task
            model), or a task whose backbone `cls` is (the backbone is
            returned), or a backbone that a task `cls` takes (a new head is
            built on it from `kwargs`).
        directory: the preset directory.
        weights: optional `.weights.h5` path loaded instead of the
            directory's weights.
        **kwargs: constructor arguments that override the saved config.

    Returns:
        The model with its saved (or given) weights.

    Raises:
        FileNotFoundError: for a missing config, metadata or weights file.
        ValueError: for corrupt files, a model of another class, weights
            that do not fit the model, or a config that names a module
            outside keras_perceiver and Keras or carries code (Keras'
            `safe_mode`).
    """
    directory = os.path.abspath(os.fspath(directory))
    metadata = _read_json(directory, METADATA_FILE)
    config = _read_json(directory, CONFIG_FILE)
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError(
            f"Preset directory {directory}: {CONFIG_FILE} must hold a serialized Keras model "
            f"(a dict with a 'config' dict). Received: {type(config).__name__}"
        )
    if not isinstance(metadata, dict) or metadata.get("format_version") != PRESET_FORMAT_VERSION:
        received = metadata.get("format_version") if isinstance(metadata, dict) else metadata
        raise ValueError(
            f"Preset directory {directory}: unsupported {METADATA_FILE}. Expected format_version="
            f"{PRESET_FORMAT_VERSION}. Received: {received!r}"
        )
    weights_path = os.fspath(weights) if weights is not None else os.path.join(directory, WEIGHTS_FILE)
    if not os.path.isfile(weights_path):
        raise FileNotFoundError(f"Preset directory {directory}: weights file {weights_path} not found.")

    head_kwargs = {}
    is_backbone_for_task = config.get("class_name") in BACKBONE_CLASSES and "backbone" in cls.LAYER_ARGUMENTS
    if is_backbone_for_task:
        head_kwargs, kwargs = kwargs, {}  # a backbone's directory loaded into a task: the head is new
    inner = config["config"]
    if isinstance(inner.get("backbone"), dict) and kwargs:  # a task: backbone arguments go to its backbone
        from keras_perceiver.models.perceiver_backbone import backbone_arguments  # (imports this module)

        names = backbone_arguments()
        backbone = inner["backbone"]
        backbone_kwargs = {key: value for key, value in kwargs.items() if key in names}
        backbone = {**backbone, "config": {**backbone["config"], **backbone_kwargs}}
        head_only = {key: value for key, value in kwargs.items() if key not in names or key == "dtype"}
        inner = {**inner, "backbone": backbone, **head_only}
    else:
        inner = {**inner, **kwargs}
    config = {**config, "config": inner}
    _check_modules(config, directory)
    try:
        # safe_mode: a config cannot carry Python code (lambdas); `_check_modules`: nor import other modules.
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"Preset directory {directory}: could not rebuild the model of {CONFIG_FILE} "
            f"(class {metadata.get('class_name')!r}): {error}"
        ) from error
    is_task_of_backbone = isinstance(getattr(model, "backbone", None), cls)
    if not (isinstance(model, cls) or is_task_of_backbone or is_backbone_for_task):
        raise ValueError(
            f"Preset directory {directory} holds a {type(model).__name__}, not a {cls.__name__}. "
            f"Load it with {type(model).__name__}.from_preset(...)."
        )
    try:
        model.load_weights(weights_path)
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(
            f"Preset directory {directory}: the weights in {weights_path} do not load into the "
            f"{type(model).__name__} of {CONFIG_FILE}: {error}"
        ) from error
    if weights is None and not kwargs and model.count_params() != metadata.get("parameter_count"):
        raise ValueError(
            f"Preset directory {directory}: the rebuilt model has {model.count_params()} parameters, "
            f"expected {metadata.get('parameter_count')} from {METADATA_FILE}."
        )
    if is_task_of_backbone and not isinstance(model, cls):
        return model.backbone
    if is_backbone_for_task:
        return cls(backbone=model, **head_kwargs)
    return model


def from_preset(cls, preset, weights=None, **kwargs):
    """Build `cls` from a built-in preset name or a directory written by `save_to_preset`.

    Args:
        cls: a task model class with a `presets` dict.
        preset: str, a name in `cls.presets`, the path of a preset
            directory, or a hub id `"hf://owner/name[@revision]"` of one.
        weights: optional path of a `.weights.h5` file to load (for a
            directory: instead of its own weights).
        **kwargs: constructor arguments that override the preset's.

    Returns:
        The built model.

    Raises:
        ValueError: for an unknown preset name, or a directory whose files
            are corrupt or hold another model class.
        FileNotFoundError: for a preset directory or hub repository with
            missing files.
    """
    if isinstance(preset, str) and preset in cls.presets:
        model = cls.from_config({**cls.presets[preset]["config"], **kwargs})
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
