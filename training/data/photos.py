"""Real photos bundled with pip scikit-image (CC0 / public domain), read from the package's own folder.

`skimage.data.data_dir` points to an empty download cache once pooch is
installed; the bundled files sit beside `skimage/data/__init__.py`, so they
are located with `importlib.util.find_spec` (no network, no pooch).
"""

import functools
import os

import numpy as np

from training.data.sources import package_data_path

# Real photographs among the bundled files (synthetic images, drawings and the Middlebury pair excluded).
PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "rocket.jpg",
)


def photo_path(name):
    """Path of a file bundled in `skimage/data/`."""
    return package_data_path("skimage", "data", name)


@functools.lru_cache(maxsize=32)
def load_photo(name):
    """A bundled photo as uint8 RGB (H, W, 3); grey photos are repeated over 3 channels, alpha is dropped."""
    from PIL import Image

    path = photo_path(name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scikit-image's bundled photo is missing. Expected a file at {path!r}.")
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    array.setflags(write=False)
    return array
