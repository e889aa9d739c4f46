"""Tests of `training.data.photos`, the one loader of the bundled photos."""

import importlib.util
from unittest import mock

import numpy as np

from tests.test_case import TestCase
from training.data import photos


class PhotosTest(TestCase):
    def test_sklearn_photos_load_as_scikit_learn_does(self):
        from sklearn.datasets import load_sample_image

        for name in photos.SKLEARN_PHOTOS:
            photo = photos.load_photo(name)
            self.assertEqual(photo.dtype, np.uint8)
            np.testing.assert_array_equal(photo, load_sample_image(name))

    def test_grey_photo_becomes_rgb(self):
        photo = photos.load_photo("camera.png")  # scikit-image's grey cameraman
        self.assertEqual(photo.shape, (512, 512, 3))
        np.testing.assert_array_equal(photo[..., 0], photo[..., 2])

    def test_shrink_keeps_aspect_and_leaves_small_photos(self):
        photo = photos.load_photo("chelsea.png")  # 300 x 451
        small = photos.shrink(photo, 100)
        self.assertEqual(small.shape, (100, 150, 3))
        self.assertEqual(small.dtype, np.uint8)
        # Lanczos downscaling keeps the mean colour within a few levels.
        np.testing.assert_allclose(small.mean(axis=(0, 1)), photo.mean(axis=(0, 1)), atol=3.0)
        self.assertIs(photos.shrink(photo, 300), photo)

    def test_missing_package_names_the_pip_package(self):
        find_spec = importlib.util.find_spec

        def without_photo_packages(name, *args):
            return None if name in ("skimage", "sklearn") else find_spec(name, *args)

        with mock.patch("importlib.util.find_spec", without_photo_packages):
            with self.assertRaisesRegex(ImportError, "pip install scikit-image"):
                photos.photo_path("camera.png")
            with self.assertRaisesRegex(ImportError, "pip install scikit-learn"):
                photos.photo_path("china.jpg")

    def test_missing_file_names_the_expected_path(self):
        with self.assertRaisesRegex(FileNotFoundError, "'no_such_photo.png' is missing. Expected a file at"):
            photos.load_photo("no_such_photo.png")
