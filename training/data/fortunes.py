"""Quotations in eight languages from the Debian fortune packages: {"text": tf.string} (+ "label").

Source: Debian `fortunes`, `fortunes-min` (English, 40 topic files),
`fortunes-de`, `-es`, `-it`, `-pl`, `-ru`, `-cs`, `-zh` (BSD / GPL; not copied
into this project) in `/usr/share/games/fortunes` (or `data_dir`, or
`$FORTUNES_DIR`, or under `$KERAS_PERCEIVER_DATA_ROOT`, where `make
debian-data` extracts the packages without root). Each file holds quotes separated by lines of a single `%`.
Per language: `en` the regular files of the top directory, `zh` its
`chinese`, `song100` and `tang300` (ANSI colour codes removed), the other
languages their subdirectories (`cs/` for Czech; `cz/` and `sk/` repeat it).
Index files (`.dat`), `.u8` aliases, empty files, symbolic links of the top
directory and the offensive `off/` directories are skipped.

A text corpus for masked language modelling: {"text": tf.string UTF-8}; with
`with_labels=True` also "label": int64, the index of the quote's language in
`languages` (a language identification task).

Splits by content (SHA-256 of the quote; `training.data.splits`): `"test"`
~`test_fraction` (default 5%), `"validation"` ~`validation_fraction`
(default 0), `"train"` the rest. Quotes are stripped of surrounding blank space;
order is language, then file name, then position in the file.
"""

import functools
import os
import re

import numpy as np
import tensorflow as tf

from training.data.sources import first_existing_dir, system_paths
from training.data.splits import check_hash_split, hash_split_mask

SPLITS = ("train", "validation", "test")
DEFAULT_DIR = "/usr/share/games/fortunes"
ENV_VAR = "FORTUNES_DIR"
LANGUAGES = ("en", "de", "es", "it", "pl", "ru", "cs", "zh")
CHINESE_FILES = ("chinese", "song100", "tang300")
DEBIAN_PACKAGES = {
    "en": "fortunes fortunes-min",
    "de": "fortunes-de",
    "es": "fortunes-es",
    "it": "fortunes-it",
    "pl": "fortunes-pl",
    "ru": "fortunes-ru",
    "cs": "fortunes-cs",
    "zh": "fortunes-zh",
}
_SEPARATOR = re.compile(r"^%[ \t]*$", flags=re.MULTILINE)
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def language_files(language, directory):
    """Sorted paths of the fortune files of one language under `directory` (may be empty)."""
    if language not in LANGUAGES:
        raise ValueError(f"fortunes: unknown language. Expected one of {LANGUAGES}. Received: {language!r}")
    if language in ("en", "zh"):
        folder = directory
        names = sorted(os.listdir(directory))
        names = [name for name in names if (name in CHINESE_FILES) == (language == "zh")]
    else:
        folder = os.path.join(directory, language)
        names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    paths = []
    for name in names:
        path = os.path.join(folder, name)
        if name.endswith((".dat", ".u8")) or not os.path.isfile(path) or os.path.getsize(path) == 0:
            continue
        if folder == directory and os.path.islink(path):  # top-level links point into the language folders
            continue
        paths.append(path)
    return paths


def read_fortune_file(path):
    """The quotes of one `%`-separated fortune file (UTF-8, ANSI escapes removed), stripped, non-empty."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    text = _ANSI_ESCAPE.sub("", text)
    return [quote.strip() for quote in _SEPARATOR.split(text) if quote.strip()]


@functools.lru_cache(maxsize=8)
def _read_language(language, directory):
    return tuple(quote for path in language_files(language, directory) for quote in read_fortune_file(path))


def _directory(data_dir):
    if data_dir is not None:
        directory = str(data_dir)
    else:
        directory = os.environ.get(ENV_VAR) or first_existing_dir(system_paths(DEFAULT_DIR))
    if not os.path.isdir(directory):
        origin = "data_dir" if data_dir is not None else f"${ENV_VAR} or the default"
        raise FileNotFoundError(
            f"fortunes: data not found. Expected a directory of fortune files. Received: {directory!r} "
            f"(from {origin}). Install it with `apt-get install {' '.join(DEBIAN_PACKAGES.values())}` "
            f"(or `make debian-data`: without root it extracts them under .data/debian, found through "
            f"$KERAS_PERCEIVER_DATA_ROOT), or set ${ENV_VAR}."
        )
    return directory


def load_arrays(split, data_dir=None, languages=LANGUAGES, test_fraction=0.05, validation_fraction=0.0):
    """The split as (list of str, int64 language indices (N,))."""
    check_hash_split("fortunes", split, test_fraction, validation_fraction)
    if isinstance(languages, str):
        languages = tuple(language.strip() for language in languages.split(","))
    languages = tuple(languages)
    if not languages:
        raise ValueError(f"fortunes: no language selected. Expected some of {LANGUAGES}. Received: ()")
    directory = _directory(data_dir)
    texts, labels = [], []
    for index, language in enumerate(languages):
        quotes = _read_language(language, directory)
        if not quotes:
            raise FileNotFoundError(
                f"fortunes: no quotes for language {language!r} in {directory!r}. "
                f"Install them with `apt-get install {DEBIAN_PACKAGES[language]}`."
            )
        texts.extend(quotes)
        labels.extend([index] * len(quotes))
    mask = hash_split_mask(texts, split, test_fraction, validation_fraction, salt="fortunes")
    return [text for text, keep in zip(texts, mask) if keep], np.array(labels, dtype="int64")[mask]


def load(
    split, data_dir=None, languages=LANGUAGES, test_fraction=0.05, validation_fraction=0.0, with_labels=False
):
    """The `split` of the fortune quotes as a `tf.data.Dataset` of unbatched examples.

    Args:
        split: str, `"train"`, `"test"` or (with `validation_fraction > 0`)
            `"validation"`.
        data_dir: str or None, the fortunes directory; None looks at
            `$FORTUNES_DIR`, then
            `$KERAS_PERCEIVER_DATA_ROOT/usr/share/games/fortunes`, then
            `/usr/share/games/fortunes`.
        languages: sequence of language codes (or a comma-separated str)
            among `LANGUAGES` = ("en", "de", "es", "it", "pl", "ru", "cs",
            "zh"). Defaults to all eight.
        test_fraction: float in (0, 1). Defaults to 0.05.
        validation_fraction: float in [0, 1 - test_fraction). Defaults to 0.
        with_labels: bool, add "label" (index of the language in
            `languages`). Defaults to False.

    Returns:
        `tf.data.Dataset` of {"text": tf.string ()} (and "label": int64 ()).

    Raises:
        FileNotFoundError: if the directory or a selected language is missing
            (the message names the Debian package to install).
        ValueError: for an unknown split or language, or bad fractions.

    Example:
    >>> from training.data.fortunes import load
    >>> next(iter(load("test", languages="de")))["text"]  # doctest: +SKIP
    """
    texts, labels = load_arrays(split, data_dir, languages, test_fraction, validation_fraction)
    features = {"text": tf.constant(texts, tf.string)}
    if with_labels:
        features["label"] = labels
    return tf.data.Dataset.from_tensor_slices(features)
