"""Training in key chunks with the keys and values recomputed from the inputs:
`recomputed_projection_attention`'s outputs and gradients (queries, inputs, LayerNorm and projection weights)
equal the whole attention's, on every backend."""

import os
import textwrap
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

from keras_perceiver.layers import attention_dispatch
from keras_perceiver.layers.chunked_attention import whole_attention
from keras_perceiver.layers.multi_head_attention import PerceiverMultiHeadAttention
from keras_perceiver.layers.recomputed_attention import recomputed_projection_attention
from tests.layers.test_chunked_attention import DV, B, D, H, S, T, masks, relative_difference
from tests.layers.test_recomputed_attention import twin_layers
from tests.test_case import TestCase, run_on_backend

C = 3  # input channels
KEY_CHUNKS = (4, 7, 23, 64)  # dividing S, not dividing it, S, above S


class Projection:
    """An input LayerNorm and key/value kernels (C -> H x D, H x DV) with random weights: `project` and its
    variables."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.norm.build((None, None, C))
        self.norm.set_weights([rng.normal(size=(C,)).astype("float32") for _ in range(2)])
        self.key_kernel = keras.Variable(rng.normal(size=(C, H * D)).astype("float32"), name="key")
        self.value_kernel = keras.Variable(rng.normal(size=(C, H * DV)).astype("float32"), name="value")
        self.variables = [*self.norm.variables, self.key_kernel, self.value_kernel]

    def __call__(self, inputs):
        normalized = self.norm(inputs)
        batch = keras.ops.shape(inputs)[0]
        key = keras.ops.reshape(keras.ops.matmul(normalized, self.key_kernel), (batch, -1, H, D))
        value = keras.ops.reshape(keras.ops.matmul(normalized, self.value_kernel), (batch, -1, H, DV))
        return key, value


def case(seed=0):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(B, T, H, D)).astype("float32")
    inputs = rng.normal(scale=2.0, size=(B, S, C)).astype("float32")
    weights = rng.normal(size=(B, T, H, DV)).astype("float32")
    return query, inputs, weights


def output_and_gradients(function, projection, query, inputs, weights):
    """The output and d(sum(output * weights)) / d(query, inputs, projection variables)."""
    query, inputs = tf.constant(query), tf.constant(inputs)
    with tf.GradientTape() as tape:
        tape.watch([query, inputs])
        output = function(query, inputs)
        loss = tf.reduce_sum(tf.cast(output, "float32") * weights)
    return [output, *tape.gradient(loss, [query, inputs, *projection.variables])]


def whole(projection, mask):
    return lambda query, inputs: whole_attention(query, *projection(inputs), mask)


def chunked(projection, mask, key_chunk):
    return lambda query, inputs: recomputed_projection_attention(
        query, inputs, projection, projection.variables, key_chunk, mask, value_width=DV
    )


LABELS = ("output", "d_query", "d_inputs", "d_gamma", "d_beta", "d_key_kernel", "d_value_kernel")


class RecomputedProjectionAttentionTest(TestCase):
    def assert_close(self, actual, expected, tolerance, context):
        for label, a, e in zip(LABELS, actual, expected):
            self.assertGreater(float(np.max(np.abs(e))), 1e-3, msg=f"{context} {label}: a trivial case")
            difference = relative_difference(tf.cast(a, "float32"), np.asarray(e))
            self.assertLessEqual(difference, tolerance, msg=f"{context} {label}")

    def test_outputs_and_all_gradients_equal_the_whole_attention_under_every_mask_and_chunk_size(self):
        projection = Projection()
        query, inputs, weights = case()
        for name, mask in masks().items():
            expected = output_and_gradients(whole(projection, mask), projection, query, inputs, weights)
            for key_chunk in KEY_CHUNKS:
                actual = output_and_gradients(
                    chunked(projection, mask, key_chunk), projection, query, inputs, weights
                )
                self.assert_close(actual, expected, 1e-5, f"mask={name} key_chunk={key_chunk}")

    def test_in_a_graph_of_unknown_sizes(self):
        projection = Projection()
        query, inputs, weights = case()
        spec = [tf.TensorSpec((None, None, H, D)), tf.TensorSpec((None, None, C))]
        results = []
        # 7 divides no size here; 64 is above S, which is known only at run time (cut to S there).
        functions = (whole(projection, None), chunked(projection, None, 7), chunked(projection, None, 64))
        for function in functions:

            @tf.function(input_signature=spec)
            def run(query, inputs, function=function):
                with tf.GradientTape() as tape:
                    tape.watch([query, inputs])
                    output = function(query, inputs)
                    loss = tf.reduce_sum(output * weights)
                return [output, *tape.gradient(loss, [query, inputs, *projection.variables])]

            results.append(run(query, inputs))
        self.assert_close(results[1], results[0], 1e-5, "unknown sizes, key_chunk=7")
        self.assert_close(results[2], results[0], 1e-5, "unknown sizes, key_chunk=64")

    def test_under_xla_as_keras_compiles_training_steps(self):
        projection = Projection()
        query, inputs, weights = case()
        mask = masks()["padding"]
        expected = output_and_gradients(whole(projection, mask), projection, query, inputs, weights)

        @tf.function(jit_compile=True)
        def compiled(query, inputs):
            with tf.GradientTape() as tape:
                tape.watch([query, inputs])
                output = chunked(projection, mask, 7)(query, inputs)
                loss = tf.reduce_sum(output * weights)
            return [output, *tape.gradient(loss, [query, inputs, *projection.variables])]

        self.assert_close(compiled(tf.constant(query), tf.constant(inputs)), expected, 1e-5, "XLA")

    def test_bfloat16_queries_and_inputs_stay_within_a_few_units_of_its_epsilon(self):
        projection = Projection()
        query, inputs, weights = case()
        expected = output_and_gradients(whole(projection, None), projection, query, inputs, weights)

        def bfloat16(query, inputs):
            return chunked(projection, None, 7)(tf.cast(query, "bfloat16"), tf.cast(inputs, "bfloat16"))

        actual = output_and_gradients(bfloat16, projection, query, inputs, weights)
        self.assert_close(actual, expected, 8 * 2**-7, "bfloat16")

    def test_a_layer_trains_in_key_chunks_through_it_with_the_whole_attentions_gradients(self):
        rng = np.random.default_rng(0)
        query = tf.constant(rng.normal(size=(B, T, 16)).astype("float32"))
        inputs = tf.constant(rng.normal(size=(B, S, C)).astype("float32"))
        norm = keras.layers.LayerNormalization()
        norm.build((None, None, C))
        norm.set_weights([rng.normal(size=(C,)).astype("float32") for _ in range(2)])
        # 0: never chunked; 8: T = 5 queries answered whole, S = 23 keys in chunks of 8.
        layers = twin_layers(query, inputs, (0, 8), rng, v_channels=12)
        results = []
        with mock.patch.object(
            attention_dispatch,
            "recomputed_projection_attention",
            wraps=attention_dispatch.recomputed_projection_attention,
        ) as spy:
            for layer in layers:
                with tf.GradientTape() as tape:
                    tape.watch([query, inputs])
                    output = layer(
                        query, inputs, attention_mask=masks()["padding"], training=True, key_value_norm=norm
                    )
                    loss = tf.reduce_sum(output**2)
                variables = [query, inputs, *layer.trainable_weights, *norm.trainable_weights]
                results.append(tape.gradient(loss, variables))
        self.assertEqual(spy.call_count, 1)  # the chunked layer only
        names = ["query", "inputs"] + [w.path for w in layers[1].trainable_weights + norm.trainable_weights]
        scale = max(float(np.max(np.abs(g))) for g in results[0])
        for name, expected, actual in zip(names, *results):
            if "key/bias" not in name:  # the softmax ignores a bias shared by every key: its gradient is ~0
                self.assertGreater(float(np.max(np.abs(expected))), 1e-3, msg=name)
            difference = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected)))) / scale
            self.assertLessEqual(difference, 1e-5, msg=name)


    def test_a_mixed_bfloat16_layer_trains_in_key_chunks_within_a_few_units_of_its_epsilon(self):
        rng = np.random.default_rng(0)
        query = tf.constant(rng.normal(size=(B, T, 16)).astype("float32"))
        inputs = tf.constant(rng.normal(size=(B, S, C)).astype("float32"))
        layers = [
            PerceiverMultiHeadAttention(2, 8, 16, attention_chunk_size=size, dtype=policy)
            for size, policy in ((0, "float32"), (8, "mixed_bfloat16"))
        ]
        for layer in layers:
            layer(query, inputs)
        layers[1].set_weights(layers[0].get_weights())
        results = []
        for layer in layers:
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                output = tf.cast(layer(query, inputs, training=True), "float32")
                loss = tf.reduce_sum(output**2)
            self.assertEqual(output.shape, (B, T, 16))
            results.append(tape.gradient(loss, [inputs, *layer.trainable_weights]))
        scale = max(float(np.max(np.abs(g))) for g in results[0])
        for expected, actual in zip(*results):
            self.assertEqual(actual.dtype, expected.dtype)  # float32 variables get float32 gradients
            difference = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected)))) / scale
            self.assertLessEqual(difference, 8 * 2**-7)


BACKEND_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    from keras import ops
    from keras_perceiver.layers.chunked_attention import whole_attention
    from keras_perceiver.layers.recomputed_attention import recomputed_projection_attention
    from tests.layers.test_recomputed_projection_attention import DV, Projection

    backend = keras.backend.backend()
    data = dict(np.load(sys.argv[1]))
    query, inputs, mask, weights = (data[k] for k in ("query", "inputs", "mask", "weights"))
    projection = Projection()
    mask = ops.convert_to_tensor(mask)
    initial = [np.asarray(ops.convert_to_numpy(v)) for v in projection.variables]
    if backend == "jax":
        import jax

        def gradients(function):
            def loss(q, x, values):
                with keras.StatelessScope(state_mapping=list(zip(projection.variables, values))):
                    return (function(q, x) * weights).sum()

            return jax.grad(loss, argnums=(0, 1, 2))(query, inputs, initial)
    else:
        import torch

        def gradients(function):
            q, x = (torch.tensor(a, requires_grad=True) for a in (query, inputs))
            for variable in projection.variables:
                variable.value.grad = None
            (function(q, x) * torch.tensor(weights)).sum().backward()
            return q.grad, x.grad, [variable.value.grad for variable in projection.variables]

    def flat(result):
        q, x, variables = result
        return [np.asarray(ops.convert_to_numpy(a)) for a in (q, x, *variables)]

    expected = flat(gradients(lambda q, x: whole_attention(q, *projection(x), mask)))
    for key_chunk in (4, 7):
        actual = flat(gradients(lambda q, x: recomputed_projection_attention(
            q, x, projection, projection.variables, key_chunk, mask, value_width=DV)))
        for a, e in zip(actual, expected):
            difference = np.max(np.abs(a - e)) / np.max(np.abs(e))
            assert np.max(np.abs(e)) > 1e-3 and difference <= 1e-5, (backend, key_chunk, difference)
    print(backend, "ok")
    """
)


class OtherBackendsTest(TestCase):
    def test_jax_and_torch_gradients(self):
        query, inputs, weights = case()
        path = os.path.join(self.make_temp_dir(), "case.npz")
        np.savez(path, query=query, inputs=inputs, mask=masks()["padding"], weights=weights)
        for backend in ("jax", "torch"):
            result = run_on_backend(backend, BACKEND_SCRIPT, path)
            self.assertEqual(result.returncode, 0, msg=result.stderr[-3000:])
            self.assertIn(f"{backend} ok", result.stdout)
