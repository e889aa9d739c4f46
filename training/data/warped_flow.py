"""Optical-flow pairs with exact ground truth: real photos warped by random smooth flow fields.

An AutoFlow-style training set (Sun et al., "AutoFlow", CVPR 2021, in
spirit) on real texture: the photos bundled with scikit-image
(`training.data.photos`), each example made from one photo and one random
flow field drawn from a seeded generator, so the data set is unlimited,
needs no download and is identical on every machine.

For a crop of size (H, W) at (y0, x0) of a photo P (values 0..255):
- flow f = (u, v) on the (H, W) grid = a random translation (each component
  uniform in [-max_flow/2, max_flow/2]) + a smooth field (Gaussian values,
  std max_flow/4, on a (grid_size + 1)^2 control grid, cubic-spline
  interpolated), clipped to [-max_flow, max_flow];
- frame 1 = P[y0:y0+H, x0:x0+W];
- frame 0 at pixel (y, x) = P bilinearly sampled at (y0 + y + v, x0 + x + u).
So frame0(p) = frame1(p + f(p)) exactly (the standard convention: flow from
frame 0 to frame 1, u along x/width, v along y/height, in pixels), and
"valid" is 1 where p + f(p) lies inside frame 1, else 0.

Splits use disjoint photos: `"test"` = chelsea, coins, gravel, rocket;
`"validation"` = brick, coffee (for checkpoint selection: the training
photos never appear in it); `"train"` = the other six (astronaut, camera,
grass, hubble_deep_field, ihc, moon). No Middlebury or motorcycle image is
among them (`training.data.photos.PHOTOS`). Example i of a split is drawn
with `numpy.random.default_rng([seed, split id, i])`.
"""

import numpy as np
import tensorflow as tf

from training.data.photos import PHOTOS, load_photo
from training.data.splits import check_split

SPLITS = ("train", "validation", "test")
TEST_PHOTOS = ("chelsea.png", "coins.png", "gravel.png", "rocket.jpg")
VALIDATION_PHOTOS = ("brick.png", "coffee.png")
TRAIN_PHOTOS = tuple(name for name in PHOTOS if name not in TEST_PHOTOS + VALIDATION_PHOTOS)
SPLIT_PHOTOS = {"train": TRAIN_PHOTOS, "validation": VALIDATION_PHOTOS, "test": TEST_PHOTOS}
DEFAULT_NUM_EXAMPLES = {"train": 10000, "validation": 200, "test": 200}
_SPLIT_IDS = {"train": 0, "test": 1, "validation": 2}


def random_flow(rng, height, width, max_flow, grid_size):
    """A random smooth flow field float32 (H, W, 2) (u, v) with |u|, |v| <= max_flow."""
    from scipy import ndimage

    translation = rng.uniform(-max_flow / 2, max_flow / 2, size=2)
    control = rng.normal(0.0, max_flow / 4, size=(grid_size + 1, grid_size + 1, 2))
    rows = np.linspace(0, grid_size, height)
    cols = np.linspace(0, grid_size, width)
    grid = np.meshgrid(rows, cols, indexing="ij")
    smooth = np.stack(
        [ndimage.map_coordinates(control[..., c], grid, order=3, mode="nearest") for c in range(2)], axis=-1
    )
    return np.clip(translation + smooth, -max_flow, max_flow).astype(np.float32)


