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
- `inventor_point_clouds`: the Open Inventor CAD models
  (`training.data.inventor_point_clouds`) as clouds of 2,048 surface points,
  `{"points": (2048, 3)}` in the unit sphere, labels the 14 category
  folders; split by model, 5-fold (`--data_option=fold=<k>` picks the test
  fold; validation is the next fold). Augmentation (training only, seeded
  and stateless): a random rotation about the vertical (y, Inventor's up)
  axis, a random isotropic scale in [0.8, 1.2], Gaussian jitter (sigma 0.01,
  clipped at 0.05) and random subsampling (a new random order of the points,
  and 25% of them replaced by copies of kept points: PointNet++'s random
  input dropout, which keeps the shape). The points are then put in Morton
  (Z-curve) order of their coordinates (`morton_order`; also at evaluation
  and serving time, in `preprocess`), so that HiP's groups of consecutive
  points are places on the surface and a point's index says roughly where
  it is (the sampler's order is random: without the sort, groups are random
  subsets and a learned position carries nothing). Coordinates (for Fourier
  features) are the point indices on [-1, 1]; a point's own (x, y, z) are
  its values.
- `tuxpaint_segmentation`: Tux Paint photo cut-outs pasted on real photos
  (`training.data.tuxpaint_segmentation`, 64 x 64), `{"image": (4096, 3)}`
  (the pixels in row-major order, scaled to [-1, 1]); the label is
  per pixel, `(4096,)` int32, 1 on the stamp and 0 on the background
  (dense prediction: `num_classes` 2 are the classes of every pixel).
  Splits by stamp; 16 pastes per training stamp, 4 per validation and
  test stamp (`SEGMENTATION_PASTES`, the `hip_segmentation` task's split
  options). Coordinates: the pixel grid on [-1, 1]^2.
"""

import dataclasses
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from keras_perceiver.layers.fourier_position_encoding import linear_positions
from training.tasks.fashion_mnist import CLASS_NAMES, IMAGE_SHAPE, NUM_CLASSES, VALIDATION_SIZE, normalize

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
        client_inputs: dict of reader feature name -> (shape, dtype) of one
            example: what a served model's client sends (`preprocess` maps
            them to the modalities inside the serving graph).
        class_names: the label names, in label order (empty when unknown).
    """

    name: str
    input_shapes: dict
    num_classes: int
    coordinates: dict
    preprocess: Callable
    augment: Callable | None = None
    reader_options: dict = dataclasses.field(default_factory=dict)
    client_inputs: dict = dataclasses.field(default_factory=dict)
    class_names: tuple = ()


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
        client_inputs={"image": ((*IMAGE_SHAPE[:2], 1), "uint8")},
        class_names=CLASS_NAMES,
    )


# Inventor point clouds: points per cloud, and the augmentation's constants (see the module docstring).
NUM_POINTS = 2048
SCALE_RANGE = (0.8, 1.2)
JITTER_SIGMA, JITTER_CLIP = 0.01, 0.05
DROPOUT_FRACTION = 0.25


# Morton order: bits per axis, and the half-width of the cube they quantize (augmented clouds stay within
# 1.2 * 1 + 0.05; points outside are clipped to the cube's faces).
MORTON_BITS = 10
MORTON_BOUND = 1.25


def _spread_bits(values):
    """Spread the low 10 bits of int64 `values` to every third bit (bit i -> bit 3i)."""
    for shift, mask in ((16, 0x030000FF), (8, 0x0300F00F), (4, 0x030C30C3), (2, 0x09249249)):
        values = tf.bitwise.bitwise_and(
            tf.bitwise.bitwise_or(values, tf.bitwise.left_shift(values, tf.constant(shift, tf.int64))),
            tf.constant(mask, tf.int64),
        )
    return values


def morton_codes(points):
    """Z-curve codes int64 (P,) of points (P, 3): x, y, z quantized to `MORTON_BITS` bits on
    [-MORTON_BOUND, MORTON_BOUND] and interleaved, x the most significant of each triple."""
    levels = 2**MORTON_BITS
    scaled = (tf.clip_by_value(points, -MORTON_BOUND, MORTON_BOUND) + MORTON_BOUND) / (2 * MORTON_BOUND)
    cells = tf.cast(tf.minimum(tf.floor(scaled * levels), levels - 1), tf.int64)
    spread = [_spread_bits(cells[:, axis]) for axis in range(3)]
    return 4 * spread[0] + 2 * spread[1] + spread[2]  # disjoint bits: the sum interleaves them


