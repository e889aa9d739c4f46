"""scikit-learn's handwritten digits as a tf.data reader: {"image": uint8 (8, 8, 1), "label": int64}.

Source: `sklearn.datasets.load_digits()` (1,797 real 8x8 digits of 43 writers,
UCI ML hand-written digits; bundled with scikit-learn, no download). Ink
levels 0..16 are scaled to 0..255 as `round(level * 255 / 16)` (16 -> 255).

Splits (80/20 by default, stratified by class, fixed by `seed`): the same
split as the main job's `training/train.py` (`train_test_split(...,
test_size=test_fraction, random_state=seed, stratify=labels)`), so numbers
stay comparable: 1,437 train / 360 test at the defaults.
"""

import functools

import numpy as np
import tensorflow as tf

from training.data.splits import check_fraction, check_split

SPLITS = ("train", "test")
NUM_CLASSES = 10
IMAGE_SHAPE = (8, 8, 1)


@functools.lru_cache(maxsize=4)
def _split_indices(seed, test_fraction):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    labels = digits.target.astype("int64")
    train, test = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
    )
    images = np.round(digits.images * (255.0 / 16.0)).astype("uint8")[..., None]
    return images, labels, train, test


def load_arrays(split, seed=0, test_fraction=0.2):
    """The split as numpy arrays (images uint8 (N, 8, 8, 1), labels int64 (N,)), in the split's order."""
    check_split("digits", split, SPLITS)
    check_fraction("digits", "test_fraction", test_fraction)
    images, labels, train, test = _split_indices(int(seed), float(test_fraction))
    indices = train if split == "train" else test
    return images[indices], labels[indices]


def load(split, data_dir=None, seed=0, test_fraction=0.2):
    """The `split` of the digits as a `tf.data.Dataset` of unbatched examples.

    Args:
        split: str, `"train"` or `"test"`.
        data_dir: unused (the data ships with scikit-learn); accepted for the
            common reader interface.
        seed: int, the split's random state. Defaults to 0 (the main job's).
        test_fraction: float in (0, 1), the held-out fraction. Defaults to 0.2.

    Returns:
        `tf.data.Dataset` of {"image": uint8 (8, 8, 1), "label": int64 ()}.

    Raises:
        ValueError: for an unknown split or a fraction outside (0, 1).

    Example:
    >>> from training.data.digits import load
    >>> tuple(next(iter(load("test")))["image"].shape)
    (8, 8, 1)
    """
    del data_dir
    images, labels = load_arrays(split, seed, test_fraction)
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
