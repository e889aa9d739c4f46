"""Split names, checks and deterministic assignment of examples to splits, shared by the data readers."""

import hashlib

import numpy as np


def check_split(reader, split, splits):
    """Raise a ValueError naming the reader's splits if `split` is not one of them."""
    if split not in splits:
        raise ValueError(f"{reader}: unknown split. Expected one of {list(splits)}. Received: {split!r}")


def check_fraction(reader, name, value):
    """Raise a ValueError unless 0 < value < 1."""
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{reader}: {name} must be in (0, 1). Received: {name}={value!r}")


def hash_fraction(text, salt=""):
    """A number in [0, 1) fixed by `text` (and `salt`): SHA-256, stable across runs, machines and Python.

    Used to split by content: equal texts always land in the same split, and
    adding or removing other examples never moves an example to another split.
    """
    digest = hashlib.sha256((salt + "\0" + text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def hash_split_mask(texts, split, test_fraction, validation_fraction=0.0, salt=""):
    """Boolean numpy array: which of `texts` belong to `split` when splitting by content hash.

    `hash_fraction(text, salt)` in [0, test_fraction) -> "test",
    [test_fraction, test_fraction + validation_fraction) -> "validation",
    the rest -> "train".
    """
    fractions = np.array([hash_fraction(text, salt) for text in texts], dtype=np.float64)
    if split == "test":
        return fractions < test_fraction
    if split == "validation":
        return (fractions >= test_fraction) & (fractions < test_fraction + validation_fraction)
    return fractions >= test_fraction + validation_fraction


def check_hash_split(reader, split, test_fraction, validation_fraction):
    """Check the split name and the fractions of a hash-split reader."""
    check_split(reader, split, ("train", "validation", "test"))
    check_fraction(reader, "test_fraction", test_fraction)
    if not 0.0 <= validation_fraction < 1.0 - test_fraction:
        raise ValueError(
            f"{reader}: validation_fraction must be in [0, 1 - test_fraction). "
            f"Received: validation_fraction={validation_fraction!r}, test_fraction={test_fraction!r}"
        )
    if split == "validation" and validation_fraction == 0:
        raise ValueError(f"{reader}: the validation split needs validation_fraction > 0. Received: 0")
