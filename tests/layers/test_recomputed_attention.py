"""Training in chunks: `recomputed_attention`'s gradients equal the whole attention's; the fused path's
outputs equal the whole attention's; on every backend."""

import os
import textwrap
from unittest import mock

import numpy as np
import tensorflow as tf

from keras_perceiver.layers import attention_dispatch
from keras_perceiver.layers.chunked_attention import whole_attention
from keras_perceiver.layers.multi_head_attention import PerceiverMultiHeadAttention
from keras_perceiver.layers.recomputed_attention import recomputed_attention
from tests.layers.test_chunked_attention import DV, B, S, T, heads, masks, relative_difference
from tests.test_case import TestCase, run_on_backend

# (query chunk, key chunk): keys only (dividing S, not dividing it, S, above S), queries only, both, neither.
CHUNKINGS = ((None, 4), (None, 7), (None, 23), (None, 64), (2, None), (3, 4), (5, 5), (None, None))


def output_and_gradients(function, query, key, value, weights):
    """The output and d(sum(output * weights)) / d(query, key, value)."""
    query, key, value = (tf.constant(x) for x in (query, key, value))
    with tf.GradientTape() as tape:
        tape.watch([query, key, value])
        output = function(query, key, value)
        loss = tf.reduce_sum(tf.cast(output, "float32") * weights)
    return [output, *tape.gradient(loss, [query, key, value])]


def twin_layers(query, inputs, chunk_sizes, rng, **kwargs):
    """`PerceiverMultiHeadAttention(2, 8, 16, **kwargs)` layers, one per `attention_chunk_size`, built on
    (query, inputs), all with the same random weights."""
    layers = [
        PerceiverMultiHeadAttention(2, 8, 16, attention_chunk_size=size, **kwargs) for size in chunk_sizes
    ]
    for layer in layers:
        layer(query, inputs)
    weights = [rng.normal(size=w.shape).astype("float32") for w in layers[0].get_weights()]
    for layer in layers:
        layer.set_weights(weights)
    return layers


class RecomputedAttentionTest(TestCase):
    def test_outputs_and_gradients_equal_the_whole_attention_under_every_mask_and_chunking(self):
        query, key, value = heads()
        weights = np.random.default_rng(5).normal(size=(B, T, 2, DV)).astype("float32")
        worst = 0.0
        for name, mask in masks().items():
            expected = output_and_gradients(
                lambda q, k, v, mask=mask: whole_attention(q, k, v, mask), query, key, value, weights
            )
            self.assertGreater(float(np.max(np.abs(expected[2]))), 0.1)  # the keys' gradient is not trivial
            for query_chunk, key_chunk in CHUNKINGS:
                chunks = (query_chunk, key_chunk)
                actual = output_and_gradients(
                    lambda q, k, v, mask=mask, chunks=chunks: recomputed_attention(q, k, v, mask, *chunks),
                    query,
                    key,
                    value,
                    weights,
                )
                for label, a, e in zip(("output", "d_query", "d_key", "d_value"), actual, expected):
                    difference = relative_difference(a, np.asarray(e))
                    worst = max(worst, difference)
                    self.assertLessEqual(difference, 1e-5, msg=f"mask={name} {chunks} {label}")
        print(f"recomputed vs whole attention: max relative difference {worst:.1e}")

    def test_fully_masked_rows_give_no_gradient_to_queries_and_keys(self):
        query, key, value = heads()
        mask = masks()["padding"]  # example 2 has every key masked
        weights = np.ones((B, T, 2, DV), "float32")
        _, d_query, d_key, d_value = output_and_gradients(
            lambda q, k, v: recomputed_attention(q, k, v, mask, None, 4), query, key, value, weights
        )
        self.assertEqual(float(np.max(np.abs(d_query[2]))), 0.0)
        self.assertEqual(float(np.max(np.abs(d_key[2]))), 0.0)
        self.assertGreater(float(np.max(np.abs(d_value[2]))), 0.0)  # the uniform average still reads values

    def test_mixed_bfloat16_gradients_stay_within_a_few_units_of_its_epsilon(self):
        query, key, value = (x.astype("float32") for x in heads())
        weights = np.random.default_rng(5).normal(size=(B, T, 2, DV)).astype("float32")
        expected = output_and_gradients(lambda q, k, v: whole_attention(q, k, v), query, key, value, weights)

        def bfloat16(q, k, v):
            return recomputed_attention(*(tf.cast(x, "bfloat16") for x in (q, k, v)), None, 2, 4)

        actual = output_and_gradients(bfloat16, query, key, value, weights)
        for label, a, e in zip(("output", "d_query", "d_key", "d_value"), actual, expected):
            difference = relative_difference(tf.cast(a, "float32"), np.asarray(e))
            self.assertLessEqual(difference, 8 * 2**-7, msg=label)


