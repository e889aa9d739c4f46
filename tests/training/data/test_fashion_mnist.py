"""Tests of the `fashion_mnist` reader on the IDX files of Debian's dataset-fashion-mnist (CI installs it)."""

import gzip
import os
import shutil

import numpy as np
import pytest

from tests.test_case import TestCase
from tests.training.data.helpers import as_numpy, assert_unbatched_dict, debian_data_dir
from training.data import fashion_mnist, sources


class FashionMnistTest(TestCase):
    def setUp(self):
        super().setUp()
        self.directory = debian_data_dir("fashion_mnist")  # skips (fails under CI=true) without the data

    def test_official_splits(self):
        train = fashion_mnist.load("train")
        test = fashion_mnist.load("test")
        assert_unbatched_dict(test, {"image": ("uint8", (28, 28, 1)), "label": ("int64", ())})
        self.assertEqual(int(train.cardinality()), 60000)
        self.assertEqual(int(test.cardinality()), 10000)
        images, labels = fashion_mnist.load_arrays("test")
        # Balanced: 1,000 test images per class; real pixel statistics (mean ink ~73/255, full range).
        np.testing.assert_array_equal(np.bincount(labels), [1000] * 10)
        self.assertEqual((int(images.min()), int(images.max())), (0, 255))
        self.assertAllClose(float(images.mean()), 73.1, atol=1.0)
        first = as_numpy(test, take=3)
        np.testing.assert_array_equal(first["image"], images[:3])
        np.testing.assert_array_equal(first["label"], [9, 2, 1])  # ankle boot, pullover, trouser

    def test_validation_carved_from_train(self):
        train_images, train_labels = fashion_mnist.load_arrays("train", validation_size=5000, seed=3)
        validation_images, validation_labels = fashion_mnist.load_arrays(
            "validation", validation_size=5000, seed=3
        )
        self.assertEqual(len(train_labels), 55000)
        self.assertEqual(len(validation_labels), 5000)
        all_images, _ = fashion_mnist.load_arrays("train")
        # Disjoint and complete: the two parts are a partition of the 60,000 train images.
        permutation = np.random.default_rng(3).permutation(60000)
        np.testing.assert_array_equal(validation_images, all_images[np.sort(permutation[:5000])])
        np.testing.assert_array_equal(train_images, all_images[np.sort(permutation[5000:])])
        again, _ = fashion_mnist.load_arrays("validation", validation_size=5000, seed=3)
        np.testing.assert_array_equal(again, validation_images)

    def test_data_dir_env_var_and_missing_data(self):
        directory = self.make_temp_dir()
        for names in fashion_mnist.FILES.values():
            for name in names:
                os.symlink(os.path.join(self.directory, name), os.path.join(directory, name))
        self.assertEqual(int(fashion_mnist.load("test", data_dir=directory).cardinality()), 10000)
        empty = self.make_temp_dir()
        with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
            fashion_mnist.load("test", data_dir=empty)
        os.environ[fashion_mnist.ENV_VAR] = empty
        self.addCleanup(os.environ.pop, fashion_mnist.ENV_VAR)
        self.assertEqual(int(fashion_mnist.load("test").cardinality()), 10000)  # falls back to the default
        with pytest.raises(ValueError, match="needs validation_size > 0"):
            fashion_mnist.load("validation")
        with pytest.raises(ValueError, match="Received: 'dev'"):
            fashion_mnist.load("dev")

    def test_data_root_of_extracted_packages(self):
        # `make debian-data` without root: `dpkg -x` into a root; the reader finds the Debian path under it.
        root = self.make_temp_dir()
        directory = os.path.join(root, "usr", "share", "datasets", "fashion-mnist")
        os.makedirs(directory)
        for names in fashion_mnist.FILES.values():
            for name in names:
                os.symlink(os.path.join(self.directory, name), os.path.join(directory, name))
        previous = os.environ.get(sources.DATA_ROOT_ENV_VAR)
        os.environ[sources.DATA_ROOT_ENV_VAR] = root
        self.addCleanup(
            lambda: os.environ.pop(sources.DATA_ROOT_ENV_VAR)
            if previous is None
            else os.environ.__setitem__(sources.DATA_ROOT_ENV_VAR, previous)
        )
        default = fashion_mnist.DEFAULT_DIR
        self.assertEqual(sources.system_paths(default), [directory, default])
        required = [name for pair in fashion_mnist.FILES.values() for name in pair]
        found = sources.find_data_dir("fashion_mnist", None, "UNSET_VARIABLE", default, required, "")
        self.assertEqual(found, directory)
        self.assertEqual(len(fashion_mnist.load_arrays("test")[1]), 10000)
        with pytest.raises(FileNotFoundError, match="KERAS_PERCEIVER_DATA_ROOT='.*make debian-data"):
            sources.find_data_dir(
                "fashion_mnist", None, "UNSET_VARIABLE", "/nonexistent", required, fashion_mnist.INSTALL_HINT
            )

    def test_corrupt_idx_file(self):
        path = os.path.join(self.make_temp_dir(), "bad.gz")
        with gzip.open(path, "wb") as f:
            f.write(b"\x00\x00\x0d\x01\x00\x00\x00\x02ab")
        with pytest.raises(ValueError, match="Expected magic 00 00 08"):
            fashion_mnist.read_idx(path)
        shutil.copy(os.path.join(self.directory, "t10k-labels-idx1-ubyte.gz"), path)
        self.assertEqual(fashion_mnist.read_idx(path).shape, (10000,))
