"""Tests of `LogitsBias`: the masked-LM head's (vocab_size,) bias on the tied logits."""

import keras
import numpy as np
import pytest

from keras_perceiver.postprocessors import LogitsBias
from tests.test_case import TestCase


class LogitsBiasLayerTest(TestCase):
    def test_layer(self):
        x = np.random.default_rng(0).normal(size=(3, 4, 7)).astype("float32")
        layer, outputs = self.run_layer_test(
            LogitsBias, {"vocab_size": 7}, x, expected_output_shape=(3, 4, 7),
            expected_num_trainable_weights=1,
        )
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(outputs), x)  # zeros at first
        self.assertEqual(layer.bias.path, "logits_bias/bias")

    def test_adds_the_bias_to_every_position(self):
        layer = LogitsBias(5)
        x = np.random.default_rng(1).normal(size=(2, 3, 5)).astype("float32")
        layer(x)
        layer.bias.assign(np.arange(5, dtype="float32"))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), x + np.arange(5), atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="vocab_size.*Received: vocab_size=0"):
        LogitsBias(0)
    with pytest.raises(ValueError, match=r"vocab_size=5 channels. Received: inputs.shape=\(2, 3, 4\)"):
        LogitsBias(5)(np.ones((2, 3, 4), "float32"))
    with pytest.raises(ValueError, match="must have rank 3"):
        LogitsBias(5)(np.ones((2, 5), "float32"))
