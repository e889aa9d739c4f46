"""Chunked attention (online softmax over key chunks, query chunks) equals the whole attention."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_perceiver.layers.attention_dispatch import attention
from keras_perceiver.layers.chunked_attention import (
    AUTO_CHUNK_SCORES,
    key_chunked_attention,
    query_chunked_attention,
    resolve_chunk_sizes,
    whole_attention,
)
from keras_perceiver.layers.multi_head_attention import PerceiverMultiHeadAttention
from tests.test_case import TestCase

B, T, S, H, D, DV = 3, 5, 23, 2, 4, 6


def heads(seed=0, num_queries=T, num_keys=S):
    rng = np.random.default_rng(seed)
    query = rng.normal(scale=2.0, size=(B, num_queries, H, D)).astype("float32")
    key = rng.normal(scale=2.0, size=(B, num_keys, H, D)).astype("float32")
    value = rng.normal(size=(B, num_keys, H, DV)).astype("float32")
    return query, key, value


def masks(num_queries=T, num_keys=S):
    """Each kind of mask the attention layers pass: none, key padding (with a fully padded example),
    query mask (with a fully masked query), and a full (B, T, S) mask."""
    rng = np.random.default_rng(1)
    padding = np.ones((B, 1, num_keys), bool)
    padding[1, :, 9:] = False
    padding[2] = False
    query_mask = np.ones((B, num_queries, 1), bool)
    query_mask[0, 2] = False
    full = rng.random((B, num_queries, num_keys)) > 0.3
    full[1, 3] = False
    return {"none": None, "padding": padding, "query": query_mask, "full": full}


def relative_difference(actual, expected):
    return float(np.max(np.abs(np.asarray(actual) - expected)) / np.max(np.abs(expected)))


class ChunkedAttentionTest(TestCase):
    def test_every_chunking_equals_the_whole_attention_under_every_mask(self):
        query, key, value = heads()
        worst = 0.0
        for name, mask in masks().items():
            expected = np.asarray(whole_attention(query, key, value, mask))
            for chunk in (1, 4, 7, 23, 64):  # dividing S, not dividing it, S itself, larger than S
                for label, result in (
                    ("keys", key_chunked_attention(query, key, value, chunk, mask)),
                    ("queries", query_chunked_attention(query, key, value, min(chunk, 3), mask)),
                    ("both", query_chunked_attention(query, key, value, 2, mask, key_chunk_size=chunk)),
                ):
                    difference = relative_difference(result, expected)
                    worst = max(worst, difference)
                    self.assertLessEqual(difference, 1e-6, msg=f"mask={name} chunk={chunk} {label}")
        print(f"chunked vs whole attention: max relative difference {worst:.1e}")

    def test_fully_masked_rows_match_and_padding_keys_never_count(self):
        query, key, value = heads()
        mask = masks()["padding"]
        # Example 1 sees keys 0..8 only: chunked by 4 keys, it equals attention over those 9 keys.
        chunked = np.asarray(key_chunked_attention(query, key, value, 4, mask))
        alone = np.asarray(whole_attention(query[1:2], key[1:2, :9], value[1:2, :9]))
        self.assertAllClose(chunked[1:2], alone, atol=1e-6)
        self.assertTrue(np.all(np.isfinite(chunked)))

    def test_keys_and_values_projected_chunk_by_chunk(self):
        query, _, _ = heads()
        rng = np.random.default_rng(3)
        inputs = rng.normal(size=(B, S, 5)).astype("float32")
        key_kernel = rng.normal(size=(5, H * D)).astype("float32")
        value_kernel = rng.normal(size=(5, H * DV)).astype("float32")
        sizes = []

        def project(x):
            sizes.append(x.shape[1])
            normed = keras.ops.tanh(x)  # a per-position transform, as the input LayerNorm
            return (
                keras.ops.reshape(keras.ops.matmul(normed, key_kernel), (B, -1, H, D)),
                keras.ops.reshape(keras.ops.matmul(normed, value_kernel), (B, -1, H, DV)),
            )

        mask = masks()["padding"]
        expected = np.asarray(whole_attention(query, *project(inputs), mask))
        chunked = attention(query, inputs, project, mask, attention_chunk_size=T, value_width=DV)
        self.assertLessEqual(relative_difference(chunked, expected), 1e-6)
        self.assertEqual(set(sizes[1:]), {T})  # chunks of T = 5 inputs are projected, never all 23

    def test_resolve_chunk_sizes(self):
        self.assertEqual(resolve_chunk_sizes(256, 1024, None), (None, None))
        self.assertEqual(resolve_chunk_sizes(256, 2**20, None), (None, AUTO_CHUNK_SCORES // 256))
        self.assertEqual(resolve_chunk_sizes(2**20, 784, None), (AUTO_CHUNK_SCORES // 784, None))
        self.assertEqual(resolve_chunk_sizes(None, 2**20, None), (None, None))  # unknown sizes: not automatic
        self.assertEqual(resolve_chunk_sizes(256, 2**20, 0), (None, None))
        self.assertEqual(resolve_chunk_sizes(10, 100, 16), (None, 16))
        self.assertEqual(resolve_chunk_sizes(100, 10, 16), (16, None))
        self.assertEqual(resolve_chunk_sizes(None, None, 16), (16, 16))

    def test_dropout_uses_the_whole_attention(self):
        query, key, value = heads()
        calls = []

        def dropout(probs):
            calls.append(tuple(probs.shape))
            return probs

        attention(query, key[..., 0, :], lambda inputs: (key, value), dropout=dropout, attention_chunk_size=4)
        self.assertEqual(calls, [(B, H, T, S)])


class ChunkedMultiHeadAttentionTest(TestCase):
    def layer_pair(self, chunk_size, **kwargs):
        whole = PerceiverMultiHeadAttention(2, 8, 16, v_channels=12, attention_chunk_size=0, **kwargs)
        chunked = PerceiverMultiHeadAttention(
            2, 8, 16, v_channels=12, attention_chunk_size=chunk_size, **kwargs
        )
        query = np.random.default_rng(0).normal(size=(B, T, 16)).astype("float32")
        inputs = np.random.default_rng(1).normal(size=(B, S, 3)).astype("float32")
        whole(query, inputs)
        chunked(query, inputs)
        rng = np.random.default_rng(2)
        chunked.set_weights([rng.normal(size=w.shape).astype("float32") for w in whole.get_weights()])
        whole.set_weights(chunked.get_weights())
        return whole, chunked, query, inputs

    def test_layer_outputs_equal_with_masks_and_in_a_dynamic_shape_graph(self):
        whole, chunked, query, inputs = self.layer_pair(chunk_size=4)
        mask = masks()["padding"]
        expected = np.asarray(whole(query, inputs, attention_mask=mask))
        self.assertGreater(np.abs(expected).max(), 1.0)
        self.assertLessEqual(relative_difference(chunked(query, inputs, attention_mask=mask), expected), 1e-6)
        # Unknown T and S in a tf.function: the number of chunks is computed in the graph.
        spec = (
            tf.TensorSpec((None, None, 16), "float32"),
            tf.TensorSpec((None, None, 3), "float32"),
            tf.TensorSpec((None, 1, None), "bool"),
        )
        graph = tf.function(lambda q, x, m: chunked(q, x, attention_mask=m), input_signature=spec)
        self.assertLessEqual(relative_difference(graph(query, inputs, mask), expected), 1e-6)
        self.assertEqual(chunked.get_config()["attention_chunk_size"], 4)
        self.assertEqual(
            PerceiverMultiHeadAttention.from_config(chunked.get_config()).attention_chunk_size, 4
        )

    def test_mixed_bfloat16_stays_within_a_few_units_of_its_epsilon(self):
        whole, chunked, query, inputs = self.layer_pair(chunk_size=4, dtype="mixed_bfloat16")
        expected = np.asarray(whole(query, inputs), "float32")
        difference = relative_difference(np.asarray(chunked(query, inputs), "float32"), expected)
        print(f"mixed_bfloat16 chunked vs whole: relative {difference:.1e} (bfloat16 epsilon 7.8e-3)")
        self.assertLessEqual(difference, 4 * 2**-7)

    def test_invalid_chunk_size(self):
        with pytest.raises(ValueError, match="attention_chunk_size.*Received: attention_chunk_size=-2"):
            PerceiverMultiHeadAttention(1, 8, 8, attention_chunk_size=-2)

    def test_gradients_flow_through_the_chunks(self):
        _, chunked, query, inputs = self.layer_pair(chunk_size=4)
        whole, _, _, _ = self.layer_pair(chunk_size=4)
        whole.set_weights(chunked.get_weights())
        query = tf.constant(query)
        gradients = []
        for layer in (whole, chunked):
            with tf.GradientTape() as tape:
                tape.watch(query)
                loss = keras.ops.sum(layer(query, inputs) ** 2)
            gradients.append(tape.gradient(loss, [query] + layer.trainable_weights))
        names = ["query"] + [w.path for w in chunked.trainable_weights]
        scale = max(float(np.max(np.abs(g))) for g in gradients[0])
        for name, expected, actual in zip(names, *gradients):
            # Relative to the largest gradient: the key bias' gradient is zero up to round-off (a softmax does
            # not change when every score of a row moves by the same amount).
            difference = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected)))) / scale
            self.assertLessEqual(difference, 1e-5, msg=name)


class ChunkedEncoderDecoderTest(TestCase):
    def test_encoder_and_decoder_chunk_as_configured(self):
        from keras_perceiver.layers import CrossAttentionEncoder, QueryDecoder

        rng = np.random.default_rng(0)
        inputs = rng.normal(size=(2, 50, 3)).astype("float32")
        padding = np.ones((2, 50), bool)
        padding[1, 20:] = False
        queries = rng.normal(size=(2, 40, 16)).astype("float32")
        for make in (
            lambda chunk: CrossAttentionEncoder(
                8, 16, num_cross_attention_heads=2, qk_channels=8, attention_chunk_size=chunk
            ),
            lambda chunk: QueryDecoder(
                num_cross_attention_heads=2, output_channels=5, attention_chunk_size=chunk
            ),
        ):
            whole, chunked = make(0), make(7)
            is_encoder = isinstance(whole, CrossAttentionEncoder)
            call_args = (inputs,) if is_encoder else (queries, rng.normal(size=(2, 8, 16)).astype("float32"))
            call_kwargs = {"padding_mask": padding} if is_encoder else {}
            whole(*call_args, **call_kwargs)
            chunked(*call_args, **call_kwargs)
            chunked.set_weights(
                [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in whole.weights]
            )
            whole.set_weights(chunked.get_weights())
            expected = np.asarray(whole(*call_args, **call_kwargs))
            self.assertLessEqual(relative_difference(chunked(*call_args, **call_kwargs), expected), 1e-6)
            self.assertEqual(chunked.cross_attention.attention.attention_chunk_size, 7)
            self.assertEqual(type(chunked).from_config(chunked.get_config()).attention_chunk_size, 7)
