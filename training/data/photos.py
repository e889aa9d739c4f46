"""Real photos bundled with pip scikit-image (CC0 / public domain) and scikit-learn, read from their folders.

The one loader of the readers that use photos (`warped_flow`,
`middlebury_flow`, `photo_clips`, `tuxpaint_segmentation`).
`skimage.data.data_dir` points to an empty download cache once pooch is
installed; the bundled files sit beside `skimage/data/__init__.py`, so they
are located with `importlib.util.find_spec` (no network, no pooch).
scikit-learn's two sample photos (`sklearn.datasets.load_sample_images`)
sit in `sklearn/datasets/images/`.
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

# scikit-learn's sample photos (`sklearn.datasets.load_sample_images`: a temple in China, a flower).
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


def photo_path(name):
    """Path of a bundled file: `SKLEARN_PHOTOS` in `sklearn/datasets/images/`, other names in `skimage/data/`.

    Raises:
        ImportError: naming the pip package to install when it is missing.
    """
    if name in SKLEARN_PHOTOS:
        return package_data_path("sklearn", "datasets", "images", name, pip_name="scikit-learn")
    return package_data_path("skimage", "data", name, pip_name="scikit-image")


@functools.lru_cache(maxsize=32)
def load_photo(name):
    """A bundled photo as uint8 RGB (H, W, 3); grey photos are repeated over 3 channels, alpha is dropped."""
    from PIL import Image

    path = photo_path(name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The bundled photo {name!r} is missing. Expected a file at {path!r}.")
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    array.setflags(write=False)
    return array


def shrink(photo, short_side):
    """`photo` uint8 (H, W, C) downscaled (Lanczos) so that its shorter side is `short_side`.

    A photo whose shorter side is already <= `short_side` is returned as it is.
    """
    from PIL import Image

    height, width = photo.shape[:2]
    factor = short_side / min(height, width)
    if factor >= 1:
        return photo
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
