"""Read a Hugging Face transformers checkpoint directory without torch (safetensors)."""

import os

import numpy as np

from keras_perceiver.hub import hub_file, parse_hub_id
from keras_perceiver.json_files import read_json_object


def read_transformers_checkpoint(path, allow_pickle=False):
    """Read `config.json` and the weights of a transformers checkpoint directory.

    Weights come from `model.safetensors` (read with `safetensors.numpy`, no
    torch needed). A `pytorch_model.bin` is a Python pickle that can run
    arbitrary code when loaded: it is read (with torch, `weights_only=True`)
    only when `allow_pickle=True`, and only for files you trust.

    Args:
        path: str, directory written by `save_pretrained`.
        allow_pickle: bool, allow reading `pytorch_model.bin`. Defaults to False.

    Returns:
        (config dict, {parameter name: float32 numpy array}).

    Raises:
        FileNotFoundError: if the directory, its `config.json` or any weights
            file is missing.
        ValueError: if only a pickle file is present and `allow_pickle` is
            False, if `config.json` is not a JSON object, or if
            `model.safetensors` is not a readable safetensors file (both
            messages name the file).
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Expected a transformers checkpoint directory. Received: path={path!r}")
    config_path = os.path.join(path, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"No config.json in the checkpoint directory {path!r}")
    config = read_json_object(config_path, "a transformers config")
    safetensors_path = os.path.join(path, "model.safetensors")
    pickle_path = os.path.join(path, "pytorch_model.bin")
    if os.path.exists(safetensors_path):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            weights = load_file(safetensors_path)
        except SafetensorError as error:  # the library's own parse error: truncated or not safetensors
            raise ValueError(
                f"{safetensors_path!r} is not a readable safetensors file (truncated, or another format). "
                f"Received: {os.path.getsize(safetensors_path)} bytes; safetensors says: {error}"
            ) from error
    elif os.path.exists(pickle_path):
        if not allow_pickle:
            raise ValueError(
                f"{path!r} holds only pytorch_model.bin, a pickle that can execute code when read. "
                "Pass allow_pickle=True if you trust the file, or convert it to model.safetensors."
            )
        import torch

        state = torch.load(pickle_path, map_location="cpu", weights_only=True)
        weights = {k: v.float().numpy() for k, v in state.items()}
    else:
        raise FileNotFoundError(
            f"No model.safetensors (or pytorch_model.bin) in the checkpoint directory {path!r}"
        )
    return config, {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}


def transformers_hub_directory(hub_id, allow_pickle=False):
    """The cache directory of the hub checkpoint `hub_id` (`"owner/name[@revision]"`) with its `config.json`
    and weights fetched: `model.safetensors`, or, with `allow_pickle`, `pytorch_model.bin` where the
    repository has no safetensors file.

    Raises:
        FileNotFoundError: for a missing repository or revision, or no
            weights file (with what `allow_pickle` would add).
        ValueError: for a malformed `hub_id`.
    """
    repo_id, revision = parse_hub_id(hub_id, scheme=False)
    config = hub_file(repo_id, "config.json", revision)
    if hub_file(repo_id, "model.safetensors", revision, required=False) is None:
        pickle = hub_file(repo_id, "pytorch_model.bin", revision, required=False) if allow_pickle else None
        if pickle is None:
            hint = "" if allow_pickle else " (a pytorch_model.bin is read only with allow_pickle=True)"
            raise FileNotFoundError(f"Hub repository {hub_id!r} has no model.safetensors{hint}.")
    return os.path.dirname(config)
