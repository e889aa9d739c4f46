"""Tests of CentredPatches + QueryPatches: a centred 1-D convolution over the real positions only."""

import keras
import numpy as np

from keras_perceiver.layers.query_patches import CentredPatches, QueryPatches
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
            CentredPatches,
            {"patch_size": 5},
            self.inputs,
            expected_output_shape=(2, 9, 5, 4),
            expected_num_trainable_weights=0,
        )
        self.run_layer_test(
            QueryPatches,
            {"filters": 3},
            np.random.default_rng(1).normal(size=(2, 9, 5, 4)).astype("float32"),
            expected_output_shape=(2, 9, 3),
            expected_num_trainable_weights=2,
        )

    def test_values_equal_a_numpy_convolution_over_real_positions(self):
        window, projection = CentredPatches(5), QueryPatches(3, bias_initializer="random_normal")
        outputs = np.asarray(projection(window(self.inputs, padding_mask=self.padding_mask)))
        kernel, bias = (np.asarray(w) for w in projection.weights)
        self.assertEqual(kernel.shape, (5, 4, 3))  # Conv1D's (P, E, filters) layout
        masked = self.inputs * self.padding_mask[..., None]
        padded = np.pad(masked, [(0, 0), (2, 2), (0, 0)])
        expected = sum(padded[:, k : k + 9] @ kernel[k] for k in range(5)) + bias
        np.testing.assert_allclose(outputs, expected, atol=1e-5)
        # The same as a Conv1D with "same" padding holding these weights.
        conv = keras.layers.Conv1D(3, 5, padding="same")
        conv.build((None, None, 4))
        conv.set_weights([kernel, bias])
        np.testing.assert_allclose(outputs, np.asarray(conv(masked)), atol=1e-5)
        # Padded positions do not reach the real ones: changing them changes only padded outputs.
        changed = self.inputs.copy()
        changed[1, 6:] = 100.0
        again = np.asarray(projection(window(changed, padding_mask=self.padding_mask)))
        np.testing.assert_allclose(again[:, :6], outputs[:, :6], atol=1e-5)
        # Without a mask every position counts.
        unmasked = np.asarray(projection(window(changed)))
        self.assertGreater(np.abs(unmasked[1, 4] - outputs[1, 4]).max(), 1.0)

    def test_int8_quantization_reaches_the_projection(self):
        """`keras.Model.quantize` (what `training.export --weight_quantization=int8` calls) turns the kernel
        into int8 with a scale per output channel; outputs stay near the float32 ones."""
        window, projection = CentredPatches(5), QueryPatches(8)
        patches = window(self.inputs, padding_mask=self.padding_mask)
        expected = np.asarray(projection(patches))
        projection.quantize("int8")
        self.assertEqual(keras.backend.standardize_dtype(projection.kernel.dtype), "int8")
        self.assertEqual(tuple(projection.kernel_scale.shape), (1, 1, 8))
        quantized = np.asarray(projection(patches))
        self.assertGreater(np.abs(quantized - expected).max(), 0.0)
        np.testing.assert_allclose(quantized, expected, atol=0.02 * np.abs(expected).max())

    def test_even_or_bad_sizes_are_refused(self):
        with self.assertRaisesRegex(ValueError, "odd patch_size.*Received: patch_size=4"):
            CentredPatches(4)
        with self.assertRaisesRegex(ValueError, "filters.*Received.*0"):
            QueryPatches(0)

    def test_config_round_trip(self):
        for layer in (CentredPatches(3, name="query_patch_window"), QueryPatches(3, name="query_patches")):
            restored = keras.layers.deserialize(keras.layers.serialize(layer))
            self.assertIsInstance(restored, type(layer))
            self.assertEqual(restored.get_config(), layer.get_config())
        self.assertEqual(restored.equation, "blpe,pef->blf")
