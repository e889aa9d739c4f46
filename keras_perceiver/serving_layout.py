"""TensorFlow Serving's model layout: a SavedModel copied to `<base>/<name>/<version>/`.

TF Serving watches `--model_base_path=<base>/<name>` and serves the highest
integer version directory it finds there. A version appears in one step
(filled in a hidden sibling, then renamed), so the server never loads a
half-written one. The files copied are the SavedModel's (`saved_model.pb`,
`fingerprint.pb`, `variables/`, `assets/`) and, in `assets.extra/` (where TF
Serving allows extra files), the export's `metadata.json`; TFLite files and
evaluation reports stay in the export.

Source: TensorFlow Serving, "Serving a TensorFlow Model" (the
`<model_base_path>/<version>` layout) and `saved_model_cli`.
"""

import os
import shutil

from keras_perceiver.atomic_files import staged_directory

SAVED_MODEL_FILES = ("saved_model.pb", "fingerprint.pb", "variables", "assets")


def versions(model_path):
    """The integer version directories under `model_path`, sorted (an empty list if there are none)."""
    if not os.path.isdir(model_path):
        return []
    return sorted(int(name) for name in os.listdir(model_path) if name.isdigit())


def write_serving_version(saved_model_dir, base, name, version=None):
    """Copy the SavedModel `saved_model_dir` to `<base>/<name>/<version>/` for TF Serving.

    Args:
        saved_model_dir: str, a SavedModel directory (e.g. a `training.export`
            output).
        base: str, the directory of served models (TF Serving's
            `--model_base_path` is `<base>/<name>`).
        name: str, the model's name (a single path component).
        version: positive int, or None for one above the highest existing
            version (1 for the first).

    Returns:
        str, the version directory written.

    Raises:
        FileNotFoundError: if `saved_model_dir` has no `saved_model.pb`.
        FileExistsError: if that version already exists.
        ValueError: for a `name` that is not one path component, or a
            `version` that is not a positive integer.
    """
    if not isinstance(name, str) or not name or os.sep in name or name in (".", "..") or name.startswith("."):
        raise ValueError(f"`name` must be one path component (no '/', not hidden). Received: name={name!r}")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValueError(f"`version` must be a positive integer or None. Received: version={version!r}")
    if not os.path.isfile(os.path.join(saved_model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"No saved_model.pb in {saved_model_dir!r}: expected a SavedModel directory.")
    model_path = os.path.join(base, name)
    existing = versions(model_path)
    version = version if version is not None else (existing[-1] + 1 if existing else 1)
    target = os.path.join(model_path, str(version))
    if os.path.exists(target):
        raise FileExistsError(f"Version {version} of {name!r} exists already: {target}")
    with staged_directory(target) as staging:
        for entry in SAVED_MODEL_FILES:
            source = os.path.join(saved_model_dir, entry)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(staging, entry))
            elif os.path.isfile(source):
                shutil.copy2(source, os.path.join(staging, entry))
        metadata = os.path.join(saved_model_dir, "metadata.json")
        if os.path.isfile(metadata):
            os.makedirs(os.path.join(staging, "assets.extra"))
            shutil.copy2(metadata, os.path.join(staging, "assets.extra", "metadata.json"))
    return target
