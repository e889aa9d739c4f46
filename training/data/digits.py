"""scikit-learn's handwritten digits as a tf.data reader: {"image": uint8 (8, 8, 1), "label": int64}.

Source: `sklearn.datasets.load_digits()` (1,797 real 8x8 digits of 43 writers,
UCI ML hand-written digits; bundled with scikit-learn, no download). Ink
levels 0..16 are scaled to 0..255 as `round(level * 255 / 16)` (16 -> 255).

Splits (80/20 by default, stratified by class, fixed by `seed`): the same
split as the main job's `training/train.py` (`train_test_split(...,
test_size=test_fraction, random_state=seed, stratify=labels)`), so numbers
stay comparable: 1,437 train / 360 test at the defaults. With
`validation_fraction > 0`, `"validation"` holds round(validation_fraction *
1,797) of the train examples (a second stratified `train_test_split` of the
train indices, same `seed`) and `"train"` the rest; the test split does not
change (at 0.1: 1,257 train / 180 validation / 360 test).
"""

import functools

import numpy as np
import tensorflow as tf

from training.data.splits import check_fraction, check_split

SPLITS = ("train", "validation", "test")
NUM_CLASSES = 10
IMAGE_SHAPE = (8, 8, 1)


@functools.lru_cache(maxsize=8)
def _split_indices(seed, test_fraction, validation_fraction=0.0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    labels = digits.target.astype("int64")
    train, test = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
    )
    validation = np.zeros((0,), train.dtype)
    if validation_fraction > 0:
        train, validation = train_test_split(
            train,
            test_size=int(round(validation_fraction * len(labels))),
            random_state=seed,
            stratify=labels[train],
        )
    images = np.round(digits.images * (255.0 / 16.0)).astype("uint8")[..., None]
    return images, labels, {"train": train, "validation": validation, "test": test}


def load_arrays(split, seed=0, test_fraction=0.2, validation_fraction=0.0):
    """The split as numpy arrays (images uint8 (N, 8, 8, 1), labels int64 (N,)), in the split's order.

    Raises:
        ValueError: for an unknown split, bad fractions, or `"validation"`
            with `validation_fraction=0`.
    """
    check_split("digits", split, SPLITS)
    check_fraction("digits", "test_fraction", test_fraction)
    if not 0.0 <= float(validation_fraction) < 1.0 - float(test_fraction):
        raise ValueError(
            "digits: validation_fraction must be in [0, 1 - test_fraction). "
            f"Received: validation_fraction={validation_fraction!r}, test_fraction={test_fraction!r}"
        )
    if split == "validation" and not validation_fraction > 0:
        raise ValueError(
            "digits: the validation split is carved from train and needs validation_fraction > 0. "
            f"Received: validation_fraction={validation_fraction!r}"
        )
    images, labels, indices = _split_indices(int(seed), float(test_fraction), float(validation_fraction))
    return images[indices[split]], labels[indices[split]]


def load(split, data_dir=None, seed=0, test_fraction=0.2, validation_fraction=0.0):
    """The `split` of the digits as a `tf.data.Dataset` of unbatched examples.

    Args:
        split: str, `"train"`, `"test"` or (with `validation_fraction > 0`)
            `"validation"`.
        data_dir: unused (the data ships with scikit-learn); accepted for the
            common reader interface.
        seed: int, the split's random state. Defaults to 0 (the main job's).
        test_fraction: float in (0, 1), the held-out fraction. Defaults to 0.2.
        validation_fraction: float in [0, 1 - test_fraction), the fraction
            of all examples moved from train to `"validation"` (stratified).
            Defaults to 0 (no validation split).

    Returns:
        `tf.data.Dataset` of {"image": uint8 (8, 8, 1), "label": int64 ()}.

    Raises:
        ValueError: for an unknown split, a fraction out of range, or
            `"validation"` with `validation_fraction=0`.

    Example:
    >>> from training.data.digits import load
    >>> tuple(next(iter(load("test")))["image"].shape)
    (8, 8, 1)
    """
    del data_dir
    images, labels = load_arrays(split, seed, test_fraction, validation_fraction)
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
