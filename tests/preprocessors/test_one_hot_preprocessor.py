"""Tests of `OneHotPreprocessor`: layout, parity with transformers, errors, serialization."""

import keras
import numpy as np
import pytest

from keras_perceiver.preprocessors.one_hot_preprocessor import OneHotPreprocessor
from tests.test_case import TestCase


class OneHotPreprocessorTest(TestCase):
    def test_layer(self):
        labels = np.eye(5, dtype="float32")[[1, 3, 0]]
        _, outputs = self.run_layer_test(
            OneHotPreprocessor, {"num_classes": 5}, labels, expected_output_shape=(3, 1, 5)
        )
        self.assertAllClose(outputs, labels[:, None, :])

    def test_integer_labels_are_cast(self):
        outputs = OneHotPreprocessor()(np.array([[0, 1], [1, 0]], "int32"))
        self.assertDtype(outputs, "float32")


def test_matches_transformers():
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")
    from transformers import PerceiverConfig

    soft = np.random.default_rng(0).dirichlet(np.ones(7), size=3).astype("float32")
    reference = modeling.PerceiverOneHotPreprocessor(PerceiverConfig(num_labels=7))
    expected, _, _ = reference(torch.from_numpy(soft))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(OneHotPreprocessor()(soft)), expected.numpy())


def test_errors():
    with pytest.raises(ValueError, match=r"rank 2 \(B, K\).*inputs.shape=\(2, 1, 5\)"):
        OneHotPreprocessor()(np.zeros((2, 1, 5), "float32"))
    with pytest.raises(ValueError, match=r"expected 5 classes.*inputs.shape=\(2, 4\)"):
        OneHotPreprocessor(num_classes=5)(np.zeros((2, 4), "float32"))
    layer = OneHotPreprocessor()
    layer(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match=r"expected 4 classes.*inputs.shape=\(2, 6\)"):
        layer(np.zeros((2, 6), "float32"))
    with pytest.raises(ValueError, match="num_classes"):
        OneHotPreprocessor(num_classes=0)
