"""Batch augmentation from Keras' layers: switchable, shape and range preserving, label mixing."""

import numpy as np
import tensorflow as tf

from tests.test_case import TestCase
from training.augmentation import build_batch_augment


def _images(batch=8, size=8):
    rng = np.random.default_rng(0)
    return tf.constant(rng.uniform(0.0, 1.0, size=(batch, size, size, 1)).astype("float32"))


class AugmentationTest(TestCase):
    def test_everything_off_is_none(self):
        self.assertIsNone(build_batch_augment("images", (8, 8), (0.0, 1.0)))

    def test_crop_flip_rand_augment_keep_shape_and_range(self):
        augment = build_batch_augment(
            "images", (8, 8), (0.0, 1.0), crop_padding=2, flip=True, rand_augment=True, seed=1
        )
        images = _images()
        labels = tf.constant(np.arange(8) % 10)
        x, y = augment({"images": images, "other": tf.ones(8)}, labels)
        self.assertEqual(tuple(x["images"].shape), (8, 8, 8, 1))
        self.assertIn("other", x)
        self.assertGreaterEqual(float(tf.reduce_min(x["images"])), 0.0)
        self.assertLessEqual(float(tf.reduce_max(x["images"])), 1.0)
        self.assertFalse(np.allclose(x["images"].numpy(), images.numpy()), msg="nothing was augmented")
        np.testing.assert_array_equal(y.numpy(), labels.numpy())

    def test_crop_inside_tf_data(self):
        augment = build_batch_augment("images", (8, 8), (-1.0, 1.0), crop_padding=1, seed=3)
        dataset = tf.data.Dataset.from_tensor_slices(({"images": _images()}, tf.one_hot(np.arange(8), 10)))
        x, y = next(iter(dataset.batch(4).map(augment)))
        self.assertEqual(tuple(x["images"].shape), (4, 8, 8, 1))
        self.assertEqual(tuple(y.shape), (4, 10))

    def test_mixup_and_cutmix_mix_the_labels(self):
        augment = build_batch_augment("images", (8, 8), (0.0, 1.0), mixup_alpha=0.4, cutmix_alpha=1.0, seed=2)
        labels = tf.one_hot(np.arange(8), 10)
        mixed_any = False
        for _ in range(4):
            _, y = augment({"images": _images()}, labels)
            np.testing.assert_allclose(y.numpy().sum(axis=1), 1.0, rtol=1e-5)
            mixed_any |= bool(np.any((y.numpy() > 1e-6) & (y.numpy() < 1 - 1e-6)))
        self.assertTrue(mixed_any, msg="labels were never mixed")

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "crop_padding"):
            build_batch_augment("images", (8, 8), (0.0, 1.0), crop_padding=-1)
        with self.assertRaisesRegex(ValueError, "mixup_alpha"):
            build_batch_augment("images", (8, 8), (0.0, 1.0), mixup_alpha=-0.1)
        augment = build_batch_augment("images", (8, 8), (0.0, 1.0), mixup_alpha=0.2)
        with self.assertRaisesRegex(ValueError, "one-hot labels"):
            augment({"images": _images()}, tf.constant(np.arange(8)))