class TrainingPathTest(TestCase):
    def test_a_chunked_layer_trains_through_recomputed_attention_with_the_whole_attentions_gradients(self):
        rng = np.random.default_rng(0)
        query = tf.constant(rng.normal(size=(B, T, 16)).astype("float32"))
        inputs = rng.normal(size=(B, S, 3)).astype("float32")
        mask = masks()["padding"]
        layers = twin_layers(query, inputs, (0, 4), rng, v_channels=12)
        results = []
        with mock.patch.object(
            attention_dispatch, "recomputed_attention", wraps=attention_dispatch.recomputed_attention
        ) as spy:
            for layer in layers:
                with tf.GradientTape() as tape:
                    tape.watch(query)
                    loss = tf.reduce_sum(layer(query, inputs, attention_mask=mask, training=True) ** 2)
                results.append(tape.gradient(loss, [query, *layer.trainable_weights]))
        self.assertEqual(spy.call_count, 1)  # the chunked layer only
        scale = max(float(np.max(np.abs(g))) for g in results[0])
        names = ["query"] + [w.path for w in layers[1].trainable_weights]
        for name, expected, actual in zip(names, *results):
            difference = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected)))) / scale
            self.assertLessEqual(difference, 1e-5, msg=name)

    def test_gradients_in_a_graph_of_unknown_sizes(self):
        rng = np.random.default_rng(0)
        query = rng.normal(size=(2, 5, 16)).astype("float32")
        inputs = rng.normal(size=(2, 23, 3)).astype("float32")
        layers = [PerceiverMultiHeadAttention(2, 8, 16, attention_chunk_size=size) for size in (0, 4)]
        for layer in layers:
            layer(query, inputs)
        layers[1].set_weights(layers[0].get_weights())
        results = []
        for layer in layers:
            spec = [tf.TensorSpec((None, None, 16)), tf.TensorSpec((None, None, 3))]

            @tf.function(input_signature=spec)
            def gradients(query, inputs, layer=layer):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(layer(query, inputs, training=True) ** 2)
                return tape.gradient(loss, layer.trainable_weights)

            results.append(gradients(query, inputs))
        scale = max(float(np.max(np.abs(g))) for g in results[0])
        for expected, actual in zip(*results):
            self.assertLessEqual(float(np.max(np.abs(np.asarray(actual) - expected))) / scale, 1e-5)

    def test_the_fused_path_equals_the_whole_attention_with_zeros_for_fully_masked_rows(self):
        rng = np.random.default_rng(0)
        query = rng.normal(size=(B, T, 16)).astype("float32")
        inputs = rng.normal(size=(B, S, 3)).astype("float32")
        layer = PerceiverMultiHeadAttention(2, 8, 16, attention_chunk_size=0)  # the kernels need d_v = d
        layer(query, inputs)
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
        for name, mask in masks().items():
            expected = np.asarray(layer(query, inputs, attention_mask=mask))
            with mock.patch.object(attention_dispatch, "has_fused_attention", return_value=True):
                with mock.patch.object(
                    attention_dispatch, "fused_attention", wraps=attention_dispatch.fused_attention
                ) as spy:
                    fused = np.asarray(layer(query, inputs, attention_mask=mask))
            self.assertEqual(spy.call_count, 1)
            self.assertLessEqual(relative_difference(fused, expected), 1e-6, msg=name)
        with mock.patch.object(attention_dispatch, "has_fused_attention", return_value=True):
            with mock.patch.object(attention_dispatch, "fused_attention") as spy:
                wider = PerceiverMultiHeadAttention(2, 8, 16, v_channels=12, attention_chunk_size=0)
                wider(query, inputs)
        self.assertEqual(spy.call_count, 0)  # d_v != d: the whole attention
        query, key, value = heads()
        padded = attention_dispatch.fused_attention(query, key, value[..., :4], masks()["padding"])
        padded = np.asarray(padded)
        self.assertEqual(float(np.max(np.abs(padded[2]))), 0.0)  # example 2 has no key to attend to
        self.assertGreater(float(np.max(np.abs(padded[1]))), 0.1)

    def test_no_fused_kernel_on_the_tensorflow_backend(self):
        self.assertFalse(attention_dispatch.has_fused_attention())


