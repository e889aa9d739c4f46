"""Tests of QueryPatches: a centred 1-D convolution over the real positions only."""

import keras
import numpy as np

from keras_perceiver.layers.query_patches import QueryPatches
from tests.test_case import TestCase


class QueryPatchesTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.inputs = rng.normal(size=(2, 9, 4)).astype("float32")
        self.padding_mask = np.ones((2, 9), bool)
        self.padding_mask[1, 6:] = False

    def test_layer_basics(self):
        self.run_layer_test(
            QueryPatches,
            {"filters": 3, "kernel_size": 5},
            self.inputs,
            expected_output_shape=(2, 9, 3),
            expected_num_trainable_weights=2,
        )

    def test_values_equal_a_numpy_convolution_over_real_positions(self):
        layer = QueryPatches(3, 5, bias_initializer="random_normal")
        outputs = np.asarray(layer(self.inputs, padding_mask=self.padding_mask))
        kernel, bias = (np.asarray(w) for w in layer.weights)
        masked = self.inputs * self.padding_mask[..., None]
        padded = np.pad(masked, [(0, 0), (2, 2), (0, 0)])
        expected = sum(padded[:, k : k + 9] @ kernel[k] for k in range(5)) + bias
        np.testing.assert_allclose(outputs, expected, atol=1e-5)
        # Padded positions do not reach the real ones: changing them changes only padded outputs.
        changed = self.inputs.copy()
        changed[1, 6:] = 100.0
        again = np.asarray(layer(changed, padding_mask=self.padding_mask))
        np.testing.assert_allclose(again[:, :6], outputs[:, :6], atol=1e-5)
        # Without a mask every position counts.
        unmasked = np.asarray(layer(changed))
        self.assertGreater(np.abs(unmasked[1, 4] - outputs[1, 4]).max(), 1.0)

    def test_even_kernel_size_is_refused(self):
        with self.assertRaisesRegex(ValueError, "odd kernel_size.*Received: kernel_size=4"):
            QueryPatches(3, 4)

    def test_config_round_trip(self):
        layer = QueryPatches(3, 3, name="query_patches")
        restored = keras.layers.deserialize(keras.layers.serialize(layer))
        self.assertIsInstance(restored, QueryPatches)
        self.assertEqual(restored.kernel_size, (3,))
        self.assertEqual(restored.padding, "same")
