"""The Middlebury 2014 "motorcycle" stereo pair as an optical-flow example with real ground truth.

Source: `skimage.data.stereo_motorcycle()`'s files bundled with pip
scikit-image (`motorcycle_left.png`, `motorcycle_right.png`,
`motorcycle_disp.npz`: 500 x 741, from Scharstein et al., "High-resolution
stereo datasets with subpixel-accurate ground truth", GCPR 2014 - cite it).

Sign convention, checked on the data (`tests/training/data/test_middlebury_flow.py`):
the left image is frame 0 and the right image frame 1; a scene point at
column x in the left image appears at column x - d in the right image
(d = disparity >= 0), so the flow from frame 0 to frame 1 is u = -d
(along x/width), v = 0 (rectified pair), in pixels: sampling the right
image at (y, x - d) reproduces the left image (mean |difference| 7.7 / 255
against 38.6 for zero flow and 47.3 for u = +d). The ~7% of pixels without
ground truth (disparity inf: occluded or unmatched) have valid = 0 and
flow 0.

One split, `"test"`, with one example (a benchmark pair, not training data).
No validation split: one image pair cannot be split without testing on what
was tuned on; flow models select checkpoints on `warped_flow`'s validation
photos and are tested here once.
"""

import numpy as np
import tensorflow as tf

from training.data.photos import load_photo, photo_path
from training.data.splits import check_split

SPLITS = ("test",)
FULL_SIZE = (500, 741)


def load_arrays(size=None):
    """(frames float32 (2, H, W, 3) in [-1, 1], flow float32 (H, W, 2), valid float32 (H, W)) as numpy.

    `size=(H, W)` resizes: frames bilinearly (antialiased), flow and validity
    by nearest neighbour with the flow scaled by W / 741 (u) and H / 500 (v).
    """
    left = load_photo("motorcycle_left.png")
    right = load_photo("motorcycle_right.png")
    disparity = np.load(photo_path("motorcycle_disp.npz"))["arr_0"].astype(np.float32)
    valid = np.isfinite(disparity)
    flow = np.stack([np.where(valid, -disparity, 0.0), np.zeros_like(disparity)], axis=-1).astype(np.float32)
    frames = np.stack([left, right]).astype(np.float32) / 127.5 - 1.0
    valid = valid.astype(np.float32)
    if size is not None:
        height, width = (int(s) for s in size)
        if height < 1 or width < 1:
            raise ValueError(f"middlebury_flow: size must be (H, W) with H, W >= 1. Received: {size}")
        frames = tf.image.resize(frames, (height, width), method="bilinear", antialias=True).numpy()
        frames = np.clip(frames, -1.0, 1.0)
        flow = tf.image.resize(flow, (height, width), method="nearest").numpy()
        flow *= np.array([width / FULL_SIZE[1], height / FULL_SIZE[0]], np.float32)
        valid = tf.image.resize(valid[..., None], (height, width), method="nearest").numpy()[..., 0]
    return frames, flow, valid


def load(split="test", data_dir=None, size=None):
    """The Middlebury motorcycle pair as a `tf.data.Dataset` of one unbatched example.

    Args:
        split: str, `"test"` (the only split).
        data_dir: unused (the files ship with scikit-image); accepted for the
            common reader interface.
        size: (H, W) or None, resize the example (see `load_arrays`);
            None keeps 500 x 741.

    Returns:
        `tf.data.Dataset` of one {"frames": float32 (2, H, W, 3) in [-1, 1],
        "flow": float32 (H, W, 2), "valid": float32 (H, W)}.

    Raises:
        ValueError: for an unknown split or a bad size.

    Example:
    >>> from training.data.middlebury_flow import load
    >>> example = next(iter(load("test", size=(250, 370))))
    >>> tuple(example["flow"].shape)
    (250, 370, 2)
    """
    del data_dir
    check_split("middlebury_flow", split, SPLITS)
    frames, flow, valid = load_arrays(size)
    return tf.data.Dataset.from_tensors({"frames": frames, "flow": flow, "valid": valid})
