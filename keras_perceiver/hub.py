"""Files of Hugging Face Hub model repositories via `huggingface_hub` (its cache, revisions, offline mode).

Two kinds of hub id are read:

- `hf://<owner>/<name>[@<revision>]`: a Keras preset saved with
  `save_to_preset` and uploaded to the hub (`from_preset`, as keras-hub's
  `hf://` presets);
- `<owner>/<name>`: a transformers checkpoint (`from_transformers`), when no
  local directory of that name exists (a local directory always wins).

Each file is fetched on its own with `huggingface_hub.hf_hub_download`
(`HF_HUB_CACHE` / `HF_HOME`, `HF_HUB_OFFLINE=1` for cache-only use, the
`revision` of a branch, tag or commit). A repository, revision or file that is
missing raises `FileNotFoundError` naming it; one that the cache records as
missing (`.no_exist`) does so without asking the network.

Source: keras-hub `keras_hub/src/utils/preset_utils.py` (`get_file`, the
`hf://` scheme); huggingface_hub's cache layout (huggingface.co/docs/hub/local-cache).
"""

import re

HF_SCHEME = "hf://"
# <owner>/<name> as the hub allows them (letters, digits, '-', '_', '.'), with an optional @revision.
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def parse_hub_id(hub_id, scheme=True):
    """`"hf://owner/name@revision"` (or `"owner/name"` with `scheme=False`) -> (repo_id, revision or None).

    Raises:
        ValueError: for an id that is not `owner/name` (with the `hf://` scheme when `scheme` is True).
    """
    form = "hf://owner/name[@revision]" if scheme else "owner/name[@revision]"
    text = hub_id if isinstance(hub_id, str) else ""
    if scheme:
        text = text[len(HF_SCHEME) :] if text.startswith(HF_SCHEME) else ""
    repo_id, _, revision = text.partition("@")
    if not REPO_ID.match(repo_id) or (_ and not revision):
        raise ValueError(f"Expected a hub id of the form {form!r}. Received: {hub_id!r}")
    return repo_id, revision or None


def looks_like_repo_id(name):
    """True for a str of the form `owner/name` or `owner/name@revision` (a candidate hub repository)."""
    if not isinstance(name, str):
        return False
    repo_id, _, revision = name.partition("@")
    return bool(REPO_ID.match(repo_id)) and (not _ or bool(revision))


def hub_file(repo_id, filename, revision=None, required=True):
    """The local path of `filename` in the hub repository `repo_id` (from the cache, or downloaded).

    Args:
        repo_id: str, `owner/name`.
        filename: str, a file of the repository.
        revision: optional branch, tag or commit. Defaults to `main`.
        required: bool. False returns None for a file the repository
            lacks (a probe); True raises. Defaults to True.

    Returns:
        str path, or None (a missing file with `required=False`).

    Raises:
        FileNotFoundError: for a missing repository, revision or required
            file (offline: one not in the cache), naming it.
        ImportError: if `huggingface_hub` is not installed.
    """
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        EntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}@{revision}" if revision else repo_id
    cached = try_to_load_from_cache(repo_id, filename, revision=revision)
    if isinstance(cached, str):
        return cached
    try:
        if cached is not None:  # the cache's sentinel for a file known to be missing: no network needed
            raise EntryNotFoundError(f"{filename} is recorded as missing in the cache")
        return hf_hub_download(repo_id, filename, revision=revision)
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise FileNotFoundError(
            f"Hub repository {where!r} was not found (or is private or gated): {type(error).__name__}"
        ) from error
    except EntryNotFoundError as error:  # LocalEntryNotFoundError (offline, not cached) is one too
        if not required:
            return None
        raise FileNotFoundError(
            f"Hub repository {where!r} has no {filename!r} (or it is not in the cache while offline: "
            f"HF_HUB_OFFLINE=1). {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from error


def hub_directory(repo_id, filenames, revision=None, optional=()):
    """Fetch `filenames` (each required) and `optional` ones of `repo_id`; return the snapshot directory
    that holds them (all files of one revision share it)."""
    import os

    paths = [hub_file(repo_id, name, revision) for name in filenames]
    for name in optional:
        hub_file(repo_id, name, revision, required=False)
    return os.path.dirname(paths[0])