def morton_order(points):
    """The points (P, 3) sorted along the Z-curve (`morton_codes`, stable: equal codes keep their order)."""
    return tf.gather(points, tf.argsort(morton_codes(points), stable=True))


def augment_point_cloud(inputs, seed):
    """{"points": (P, 3)} rotated about y, scaled, jittered, subsampled, in Morton order (stateless: `seed`
    (2,) decides)."""
    points = inputs["points"]
    num_points = points.shape[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=5)
    angle = tf.random.stateless_uniform((), seeds[0], 0.0, 2.0 * np.pi)
    cos, sin = tf.cos(angle), tf.sin(angle)
    zero, one = tf.zeros(()), tf.ones(())
    rotation = tf.stack(
        [tf.stack([cos, zero, sin]), tf.stack([zero, one, zero]), tf.stack([-sin, zero, cos])]
    )
    scale = tf.random.stateless_uniform((), seeds[1], *SCALE_RANGE)
    jitter = tf.clip_by_value(
        JITTER_SIGMA * tf.random.stateless_normal(points.shape, seeds[2]), -JITTER_CLIP, JITTER_CLIP
    )
    points = scale * tf.matmul(points, rotation, transpose_b=True) + jitter
    order = tf.argsort(tf.random.stateless_uniform((num_points,), seeds[3]))
    num_kept = num_points - int(round(DROPOUT_FRACTION * num_points))
    copies = tf.random.stateless_uniform((num_points - num_kept,), seeds[4], 0, num_kept, dtype=tf.int32)
    chosen = tf.concat([order[:num_kept], tf.gather(order[:num_kept], copies)], axis=0)
    return {"points": morton_order(tf.gather(points, chosen))}


def _inventor_point_cloud_set():
    from training.data import inventor_point_clouds

    num_classes = len(inventor_point_clouds.categories())  # every model sampled once, then cached

    def preprocess(example):
        return {"inputs": {"points": morton_order(tf.ensure_shape(example["points"], (NUM_POINTS, 3)))},
                "label": example["label"]}

    return ModalitySet(
        name="inventor_point_clouds",
        input_shapes={"points": (NUM_POINTS, 3)},
        num_classes=num_classes,
        coordinates={"points": np.asarray(linear_positions((NUM_POINTS,)), np.float32)},
        preprocess=preprocess,
        augment=augment_point_cloud,
        reader_options={"num_points": NUM_POINTS, "num_folds": 5, "validation_folds": 1},
        client_inputs={"points": ((NUM_POINTS, 3), "float32")},
        class_names=tuple(inventor_point_clouds.categories()),
    )


# Tux Paint segmentation: image side (pixels) and pastes per stamp of each split.
SEGMENTATION_IMAGE_SIZE = 64
SEGMENTATION_PASTES = {"train": 16, "validation": 4, "test": 4}


def _tuxpaint_segmentation_set():
    side = SEGMENTATION_IMAGE_SIZE
    num_pixels = side * side

    def preprocess(example):
        image = tf.cast(tf.reshape(example["image"], (num_pixels, 3)), tf.float32) / 127.5 - 1.0
        mask = tf.cast(tf.reshape(example["mask"], (num_pixels,)) > 0, tf.int32)
        return {"inputs": {"image": image}, "label": mask}

    return ModalitySet(
        name="tuxpaint_segmentation",
        input_shapes={"image": (num_pixels, 3)},
        num_classes=2,
        coordinates={"image": np.asarray(linear_positions((side, side)), np.float32)},
        preprocess=preprocess,
        reader_options={"image_size": side},
        client_inputs={"image": ((side, side, 3), "uint8")},
        class_names=("background", "object"),
    )


MODALITY_SETS = {
    "fashion_mnist": _fashion_mnist_set,
    "inventor_point_clouds": _inventor_point_cloud_set,
    "tuxpaint_segmentation": _tuxpaint_segmentation_set,
}


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
