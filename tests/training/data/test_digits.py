"""Tests of the `digits` reader: the main job's stratified split, uint8 images 0..255, determinism."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tests.test_case import TestCase
from tests.training.data.helpers import as_numpy, assert_unbatched_dict
from training.data import digits


class DigitsTest(TestCase):
    def test_splits_match_the_main_job(self):
        train_data = as_numpy(digits.load("train"))
        test_data = as_numpy(digits.load("test"))
        self.assertEqual(len(train_data["label"]), 1437)
        self.assertEqual(len(test_data["label"]), 360)
        # The main job's split (README): scikit-learn's stratified 80/20 split with random_state = seed = 0.
        data = load_digits()
        _, x_test, y_train, y_test = train_test_split(
            data.images, data.target, test_size=0.2, random_state=0, stratify=data.target
        )
        np.testing.assert_array_equal(train_data["label"], y_train)
        np.testing.assert_array_equal(test_data["label"], y_test)
        # Same images: ink levels 0..16 scaled to 0..255 and rounded (|error| <= 0.5 / 255 * 16 levels).
        ink_levels = test_data["image"][..., 0].astype("float64") * 16.0 / 255.0
        np.testing.assert_allclose(ink_levels, x_test, atol=0.04)

    def test_dtypes_ranges_and_disjointness(self):
        dataset = digits.load("test")
        assert_unbatched_dict(dataset, {"image": ("uint8", (8, 8, 1)), "label": ("int64", ())})
        data = as_numpy(dataset)
        self.assertEqual(int(data["image"].max()), 255)
        self.assertEqual(int(data["image"].min()), 0)
        self.assertEqual(set(data["label"].tolist()), set(range(10)))
        _, _, indices = digits._split_indices(0, 0.2)
        self.assertEqual(set(indices["train"]) & set(indices["test"]), set())
        self.assertEqual(len(set(indices["train"]) | set(indices["test"])), 1797)
        self.assertEqual(len(indices["validation"]), 0)
        again = as_numpy(digits.load("test"))
        np.testing.assert_array_equal(again["image"], data["image"])
        other_seed = as_numpy(digits.load("test", seed=1))
        self.assertFalse(np.array_equal(other_seed["label"], data["label"]))

    def test_validation_carved_from_train_keeps_the_test_split(self):
        _, _, indices = digits._split_indices(0, 0.2, 0.1)
        train, validation, test = (set(indices[name].tolist()) for name in ("train", "validation", "test"))
        # A partition of the 1,797 digits; the test split is the one without validation.
        self.assertEqual((len(train), len(validation), len(test)), (1257, 180, 360))
        self.assertEqual(train & validation, set())
        self.assertEqual((train | validation) & test, set())
        self.assertEqual(len(train | validation | test), 1797)
        self.assertEqual(test, set(digits._split_indices(0, 0.2)[2]["test"].tolist()))
        self.assertEqual(train | validation, set(digits._split_indices(0, 0.2)[2]["train"].tolist()))
        # Stratified: 18 of each class (the classes have 174..183 digits).
        labels = as_numpy(digits.load("validation", validation_fraction=0.1))["label"]
        self.assertLessEqual(np.ptp(np.bincount(labels, minlength=10)), 1)
        images = as_numpy(digits.load("validation", validation_fraction=0.1))["image"]
        test_images = as_numpy(digits.load("test", validation_fraction=0.1))["image"]
        np.testing.assert_array_equal(test_images, as_numpy(digits.load("test"))["image"])
        self.assertEqual(len(images), 180)

    def test_errors(self):
        with pytest.raises(ValueError, match="needs validation_fraction > 0. Received: validation_fraction"):
            digits.load("validation")
        with pytest.raises(ValueError, match="\\['train', 'validation', 'test'\\]. Received: 'dev'"):
            digits.load("dev")
        with pytest.raises(ValueError, match="must be in .*Received: validation_fraction=0.9"):
            digits.load("train", validation_fraction=0.9)
        with pytest.raises(ValueError, match="test_fraction must be in .*Received: test_fraction=1.5"):
            digits.load("test", test_fraction=1.5)
