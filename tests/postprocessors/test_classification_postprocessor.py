"""Tests of `ClassificationPostprocessor`: (B, 1, K) decoder outputs -> (B, K) logits."""

import re

import keras
import numpy as np
import pytest

from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from tests.test_case import TestCase


class ClassificationPostprocessorLayerTest(TestCase):
    def test_layer(self):
        x = np.random.default_rng(0).normal(size=(3, 1, 5)).astype("float32")
        _, outputs = self.run_layer_test(
            ClassificationPostprocessor, {}, x, expected_output_shape=(3, 5), expected_num_trainable_weights=0
        )
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(outputs), x[:, 0])


def test_takes_the_first_query():
    x = np.random.default_rng(0).normal(size=(3, 2, 5)).astype("float32")
    outputs = ClassificationPostprocessor()(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(outputs), x[:, 0, :])
    assert tuple(ClassificationPostprocessor()(keras.Input((1, 10))).shape) == (None, 10)


@pytest.mark.parametrize("shape", [(2, 10), (2, 1, 1, 10)])
def test_rank_other_than_3_raises(shape):
    with pytest.raises(ValueError, match=re.escape(f"must have rank 3. Received: inputs.shape={shape}")):
        ClassificationPostprocessor()(np.ones(shape, "float32"))
    with pytest.raises(ValueError, match="must have rank 3"):
        ClassificationPostprocessor()(keras.Input(shape[1:]))


def test_no_query_raises():
    with pytest.raises(ValueError, match="empty index dimension"):
        ClassificationPostprocessor()(np.ones((2, 0, 10), "float32"))


def test_config_round_trip():
    layer = ClassificationPostprocessor(name="logits")
    config = layer.get_config()
    restored = ClassificationPostprocessor.from_config(config)
    assert restored.get_config() == config
    assert keras.saving.get_registered_name(ClassificationPostprocessor) == (
        "keras_perceiver>ClassificationPostprocessor"
    )
