"""Tux Paint photo stamps pasted on real photos, for segmentation: {"image", "mask", "label", "stamp"}.

Source: Debian `tuxpaint-stamps-default` (GPL-2; not copied into this
project) installs the Tux Paint stamps in `/usr/share/tuxpaint/stamps/<category>/**/*.png`
(RGBA; the alpha channel cuts the object out exactly). Get it with
`apt-get install tuxpaint-stamps-default`, or without root
`apt-get download tuxpaint-stamps-default && dpkg -x tuxpaint-stamps-default_*.deb ROOT` and
`KERAS_PERCEIVER_DATA_ROOT=ROOT`. Data root: `data_dir` (the stamps directory
itself) if given; otherwise `$KERAS_PERCEIVER_DATA_ROOT/usr/share/tuxpaint/stamps`
when that variable is set (a prefix root as left by `dpkg -x`), then the
standard path.

Backgrounds: the real photos bundled with scikit-image (`BACKGROUNDS`: the
files beside `skimage/data/__init__.py`; `skimage.data.data_dir` may point
to an empty download cache) and scikit-learn's `load_sample_images()`
(`china.jpg`, `flower.jpg`); grey photos are repeated to RGB. Each is
downscaled once so that its shorter side is `4 * image_size` (if larger).
The same backgrounds serve every split: what is held out is the stamps.

Stamps (`photos_only=True`, the default): only photo cut-outs. A stamp is
taken as drawn clip-art and excluded when its `.dat` file says `colorable`
(a single-colour shape tinted by Tux Paint) or `tintable`/`tinter`, when it
lies in a `cartoon` folder, or when more than `max_flatness` (default 0.1)
of its horizontally adjacent opaque pixel pairs have exactly the same colour
(flat fills; photos have noise). This is a heuristic: with
tuxpaint-stamps-default 2022.06.04 it keeps 336 of the 796 PNG stamps (a few
drawn ones slip through, a few flat photos are lost); `photos_only=False`
uses every PNG stamp. Categories are the top-level folders (`animals`,
`food`, ...); those with fewer than `min_stamps_per_category` (default 2)
kept stamps are dropped (`naturalforces`, 1 stamp), which leaves 335 stamps
in 15 categories; labels index the sorted kept names (`categories()`).

Splits by stamp: a stamp and its pre-mirrored twin (`<name>_mirror.png`)
share a key, and `training.data.splits.hash_split_mask` of that key puts it
in `"test"` (~`test_fraction`, default 0.2), `"validation"`
(~`validation_fraction`, default 0.1) or `"train"` (the rest).

Examples: each stamp gives `examples_per_stamp` (default 1) pastes. Paste
`k` of a stamp is fixed by (`seed`, the stamp's path, `k`) alone, stateless
(`tf.random.stateless_uniform`): a background and a square crop of it
(side uniform between `image_size` and the background's shorter side,
resized to `image_size`); the stamp, first fitted once so its longer side is
`image_size` (Pillow Lanczos), is scaled so that its longer side is a
uniform fraction in `scale_range` (default (0.3, 0.9)) of `image_size`
(bilinear, antialiased) and pasted at a uniform position fully inside the
image. image = alpha * stamp + (1 - alpha) * background (rounded);
mask = 1 where alpha >= 128 (0.5), else 0. With `mask_mode="class"` the mask
holds `label + 1` on the stamp instead of 1 (0 stays background). A new
`seed` per epoch gives new pastes.
"""

import functools
import os
import re

import numpy as np
import tensorflow as tf

from training.data.photos import PHOTOS, SKLEARN_PHOTOS, load_photo, photo_path, shrink
from training.data.sources import find_data_dir
from training.data.splits import check_hash_split, hash_fraction, hash_split_mask

