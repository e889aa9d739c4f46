import numpy as np

from keras_perceiver.layers.drop_path import DropPath
from tests.test_case import TestCase


class DropPathTest(TestCase):
    def setUp(self):
        super().setUp()
        self.x = np.random.default_rng(0).normal(size=(400, 3, 2)).astype("float32") + 5.0

    def test_layer_basics(self):
        self.run_layer_test(
            DropPath,
            {"rate": 0.3},
            self.x[:4],
            expected_output_shape=(4, 3, 2),
            expected_num_trainable_weights=0,
            run_gradient_test=False,
        )

    def test_identity_at_inference(self):
        layer = DropPath(0.9)
        self.assertAllClose(layer(self.x), self.x)
        self.assertAllClose(layer(self.x, training=False), self.x)
        self.assertAllClose(DropPath(0.0)(self.x, training=True), self.x)

    def test_whole_examples_dropped_without_rescaling(self):
        out = DropPath(0.25, seed=3)(self.x, training=True).numpy()
        kept = np.all(out == self.x, axis=(1, 2))
        dropped = np.all(out == 0, axis=(1, 2))
        self.assertTrue(np.all(kept ^ dropped))
        self.assertAllClose(dropped.mean(), 0.25, atol=0.07)

    def test_scale_by_keep(self):
        out = DropPath(0.5, scale_by_keep=True, seed=3)(self.x, training=True).numpy()
        kept = np.all(np.isclose(out, 2 * self.x), axis=(1, 2))
        dropped = np.all(out == 0, axis=(1, 2))
        self.assertTrue(np.all(kept ^ dropped))

    def test_groups_of_an_example_share_the_draw(self):
        out = DropPath(0.5, num_groups=4, seed=5)(self.x, training=True).numpy()
        dropped = np.all(out == 0, axis=(1, 2)).reshape(100, 4)
        self.assertTrue(np.all(dropped.all(axis=1) | ~dropped.any(axis=1)))
        self.assertTrue(10 < dropped[:, 0].sum() < 90)

    def test_seeded_draws_are_reproducible(self):
        first = DropPath(0.5, seed=9)(self.x, training=True)
        second = DropPath(0.5, seed=9)(self.x, training=True)
        self.assertAllClose(first, second)

    def test_errors_name_received_values(self):
        with self.assertRaisesRegex(ValueError, r"\[0, 1\)\. Received: drop_path_rate=1\.5"):
            DropPath(1.5)
        with self.assertRaisesRegex(ValueError, r"num_groups=0"):
            DropPath(0.1, num_groups=0)
        with self.assertRaisesRegex(ValueError, r"multiple of 3\. Received: x\.shape=\(400, 3, 2\)"):
            DropPath(0.1, num_groups=3)(self.x, training=True)
