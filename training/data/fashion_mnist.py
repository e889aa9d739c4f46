"""Fashion-MNIST from the Debian package's IDX files: {"image": uint8 (28, 28, 1), "label": int64}.

Source: Debian `dataset-fashion-mnist` (`apt-get install dataset-fashion-mnist`)
installs the four gzipped IDX files of Zalando's Fashion-MNIST (MIT licence;
60,000 train / 10,000 test 28x28 grey images of 10 clothing classes) in
`/usr/share/datasets/fashion-mnist` (or under `$KERAS_PERCEIVER_DATA_ROOT`,
where `make debian-data` extracts the package without root). Another
directory holding the same four files is taken from `data_dir` or
`$FASHION_MNIST_DIR`.

Splits: `"train"` (60,000) and `"test"` (10,000), the official ones. With
`validation_size=K > 0`, `"validation"` is K train examples drawn without
replacement by `seed`, and `"train"` holds the other 60,000 - K (disjoint).
"""

import functools
import gzip
import os

import numpy as np
import tensorflow as tf

from training.data.sources import find_data_dir
from training.data.splits import check_split

SPLITS = ("train", "validation", "test")
DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "FASHION_MNIST_DIR"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
NUM_CLASSES = 10
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
)  # fmt: skip
IMAGE_SHAPE = (28, 28, 1)
INSTALL_HINT = (
    "Install it with `apt-get install dataset-fashion-mnist` (Debian), or run `make debian-data` "
    "(without root it extracts the package under .data/debian, found through $KERAS_PERCEIVER_DATA_ROOT), "
    "or set $FASHION_MNIST_DIR."
)


def read_idx(path):
    """A gzipped IDX file (big-endian header: magic 0x00 0x00 0x08 ndim, then ndim uint32 sizes) as uint8."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:  # gzip's verdict on the file: not gzip, or cut short
        raise ValueError(
            f"{path}: not a readable gzip file. Expected a gzipped IDX file. "
            f"Received: {os.path.getsize(path)} bytes ({error})"
        ) from error
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(
            f"{path}: not an IDX file of unsigned bytes. Expected magic 00 00 08 xx. "
            f"Received: {data[:4].hex()}"
        )
    ndim = data[3]
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", count=ndim, offset=4))
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: truncated IDX file. Expected {shape} values. Received: {array.size}")
    return array.reshape(shape)


@functools.lru_cache(maxsize=4)
def _read(directory, part):
    images_file, labels_file = FILES[part]
    images = read_idx(os.path.join(directory, images_file))[..., None]
    labels = read_idx(os.path.join(directory, labels_file)).astype("int64")
    return images, labels


def load_arrays(split, data_dir=None, validation_size=0, seed=0):
    """The split as numpy arrays (images uint8 (N, 28, 28, 1), labels int64 (N,))."""
    check_split("fashion_mnist", split, SPLITS)
    required = [name for pair in FILES.values() for name in pair]
    directory = find_data_dir("fashion_mnist", data_dir, ENV_VAR, DEFAULT_DIR, required, INSTALL_HINT)
    if split == "test":
        return _read(directory, "test")
    images, labels = _read(directory, "train")
    if not 0 <= validation_size < len(labels):
        raise ValueError(
            f"fashion_mnist: validation_size must be in [0, {len(labels)}). Received: {validation_size!r}"
        )
    if split == "validation" and validation_size == 0:
        raise ValueError(
            "fashion_mnist: the validation split is carved from train and needs validation_size > 0. "
            "Received: validation_size=0"
        )
    if validation_size == 0:
        return images, labels
    permutation = np.random.default_rng(seed).permutation(len(labels))
    chosen = permutation[:validation_size] if split == "validation" else permutation[validation_size:]
    indices = np.sort(chosen)
    return images[indices], labels[indices]


def load(split, data_dir=None, validation_size=0, seed=0):
    """The `split` of Fashion-MNIST as a `tf.data.Dataset` of unbatched examples.

    Args:
        split: str, `"train"`, `"test"` or (with `validation_size > 0`)
            `"validation"`.
        data_dir: str or None, a directory with the four IDX `.gz` files;
            None looks at `$FASHION_MNIST_DIR`, then
            `$KERAS_PERCEIVER_DATA_ROOT/usr/share/datasets/fashion-mnist`,
            then `/usr/share/datasets/fashion-mnist`.
        validation_size: int, train examples moved to `"validation"`.
            Defaults to 0 (no validation split).
        seed: int, which train examples go to validation. Defaults to 0.

    Returns:
        `tf.data.Dataset` of {"image": uint8 (28, 28, 1), "label": int64 ()},
        in file order.

    Raises:
        FileNotFoundError: if the files are missing (the message says
            `apt-get install dataset-fashion-mnist`).
        ValueError: for an unknown split or a bad `validation_size`.

    Example:
    >>> from training.data.fashion_mnist import load
    >>> load("test").cardinality().numpy()  # doctest: +SKIP
    10000
    """
    images, labels = load_arrays(split, data_dir, validation_size, seed)
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