SPLITS = ("train", "validation", "test")
DEBIAN_PATH = "/usr/share/tuxpaint/stamps"
ROOT_ENV_VAR = "KERAS_PERCEIVER_DATA_ROOT"
MISSING_HINT = (
    "Run `make debian-data`, or install it with `apt-get install tuxpaint-stamps-default` (Debian, as "
    "root), or unpack it without root: `apt-get download tuxpaint-stamps-default && dpkg -x "
    "tuxpaint-stamps-default_*.deb ROOT` and set $KERAS_PERCEIVER_DATA_ROOT=ROOT."
)
BACKGROUNDS = tuple(sorted(PHOTOS + ("motorcycle_left.png", "motorcycle_right.png", "retina.jpg")))
MASK_MODES = ("binary", "class")
_MIRROR = re.compile(r"_mirror(?=\.png$)")


def stamps_dir(data_dir=None):
    """The stamps directory: `data_dir`, else `$KERAS_PERCEIVER_DATA_ROOT` + the Debian path, else the
    Debian path.

    Raises:
        FileNotFoundError: naming the places looked at and how to install the stamps.
    """
    return find_data_dir(
        "tuxpaint_segmentation", data_dir, None, DEBIAN_PATH,
        lambda directory: os.path.isdir(directory) and bool(stamp_paths(directory)), MISSING_HINT,
        expected="Tux Paint stamp PNGs in category folders",
    )  # fmt: skip


@functools.lru_cache(maxsize=4)
def stamp_paths(directory):
    """Sorted relative paths `<category>/.../<name>.png` of all PNG stamps under `directory`."""
    paths = []
    for current, folders, files in os.walk(directory):
        folders.sort()
        relative = os.path.relpath(current, directory)
        if relative == ".":
            continue  # stamps sit in category folders
        names = [name for name in files if name.endswith(".png")]
        paths += [os.path.join(relative, name).replace(os.sep, "/") for name in names]
    return tuple(sorted(paths))


