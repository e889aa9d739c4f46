import keras
import numpy as np

from keras_perceiver.layers.initializers import (
    clone_initializer,
    default_kernel_initializer,
)
from keras_perceiver.layers.mlp_block import MLPBlock
from tests.test_case import TestCase


class InitializersTest(TestCase):
    def test_default_is_truncated_normal_with_stddev_0_02(self):
        initializer = default_kernel_initializer()
        self.assertIsInstance(initializer, keras.initializers.TruncatedNormal)
        self.assertEqual(initializer.stddev, 0.02)
        self.assertEqual(initializer.mean, 0.0)
        values = np.asarray(initializer((200, 100)))
        self.assertLessEqual(np.abs(values).max(), 2 * 0.02 + 1e-7)
        self.assertAlmostEqual(float(values.std()), 0.02 * 0.88, delta=0.002)  # truncation at 2 sigma

    def test_clone_is_a_new_instance_with_the_same_config(self):
        for initializer in (
            keras.initializers.TruncatedNormal(stddev=0.5, seed=3),
            "zeros",
            {"class_name": "Ones", "config": {}},
        ):
            original = keras.initializers.get(initializer)
            clone = clone_initializer(initializer)
            self.assertIsNot(clone, original)
            self.assertIs(type(clone), type(original))
            self.assertEqual(clone.get_config(), original.get_config())

    def test_sublayers_get_separate_initializer_instances(self):
        # A seeded initializer shared by two Dense layers would give them identical kernels.
        layer = MLPBlock(widening_factor=1, kernel_initializer=keras.initializers.TruncatedNormal(seed=7))
        layer(np.ones((1, 2, 4), "float32"))
        self.assertIsNot(layer.dense_1.kernel_initializer, layer.dense_2.kernel_initializer)
        self.assertIsNot(layer.dense_1.kernel_initializer, layer.kernel_initializer)
