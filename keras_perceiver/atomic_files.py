"""Artifacts written so that a process killed at any moment leaves the previous artifact intact and loadable.

- `staged_directory(directory)`: write a directory (a preset, an export)
  into a temporary sibling; on success it replaces `directory` in one step
  (`renameat2(RENAME_EXCHANGE)` on Linux: the old and new directories swap
  atomically, so `directory` always holds one complete version), on failure
  the sibling is removed and `directory` is untouched.
- `staged_file(path)`: the same for one file (a checkpoint, `model.keras`):
  written under a temporary name in the same directory, then `os.replace`d.

Leftover siblings of a killed process (`.<name>.partial-*`) are removed by the
next successful write of the same artifact.
"""

import contextlib
import ctypes
import errno
import glob
import os
import shutil
import tempfile

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a, b):
    """Swap the paths `a` and `b` atomically; False where the system or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), b)


def _partial_prefix(path):
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.partial-")


def _remove_leftovers(path, keep):
    for leftover in glob.glob(glob.escape(_partial_prefix(path)) + "*"):
        if leftover != keep:
            shutil.rmtree(leftover, ignore_errors=True) if os.path.isdir(leftover) else os.remove(leftover)


def replace_directory(staging, directory):
    """Put the complete directory `staging` at `directory`, replacing what is there in one step.

    Where the atomic exchange is not available, the old directory is renamed
    aside first (a kill between the two renames leaves it beside
    `directory`, as `.<name>.partial-*-old`).
    """
    if os.path.isdir(directory):
        if _exchange(staging, directory):
            shutil.rmtree(staging, ignore_errors=True)  # now the old version
            return
        backup = f"{staging}-old"
        os.rename(directory, backup)
        try:
            os.rename(staging, directory)
        except BaseException:
            os.rename(backup, directory)
            raise
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.rename(staging, directory)


@contextlib.contextmanager
def staged_directory(directory):
    """Context manager: yields a temporary sibling of `directory` to fill; it replaces `directory` on exit.

    Args:
        directory: str or path-like; its parent is created if missing.

    Yields:
        str, the absolute path of the staging directory (empty).

    Raises:
        Whatever the body raises: the staging directory is removed and
        `directory` keeps its previous contents.
    """
    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    prefix = os.path.basename(_partial_prefix(directory))
    staging = tempfile.mkdtemp(prefix=prefix, dir=os.path.dirname(directory))
    try:
        yield staging
        replace_directory(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _remove_leftovers(directory, keep=None)


@contextlib.contextmanager
def staged_file(path, suffix=""):
    """Context manager: yields a temporary path beside `path` to write; it replaces `path` on exit.

    Args:
        path: str or path-like, the final file.
        suffix: str, the temporary name's ending (e.g. ".weights.h5", for
            writers that check the extension). Defaults to "".

    Yields:
        str, the temporary file path (not created).

    Raises:
        Whatever the body raises: the temporary file is removed and `path`
        keeps its previous contents.
    """
    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle, staging = tempfile.mkstemp(
        prefix=os.path.basename(_partial_prefix(path)), suffix=suffix, dir=os.path.dirname(path)
    )
    os.close(handle)
    os.remove(staging)
    try:
        yield staging
        os.replace(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.remove(staging)
        raise
    _remove_leftovers(path, keep=None)