def read_stamp(path):
    """The stamp at `path` as uint8 RGBA (h, w, 4) (palette, grey and RGB files converted by Pillow)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


def flatness(rgba):
    """Fraction of horizontally adjacent pixel pairs, both opaque (alpha 255), with identical RGB.

    1.0 when no such pair exists. Photos score near 0, flat-filled drawings near 1.
    """
    opaque = rgba[..., 3] == 255
    both = opaque[:, 1:] & opaque[:, :-1]
    if not both.any():
        return 1.0
    same = (rgba[:, 1:, :3] == rgba[:, :-1, :3]).all(axis=-1) & both
    return float(same.sum() / both.sum())


def is_drawn(directory, stamp, rgba, max_flatness=0.1):
    """Whether `stamp` (relative path) looks like clip-art, not a photo (rules in the module docstring)."""
    dat = os.path.join(directory, stamp[: -len(".png")] + ".dat")
    if os.path.exists(dat):
        with open(dat, encoding="utf-8", errors="replace") as f:
            options = f.read()
        if re.search(r"\b(colorable|tintable|tinter)\b", options):
            return True
    if "cartoon" in stamp.split("/")[:-1]:
        return True
    return flatness(rgba) > max_flatness


def _fit(rgba, size):
    """`rgba` resized (Pillow Lanczos) so that its longer side is `size`."""
    from PIL import Image

    height, width = rgba.shape[:2]
    factor = size / max(height, width)
    shape = (max(1, round(width * factor)), max(1, round(height * factor)))
    if shape == (width, height):
        return rgba
    with Image.fromarray(rgba, "RGBA") as image:
        return np.asarray(image.resize(shape, Image.Resampling.LANCZOS))


@functools.lru_cache(maxsize=4)
def _kept(directory, photos_only, max_flatness):
    """Relative paths of the stamps with some opaque pixel (alpha >= 128), photos only if asked."""
    kept = []
    for stamp in stamp_paths(directory):
        rgba = read_stamp(os.path.join(directory, stamp))
        if rgba[..., 3].max() < 128:
            continue  # nothing to segment
        if photos_only and is_drawn(directory, stamp, rgba, max_flatness):
            continue
        kept.append(stamp)
    return tuple(kept)


@functools.lru_cache(maxsize=4096)
def _fitted(directory, stamp, image_size):
    return _fit(read_stamp(os.path.join(directory, stamp)), image_size)


def stamps(data_dir=None, photos_only=True, max_flatness=0.1, min_stamps_per_category=2):
    """The kept stamps as (sorted relative paths, sorted category names)."""
    directory = stamps_dir(data_dir)
    kept = _kept(directory, bool(photos_only), float(max_flatness))
    counts = {}
    for stamp in kept:
        counts[stamp.split("/")[0]] = counts.get(stamp.split("/")[0], 0) + 1
    names = sorted(name for name, count in counts.items() if count >= int(min_stamps_per_category))
    return [stamp for stamp in kept if stamp.split("/")[0] in names], names


def categories(data_dir=None, **options):
    """The category names in label order (see `stamps` for the options)."""
    return stamps(data_dir, **options)[1]


def split_key(stamp):
    """The key that decides the split of `stamp`: its path with a `_mirror` suffix removed."""
    return _MIRROR.sub("", stamp)


def backgrounds(short_side=256):
    """The background photos as a list of uint8 RGB arrays, each with shorter side <= `short_side`.

    scikit-learn's photos are left out when scikit-learn is not installed;
    missing files are skipped.

    Raises:
        ImportError: scikit-image is missing. FileNotFoundError: none of the photos is found.
    """
    photos = []
    for name in BACKGROUNDS + SKLEARN_PHOTOS:
        try:
            path = photo_path(name)
        except ImportError:
            if name in SKLEARN_PHOTOS:
                continue
            raise
        if os.path.exists(path):
            photos.append(shrink(load_photo(name), short_side))
    if not photos:
        raise FileNotFoundError(
            f"tuxpaint_segmentation: no background photo found. Expected {list(BACKGROUNDS)} in "
            f"{os.path.dirname(photo_path(BACKGROUNDS[0]))!r}. Reinstall scikit-image."
        )
    return photos


def _pad_stack(arrays, channels):
    height = max(a.shape[0] for a in arrays)
    width = max(a.shape[1] for a in arrays)
    out = np.zeros((len(arrays), height, width, channels), np.uint8)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0], : a.shape[1]] = a
    shapes = np.array([a.shape[:2] for a in arrays], np.int32)
    return out, shapes


def composite(background, stamp, top, left):
    """Paste `stamp` (uint8 RGBA (h, w, 4)) onto `background` (uint8 (H, W, 3)) at (`top`, `left`).

    Returns:
        (image uint8 (H, W, 3): alpha blend, rounded; mask uint8 (H, W): 1 where alpha >= 128).
    Works eagerly and in graphs; the stamp must fit inside the background.
    """
    height, width = tf.shape(background)[0], tf.shape(background)[1]
    stamp = tf.image.pad_to_bounding_box(tf.cast(stamp, tf.float32), top, left, height, width)
    alpha = stamp[..., 3:] / 255.0
    image = alpha * stamp[..., :3] + (1.0 - alpha) * tf.cast(background, tf.float32)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
    mask = tf.cast(stamp[..., 3] >= 127.5, tf.uint8)
    return image, mask


def load(
    split,
    data_dir=None,
    image_size=64,
    examples_per_stamp=1,
    seed=0,
    scale_range=(0.3, 0.9),
    mask_mode="binary",
    test_fraction=0.2,
    validation_fraction=0.1,
    photos_only=True,
    max_flatness=0.1,
    min_stamps_per_category=2,
):
    """The `split` of the stamp segmentation data as a `tf.data.Dataset` of unbatched examples.

    Args:
        split: str, `"train"`, `"validation"` (with `validation_fraction > 0`) or `"test"`.
        data_dir: str or None, the stamps directory; None looks at
            `$KERAS_PERCEIVER_DATA_ROOT/usr/share/tuxpaint/stamps`, then `/usr/share/tuxpaint/stamps`.
        image_size: int, height and width of the images in pixels. Defaults to 64.
        examples_per_stamp: int >= 1, pastes per stamp. Defaults to 1.
        seed: int, seed of the pastes (background, crop, scale, position). Defaults to 0.
        scale_range: (low, high) in (0, 1], the stamp's longer side as a
            fraction of `image_size`. Defaults to (0.3, 0.9).
        mask_mode: `"binary"` (1 = stamp) or `"class"` (label + 1 = stamp). 0 is background.
        test_fraction: float in (0, 1). Defaults to 0.2.
        validation_fraction: float in [0, 1 - test_fraction). Defaults to 0.1.
        photos_only: bool, drop drawn stamps (module docstring). Defaults to True.
        max_flatness: float, the flat-colour threshold of `photos_only`. Defaults to 0.1.
        min_stamps_per_category: int, smaller categories are dropped. Defaults to 2.

    Returns:
        `tf.data.Dataset` of {"image": uint8 (image_size, image_size, 3),
        "mask": uint8 (image_size, image_size), "label": int64 (),
        "stamp": tf.string () (`<category>/.../<name>.png`)}, stamps in
        sorted path order, the pastes of a stamp consecutive.

    Raises:
        FileNotFoundError: the stamps are missing (the message says
            `apt-get install tuxpaint-stamps-default`) or no background photo is found.
        ImportError: scikit-image or Pillow is missing.
        ValueError: unknown split or mask mode, bad fractions, sizes or scales.

    Example:
    >>> from training.data.tuxpaint_segmentation import load
    >>> example = next(iter(load("test", image_size=64)))  # doctest: +SKIP
    >>> example["image"].shape, example["mask"].shape  # doctest: +SKIP
    (TensorShape([64, 64, 3]), TensorShape([64, 64]))
    """
    check_hash_split("tuxpaint_segmentation", split, test_fraction, validation_fraction)
    if mask_mode not in MASK_MODES:
        raise ValueError(
            f"tuxpaint_segmentation: mask_mode must be one of {MASK_MODES}. Received: {mask_mode!r}"
        )
    image_size, examples_per_stamp = int(image_size), int(examples_per_stamp)
    if image_size < 4 or examples_per_stamp < 1:
        raise ValueError(
            "tuxpaint_segmentation: expected image_size >= 4 and examples_per_stamp >= 1. "
            f"Received: image_size={image_size!r}, examples_per_stamp={examples_per_stamp!r}"
        )
    low, high = (float(value) for value in scale_range)
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(
            f"tuxpaint_segmentation: scale_range must satisfy 0 < low <= high <= 1. Received: {scale_range!r}"
        )

    directory = stamps_dir(data_dir)
    kept, names = stamps(directory, photos_only, max_flatness, min_stamps_per_category)
    mask = hash_split_mask(
        [split_key(stamp) for stamp in kept], split, test_fraction, validation_fraction, salt="tuxpaint"
    )
    chosen = [stamp for stamp, keep in zip(kept, mask) if keep]
    if not chosen:
        raise ValueError(f"tuxpaint_segmentation: the {split!r} split holds no stamp; change the fractions.")
    stamp_array, stamp_shapes = _pad_stack([_fitted(directory, stamp, image_size) for stamp in chosen], 4)
    background_array, background_shapes = _pad_stack(backgrounds(4 * image_size), 3)
    labels = np.array([names.index(stamp.split("/")[0]) for stamp in chosen], np.int64)
    stamp_seeds = np.array([int(hash_fraction(stamp, salt="tuxpaint:paste") * 2**31) for stamp in chosen])

    stamp_seeds = tf.constant(stamp_seeds, tf.int64)
    labels = tf.constant(labels)
    stamp_names = tf.constant(chosen, tf.string)
    stamp_array = tf.constant(stamp_array)
    stamp_shapes = tf.constant(stamp_shapes)
    background_array = tf.constant(background_array)
    background_shapes = tf.constant(background_shapes)
    num_backgrounds = len(background_shapes)
    size = tf.constant(image_size, tf.int32)

    def make(index, k):
        stamp_index = index
        draws = tf.random.stateless_uniform(
            [6], seed=tf.stack([tf.cast(seed, tf.int64) * 65537 + k, tf.gather(stamp_seeds, index)])
        )
        # Background and its square crop.
        b = tf.minimum(tf.cast(draws[0] * num_backgrounds, tf.int32), num_backgrounds - 1)
        b_height, b_width = background_shapes[b][0], background_shapes[b][1]
        short = tf.minimum(b_height, b_width)
        low_side = tf.minimum(size, short)
        side = low_side + tf.cast(draws[1] * tf.cast(short - low_side + 1, tf.float32), tf.int32)
        side = tf.minimum(side, short)
        top = tf.cast(draws[2] * tf.cast(b_height - side + 1, tf.float32), tf.int32)
        left = tf.cast(draws[3] * tf.cast(b_width - side + 1, tf.float32), tf.int32)
        top, left = tf.minimum(top, b_height - side), tf.minimum(left, b_width - side)
        crop = background_array[b, top : top + side, left : left + side]
        crop = tf.image.resize(tf.cast(crop, tf.float32), [size, size], antialias=True)
        crop = tf.cast(tf.clip_by_value(tf.round(crop), 0.0, 255.0), tf.uint8)
        # Stamp scaled and placed.
        s_height, s_width = stamp_shapes[stamp_index][0], stamp_shapes[stamp_index][1]
        stamp = stamp_array[stamp_index, :s_height, :s_width]
        fraction = low + (high - low) * draws[4]
        factor = fraction * tf.cast(size, tf.float32) / tf.cast(tf.maximum(s_height, s_width), tf.float32)
        height = tf.cast(tf.round(tf.cast(s_height, tf.float32) * factor), tf.int32)
        width = tf.cast(tf.round(tf.cast(s_width, tf.float32) * factor), tf.int32)
        height, width = tf.clip_by_value(height, 1, size), tf.clip_by_value(width, 1, size)
        same = tf.logical_and(tf.equal(height, s_height), tf.equal(width, s_width))
        stamp = tf.cond(
            same,
            lambda: tf.cast(stamp, tf.float32),
            lambda: tf.image.resize(tf.cast(stamp, tf.float32), [height, width], antialias=True),
        )
        stamp = tf.clip_by_value(tf.round(stamp), 0.0, 255.0)
        place = tf.random.stateless_uniform(
            [2], seed=tf.stack([tf.cast(seed, tf.int64) * 65537 + k, tf.gather(stamp_seeds, index) + 1])
        )
        y = tf.minimum(tf.cast(place[0] * tf.cast(size - height + 1, tf.float32), tf.int32), size - height)
        x = tf.minimum(tf.cast(place[1] * tf.cast(size - width + 1, tf.float32), tf.int32), size - width)
        image, mask = composite(crop, stamp, y, x)
        label = tf.gather(labels, index)
        if mask_mode == "class":
            mask = mask * tf.cast(label + 1, tf.uint8)
        image = tf.ensure_shape(image, [image_size, image_size, 3])
        mask = tf.ensure_shape(mask, [image_size, image_size])
        return {"image": image, "mask": mask, "label": label, "stamp": tf.gather(stamp_names, index)}

    indices = tf.data.Dataset.range(len(chosen) * examples_per_stamp)
    return indices.map(
        lambda i: make(tf.cast(i // examples_per_stamp, tf.int32), i % examples_per_stamp),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