BACKEND_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import keras
    from keras import ops
    from keras_perceiver.layers.chunked_attention import whole_attention
    from keras_perceiver.layers.fused_attention import fused_attention
    from keras_perceiver.layers.recomputed_attention import recomputed_attention

    backend = keras.backend.backend()
    data = dict(np.load(sys.argv[1]))
    query, key, value, mask, weights = (data[k] for k in ("query", "key", "value", "mask", "weights"))
    if backend == "jax":
        import jax

        def gradients(function):
            loss = lambda q, k, v: (function(q, k, v) * weights).sum()
            return jax.grad(loss, argnums=(0, 1, 2))(query, key, value)
    else:
        import torch

        def gradients(function):
            q, k, v = (torch.tensor(x, requires_grad=True) for x in (query, key, value))
            (function(q, k, v) * torch.tensor(weights)).sum().backward()
            return q.grad, k.grad, v.grad

    expected = gradients(lambda q, k, v: whole_attention(q, k, v, ops.convert_to_tensor(mask)))
    for chunks in ((None, 4), (2, None), (3, 7)):
        mask_tensor = ops.convert_to_tensor(mask)
        actual = gradients(lambda q, k, v: recomputed_attention(q, k, v, mask_tensor, *chunks))
        for a, e in zip(actual, expected):
            a, e = np.asarray(ops.convert_to_numpy(a)), np.asarray(ops.convert_to_numpy(e))
            difference = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert difference <= 1e-5, (backend, chunks, difference)
    value = value[..., : key.shape[-1]]  # the kernels need d_v = d
    whole = ops.convert_to_numpy(whole_attention(query, key, value, ops.convert_to_tensor(mask)))
    fused = ops.convert_to_numpy(fused_attention(query, key, value, ops.convert_to_tensor(mask)))
    any_key = mask.any(axis=-1)[:, :, None, None]
    difference = np.max(np.abs(fused - np.where(any_key, whole, 0))) / np.max(np.abs(whole))
    assert difference <= 1e-6, (backend, "fused", difference)
    print(backend, "ok")
    """
)


class OtherBackendsTest(TestCase):
    def test_jax_and_torch_gradients_and_fused_attention(self):
        query, key, value = heads()
        path = os.path.join(self.make_temp_dir(), "case.npz")
        weights = np.random.default_rng(5).normal(size=(B, T, 2, DV)).astype("float32")
        np.savez(path, query=query, key=key, value=value, mask=masks()["padding"], weights=weights)
        for backend in ("jax", "torch"):
            result = run_on_backend(backend, BACKEND_SCRIPT, path)
            self.assertEqual(result.returncode, 0, msg=result.stderr[-3000:])
            self.assertIn(f"{backend} ok", result.stdout)