def make_example(photo, rng, crop_size, max_flow, grid_size):
    """One example (frames float32 (2, H, W, 3) in [-1, 1], flow (H, W, 2), valid (H, W)) from a photo."""
    from scipy import ndimage

    height, width = crop_size
    margin = int(np.ceil(max_flow)) + 1
    photo = photo.astype(np.float32)
    scale = max((height + 2 * margin) / photo.shape[0], (width + 2 * margin) / photo.shape[1], 1.0)
    if scale > 1.0:  # photo too small for the crop: enlarge it
        photo = ndimage.zoom(photo, (scale, scale, 1), order=1)
    y0 = int(rng.integers(margin, photo.shape[0] - height - margin + 1))
    x0 = int(rng.integers(margin, photo.shape[1] - width - margin + 1))
    flow = random_flow(rng, height, width, max_flow, grid_size)
    yy, xx = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    target_y, target_x = yy + flow[..., 1], xx + flow[..., 0]
    coordinates = [y0 + target_y, x0 + target_x]
    frame0 = np.stack(
        [ndimage.map_coordinates(photo[..., c], coordinates, order=1) for c in range(3)], axis=-1
    )
    frame1 = photo[y0 : y0 + height, x0 : x0 + width]
    frames = np.stack([frame0, frame1]).astype(np.float32) / 127.5 - 1.0
    valid = (target_y >= 0) & (target_y <= height - 1) & (target_x >= 0) & (target_x <= width - 1)
    return np.clip(frames, -1.0, 1.0), flow, valid.astype(np.float32)


def load(
    split, data_dir=None, crop_size=(64, 64), max_flow=8.0, grid_size=4, num_examples=None, seed=0, cache=None
):
    """`num_examples` warped-photo flow examples of `split` as a `tf.data.Dataset` (parallel map).

    Args:
        split: str, `"train"`, `"validation"` or `"test"` (disjoint photos).
        data_dir: unused (the photos ship with scikit-image); accepted for the
            common reader interface.
        crop_size: (H, W) ints, the frame size. Defaults to (64, 64).
        max_flow: float > 0, the largest |u| and |v| in pixels. Defaults to 8.
        grid_size: int >= 1, control cells per side of the smooth field (more
            = less smooth). Defaults to 4.
        num_examples: int or None, examples in the split; None: 10,000 for
            train, 200 for validation and test.
        seed: int, the generator seed. Defaults to 0.
        cache: bool or None, cache the generated examples in memory; None
            caches the validation and test splits only.

    Returns:
        `tf.data.Dataset` of {"frames": float32 (2, H, W, 3) in [-1, 1],
        "flow": float32 (H, W, 2), "valid": float32 (H, W)}.

    Raises:
        ValueError: for an unknown split or bad sizes.

    Example:
    >>> from training.data.warped_flow import load
    >>> example = next(iter(load("test", crop_size=(32, 48))))
    >>> tuple(example["frames"].shape), tuple(example["flow"].shape)
    ((2, 32, 48, 3), (32, 48, 2))
    """
    del data_dir
    check_split("warped_flow", split, SPLITS)
    crop_size = tuple(int(size) for size in crop_size)
    if len(crop_size) != 2 or min(crop_size) < 2:
        raise ValueError(f"warped_flow: crop_size must be (H, W) with H, W >= 2. Received: {crop_size}")
    if not max_flow > 0 or int(grid_size) < 1:
        raise ValueError(
            f"warped_flow: expected max_flow > 0 and grid_size >= 1. Received: max_flow={max_flow}, "
            f"grid_size={grid_size}"
        )
    num_examples = DEFAULT_NUM_EXAMPLES[split] if num_examples is None else int(num_examples)
    if num_examples < 1:
        raise ValueError(f"warped_flow: num_examples must be >= 1. Received: {num_examples}")
    names = SPLIT_PHOTOS[split]
    photos = [load_photo(name) for name in names]

    def generate(index):
        rng = np.random.default_rng([int(seed), _SPLIT_IDS[split], int(index)])
        photo = photos[int(rng.integers(len(photos)))]
        return make_example(photo, rng, crop_size, float(max_flow), int(grid_size))

    def to_features(index):
        frames, flow, valid = tf.numpy_function(
            generate, [index], (tf.float32, tf.float32, tf.float32), stateful=False
        )
        height, width = crop_size
        return {
            "frames": tf.ensure_shape(frames, (2, height, width, 3)),
            "flow": tf.ensure_shape(flow, (height, width, 2)),
            "valid": tf.ensure_shape(valid, (height, width)),
        }

    dataset = tf.data.Dataset.range(num_examples).map(
        to_features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    if cache if cache is not None else split != "train":
        dataset = dataset.cache()
    return dataset
