"""Data sets as HiP sees them: dicts of modalities {m: (M_m, C_m)} with labels, for the `hip_*` tasks.

A `ModalitySet` maps a `training.data` reader's examples to a modality
dict (float32 (M_m, C_m) per modality, plus the integer label) and says
what the model needs: the modality shapes, the number of classes, the
original coordinates of every element (the Fourier position option) and
an optional per-example augmentation (seeded, stateless).

- `fashion_mnist`: the 784 pixels of a Fashion-MNIST image as an unordered
  set, `{"pixels": (784, 1)}`, normalized as the `fashion_mnist` task does
  and shuffled by one fixed random permutation (`PIXEL_PERMUTATION_SEED`,
  the same for every image and every run), so the pixel order carries no
  2-D structure (issue: learned positions need MAE). The coordinates are
  each pixel's original (row, column) on `linspace(-1, 1, 28)`, permuted
  alike.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from keras_perceiver.layers.fourier_position_encoding import linear_positions
from training.tasks.fashion_mnist import IMAGE_SHAPE, NUM_CLASSES, VALIDATION_SIZE, normalize

# The one fixed pixel permutation of the unordered Fashion-MNIST set (not the run's seed: every run and
# every image sees the same order).
PIXEL_PERMUTATION_SEED = 20_220_221


@dataclasses.dataclass(frozen=True)
class ModalitySet:
    """A reader's examples as HiP modalities (see the module docstring).

    Attributes:
        name: the reader (`training.data`) name.
        input_shapes: dict of modality name -> (M_m, C_m).
        num_classes: int, classes of the example labels.
        coordinates: dict of modality name -> float32 (M_m, d) array, every
            element's position in its original space (for Fourier features).
        preprocess: function example -> {"inputs": {m: (M_m, C_m)}, "label":
            int64}, deterministic (before the cache).
        augment: optional function (inputs, seed) -> inputs, training only.
        reader_options: keyword options of the reader's `load`.
    """

    name: str
    input_shapes: dict
    num_classes: int
    coordinates: dict
    preprocess: Callable
    augment: Callable | None = None
    reader_options: dict = dataclasses.field(default_factory=dict)


def pixel_permutation():
    """The fixed permutation (784,) int of the unordered Fashion-MNIST pixels."""
    num_pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    return np.random.default_rng(PIXEL_PERMUTATION_SEED).permutation(num_pixels)


def _fashion_mnist_set():
    permutation = pixel_permutation()
    num_pixels = len(permutation)
    coordinates = np.asarray(linear_positions(IMAGE_SHAPE[:2]))[permutation]

    def preprocess(example):
        pixels = tf.reshape(normalize(example["image"]), (num_pixels, 1))
        return {"inputs": {"pixels": tf.gather(pixels, permutation)}, "label": example["label"]}

    return ModalitySet(
        name="fashion_mnist",
        input_shapes={"pixels": (num_pixels, 1)},
        num_classes=NUM_CLASSES,
        coordinates={"pixels": coordinates.astype(np.float32)},
        preprocess=preprocess,
        # The validation split of the `fashion_mnist` task.
        reader_options={"validation_size": VALIDATION_SIZE},
    )


MODALITY_SETS = {"fashion_mnist": _fashion_mnist_set}


def get_modality_set(dataset):
    """The `ModalitySet` of the reader `dataset`.

    Raises:
        ValueError: for a data set without a modality view, listing those that have one.
    """
    if dataset not in MODALITY_SETS:
        raise ValueError(
            f"The hip_* tasks read data sets as modality dicts. Expected --dataset among "
            f"{sorted(MODALITY_SETS)}. Received: dataset={dataset!r}"
        )
    return MODALITY_SETS[dataset]()
