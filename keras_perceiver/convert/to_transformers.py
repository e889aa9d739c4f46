"""Write a keras_perceiver model back as a transformers checkpoint (`config.json` + `model.safetensors`).

The inverse of `from_transformers`, found by running it: every checkpoint
tensor reaches its Keras variable through transposes and reshapes only, so a
conversion of a checkpoint whose tensors hold their own element indices
(0, 1, 2, ... in each tensor) leaves in each Keras variable the index of the
checkpoint element each value came from, and which tensor it came from is
recorded (`recording_assignments`). Scattering the model's values to those
indices gives the transformers state dict; transformers' model for the
config supplies the names and shapes (built on torch's `meta` device:
nothing is allocated).

Source: the converter's mapping (`from_transformers.py`); keras-hub's
`Backbone.export_to_transformers` for the user-facing shape.
"""

import json
import math
import os

import numpy as np

from keras_perceiver.atomic_files import staged_directory

# float32 holds every integer below 2^24 exactly: the element indices of each tensor must stay below.
MAX_TENSOR_SIZE = 2**24


def _transformers_config(config):
    """A config dict from a dict, a `transformers.PerceiverConfig` or a checkpoint directory / hub id."""
    if isinstance(config, dict):
        return dict(config)
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if isinstance(config, (str, os.PathLike)):
        from keras_perceiver.convert.transformers_checkpoint import transformers_hub_directory
        from keras_perceiver.hub import looks_like_repo_id
        from keras_perceiver.json_files import read_json_object

        directory = os.fspath(config)
        if not os.path.isdir(directory) and looks_like_repo_id(directory):
            directory = transformers_hub_directory(directory)
        return read_json_object(os.path.join(directory, "config.json"), "a transformers config")
    raise TypeError(
        "`config` must be a transformers config dict, a PerceiverConfig, or a checkpoint directory or hub "
        "id. "
        f"Received: {type(config).__name__}"
    )


def export_to_transformers(model, path, config):
    """Write `model` as the transformers checkpoint of `config`'s architecture; `from_pretrained` loads it.

    Args:
        model: a keras_perceiver model of the architecture `config`
            describes (e.g. one made by `from_transformers`, then trained),
            any dtype policy (weights are written as float32).
        path: str, the directory to write (`config.json`,
            `model.safetensors`); replaced in one step (an existing
            checkpoint stays whole if writing fails).
        config: the transformers config: a dict (`config.json`'s contents,
            with `architectures`), a `transformers.PerceiverConfig`, or a
            checkpoint directory or hub id to read it from.

    Returns:
        str, `path`.

    Raises:
        ValueError: if `model` does not have the weights (number, order and
            shapes) of `config`'s architecture, if a checkpoint tensor has
            more than 2^24 elements, or if a tensor is left without values.
        TypeError: for a `config` of another type.
        ImportError: without torch and transformers (they give the names
            and shapes of the checkpoint's tensors).
    """
    import torch
    import transformers
    from safetensors.numpy import save_file

    from keras_perceiver.convert.from_transformers import from_state_dict, recording_assignments

    config = _transformers_config(config)
    architecture = (config.get("architectures") or ["PerceiverModel"])[0]
    model_class = getattr(transformers, architecture, None)
    if model_class is None:
        raise ValueError(f"transformers has no class {architecture!r} (config `architectures`).")
    with torch.device("meta"):
        reference = model_class(transformers.PerceiverConfig(**config))
    shapes = {name: tuple(tensor.shape) for name, tensor in reference.state_dict().items()}
    too_large = sorted(name for name, shape in shapes.items() if math.prod(shape) > MAX_TENSOR_SIZE)
    if too_large:
        raise ValueError(f"Tensors of more than 2^24 elements cannot be exported this way: {too_large}")
    # Each tensor holds its own element indices.
    tagged = {
        name: np.arange(math.prod(shape), dtype=np.float64).reshape(shape) for name, shape in shapes.items()
    }
    unused = []  # tied duplicates and buffers of the full state dict: left out, as save_pretrained does
    with recording_assignments() as assignments:
        tagged_model = from_state_dict(config, tagged, unused=unused)
    source = {id(variable): name for variable, name in assignments}
    theirs, ours = tagged_model.weights, model.weights
    if len(ours) != len(theirs) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(ours, theirs)):
        raise ValueError(
            f"`model` does not have the weights of {architecture} with this config: expected "
            f"{[tuple(v.shape) for v in theirs][:6]}... ({len(theirs)} weights). Received: "
            f"{[tuple(w.shape) for w in ours][:6]}... ({len(ours)} weights)"
        )
    state = {name: np.full(math.prod(shapes[name]), np.nan, np.float32) for name in source.values()}
    for weight, variable in zip(ours, theirs):
        if id(variable) not in source:  # a Keras-only variable (e.g. a seed generator's state)
            continue
        indices = np.asarray(variable.numpy(), np.float64).ravel().astype(np.int64)
        state[source[id(variable)]][indices] = np.asarray(weight.numpy(), np.float32).ravel()
    unfilled = sorted(name for name, values in state.items() if np.isnan(values).any())
    if unfilled:
        raise ValueError(f"Checkpoint tensors left without values: {unfilled}")
    state = {name: values.reshape(shapes[name]) for name, values in state.items()}
    for name in unused:  # BatchNorm's step counter, which no Keras weight holds: written as 0
        if name.endswith("num_batches_tracked"):
            state[name] = np.zeros(shapes[name], np.int64)
    path = os.fspath(path)
    with staged_directory(path) as staging:
        save_file(state, os.path.join(staging, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(staging, "config.json"), "w") as f:
            json.dump({**config, "architectures": [architecture], "model_type": "perceiver"}, f, indent=2)
    return path
