"""Tests of the opt-in attention-map recording (`record_attention_maps`, `model.attention_maps`)."""

import numpy as np

from keras_perceiver.layers import CrossAttention, SelfAttention
from keras_perceiver.layers.attention_maps import is_recording, record_attention_maps
from tests.test_case import TestCase


def _values(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


class AttentionMapsTest(TestCase):
    def test_chunked_and_masked_attention_record_the_whole_probabilities(self):
        """Recording leaves outputs alone; chunked layers record what the whole attention computes."""
        query, inputs = _values((2, 3, 8), 0), _values((2, 10, 6), 1)
        mask = np.ones((2, 10), bool)
        mask[1, 6:] = False
        whole = CrossAttention(num_heads=2, qk_channels=8)
        chunked = CrossAttention(num_heads=2, qk_channels=8, attention_chunk_size=4)
        expected_outputs = whole(query, inputs, padding_mask=mask)
        chunked(query, inputs, padding_mask=mask)
        chunked.set_weights(whole.get_weights())
        self.assertFalse(is_recording())
        with record_attention_maps() as whole_maps:
            self.assertTrue(is_recording())
            outputs = whole(query, inputs, padding_mask=mask)
        with record_attention_maps() as chunked_maps:
            chunked(query, inputs, padding_mask=mask)
        self.assertFalse(is_recording())
        self.assertAllClose(outputs, expected_outputs, atol=0, rtol=0)
        (probabilities,) = whole_maps.cross_attentions()
        probabilities = np.asarray(probabilities)
        self.assertEqual(probabilities.shape, (2, 2, 3, 10))
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(probabilities[1, :, :, 6:], 0.0)
        self.assertAllClose(chunked_maps.cross_attentions()[0], probabilities, atol=1e-6)
        self.assertEqual(whole_maps.self_attentions(), [])

    def test_repeated_calls_get_numbered_keys(self):
        layer = SelfAttention(num_heads=2)
        x = _values((1, 4, 8), 2)
        with record_attention_maps() as maps:
            layer(x)
            layer(x)
        self.assertEqual(list(maps), [layer.attention.path, layer.attention.path + "#1"])
        self.assertEqual(set(maps.kinds.values()), {"self"})
