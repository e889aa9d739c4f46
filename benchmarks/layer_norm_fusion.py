"""Can TensorFlow's oneDNN rewrite fuse our LayerNorms? Keras 3's graph against the Keras 2 form it matches.

TensorFlow's grappler remapper replaces one LayerNorm pattern with the fused
`_MklLayerNorm` kernel: Keras 2's `LayerNormalization` as Reshape ->
`FusedBatchNormV3` (training mode, scale and offset made by `Fill`) ->
Reshape -> Mul(gamma) -> AddV2(beta), on 2-D or 3-D inputs. Keras 3's
`LayerNormalization` (what every Perceiver block uses) is not that pattern.
This script prints which ops the rewritten graph runs (a v1 session's
partition graphs) for the Keras 2 form with static and with unknown shapes
(constant folding turns a `Fill` of known size into a constant, and the
pattern no longer matches), and times one LayerNorm of the language
perceiver's latent shape (1, 256, 1280) in `tf.function` both ways, float32
and bfloat16 (min of 5 x 200 calls; each time includes one call's dispatch,
measured alone as "identity").

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/layer_norm_fusion.py
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

CHANNELS = 1280
SHAPE = (1, 256, CHANNELS)


def keras2_layer_norm(x, gamma, beta, epsilon=1e-5):
    """The Keras 2 `LayerNormalization` graph that the remapper fuses into `_MklLayerNorm`."""
    shape = tf.shape(x)
    rows = shape[0] * shape[1]
    y = tf.reshape(x, tf.stack([1, rows, shape[2], 1]))
    ones = tf.fill(tf.expand_dims(rows, 0), 1.0)
    zeros = tf.fill(tf.expand_dims(rows, 0), 0.0)
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(y, ones, zeros, epsilon=epsilon, data_format="NCHW")
    return tf.reshape(y, shape) * tf.cast(gamma, x.dtype) + tf.cast(beta, x.dtype)


def rewritten_ops(dtype, static):
    """The op types the rewritten graph runs for `keras2_layer_norm`."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(dtype, SHAPE if static else (None, None, CHANNELS))
        gamma, beta = tf.ones((CHANNELS,)), tf.zeros((CHANNELS,))
        output = tf.identity(keras2_layer_norm(x, gamma, beta))
        with tf.compat.v1.Session() as session:
            options = tf.compat.v1.RunOptions(output_partition_graphs=True)
            metadata = tf.compat.v1.RunMetadata()
            feed = {x: np.zeros(SHAPE, dtype.as_numpy_dtype)}
            session.run(output, feed, options=options, run_metadata=metadata)
    return sorted({node.op for graph_def in metadata.partition_graphs for node in graph_def.node})


def best_time(function, argument):
    function(argument)
    for _ in range(20):
        function(argument)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(200):
            function(argument)
        times.append((time.perf_counter() - start) / 200)
    return min(times)


def main():
    for dtype in (tf.float32, tf.bfloat16):
        for static in (True, False):
            kind = "static" if static else "unknown"
            print(f"Keras 2 form, {dtype.name}, {kind} shape: {rewritten_ops(dtype, static)}")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=SHAPE).astype("float32"))
    gamma, beta = (tf.constant(rng.normal(size=(CHANNELS,)).astype("float32")) for _ in range(2))
    reference = None
    for dtype in ("float32", "bfloat16"):
        layer = keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype)
        layer.build(SHAPE)
        layer.set_weights([gamma.numpy(), beta.numpy()])
        unknown = tf.TensorSpec((None, None, CHANNELS), dtype)
        cases = {
            "Keras 3 LayerNormalization": tf.function(layer, input_signature=[unknown]),
            "Keras 2 form": tf.function(
                lambda x: keras2_layer_norm(x, gamma, beta), input_signature=[unknown]
            ),
            "identity (the call's dispatch)": tf.function(tf.identity, input_signature=[unknown]),
        }
        argument = tf.cast(x, dtype)
        for name, function in cases.items():
            output = tf.cast(function(argument), "float32").numpy()
            if reference is None:
                reference = output
            difference = float(np.max(np.abs(output - reference))) if "identity" not in name else float("nan")
            milliseconds = best_time(function, argument) * 1e3
            print(f"{dtype}, unknown shape: {name:32s} {milliseconds:.3f} ms  max |diff| {difference:.3g}")


if __name__ == "__main__":
    main()
