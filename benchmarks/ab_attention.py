"""A/B of `PerceiverMultiHeadAttention.call` against its previous formulation, same layer and weights.

`previous_call` is the call before the projections went through
`multi_head_attention._project` (2-D MatMul + bias): each projection was the
`EinsumDense` layer call (TF `Einsum` op + separate bias add) and the dropout
layer was called at inference too. Both run on the same layer instance at the
language perceiver's three attention shapes, interleaved, eager / tf.function
/ XLA; the report gives wall and process CPU time (min and median) and the
max difference between the two outputs.

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/ab_attention.py --threads 1 --repeats 40
"""

import argparse
import os
import statistics
import time

CASES = {
    # name: (heads, qk, v, out, T, S, query width, input width, key mask)
    "self-attention 256x1280": (8, 256, 1280, 1280, 256, 256, 1280, 1280, False),
    "encoder 256 <- 2048x768": (8, 256, 1280, 1280, 256, 2048, 1280, 768, True),
    "decoder 2048x768 <- 256": (8, 256, 768, 768, 2048, 256, 768, 1280, False),
}


def previous_call(self, query, key_value, attention_mask=None, training=None):
    from keras import ops

    from keras_perceiver.layers.chunked_attention import masked_score

    q = self.query_dense(query) * ops.cast(self._scale, self.compute_dtype)
    k = self.key_dense(key_value)
    v = self.value_dense(key_value)
    scores = ops.cast(ops.einsum("bthd,bshd->bhts", q, k), "float32")
    if attention_mask is not None:
        mask = ops.cast(attention_mask, "bool")
        scores = ops.where(mask[:, None, :, :], scores, masked_score("float32"))
    probs = ops.softmax(scores, axis=-1)
    probs = self.dropout_layer(ops.cast(probs, self.compute_dtype), training=training)
    context = ops.einsum("bhts,bshd->bthd", probs, v)
    if attention_mask is not None:
        any_key = ops.any(mask, axis=-1, keepdims=True)
        context = context * ops.cast(any_key[..., None], context.dtype)
    return self.output_dense(context)


def parse_arguments(description, default_threads):
    """`--threads` (set on TensorFlow before anything runs) and `--repeats`."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    help_threads = "TF intra/inter-op threads (0: default)"
    parser.add_argument("--threads", type=int, default=default_threads, help=help_threads)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    return args


def main():
    args = parse_arguments(__doc__, default_threads=1)
    import numpy as np
    import tensorflow as tf

    from keras_perceiver.layers.multi_head_attention import PerceiverMultiHeadAttention

    calls = {"previous": previous_call, "current": PerceiverMultiHeadAttention.call}
    rng = np.random.default_rng(0)
    for case, (h, qk, v, out, t, s, e, c, masked) in CASES.items():
        layer = PerceiverMultiHeadAttention(num_heads=h, qk_channels=qk, v_channels=v, output_channels=out)
        x = tf.constant(rng.standard_normal((1, t, e)).astype("float32"))
        kv = tf.constant(rng.standard_normal((1, s, c)).astype("float32"))
        mask = tf.constant(np.ones((1, 1, s), bool)) if masked else None
        layer(x, kv)
        for w in layer.weights:
            w.assign(rng.standard_normal(w.shape).astype("float32") * 0.05)
        outputs = {name: np.asarray(call(layer, x, kv, mask)) for name, call in calls.items()}
        diff = float(np.max(np.abs(outputs["previous"] - outputs["current"])))
        scale = float(np.max(np.abs(outputs["current"])))
        print(f"{case}: max |previous - current| = {diff:.3g} (max |output| {scale:.3g})")
        time_case(layer, (x, kv, mask), calls, args.repeats)


def time_case(layer, inputs, calls, repeats):
    """Interleaved eager / tf.function / XLA timings of each call on `inputs`."""
    import numpy as np
    import tensorflow as tf

    fns = {}
    for name, call in calls.items():

        def run(*a, call=call):
            return call(layer, *a)

        graph = tf.function(run)
        xla = tf.function(run, jit_compile=True)
        fns[f"{name} eager"] = lambda run=run: np.asarray(run(*inputs))
        fns[f"{name} function"] = lambda g=graph: g(*inputs).numpy()
        fns[f"{name} xla"] = lambda g=xla: g(*inputs).numpy()
    for fn in fns.values():
        fn()
        fn()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            wall[k].append(time.perf_counter() - w0)
            cpu[k].append(time.process_time() - c0)
    for k in fns:
        print(
            f"  {k:18s} wall min {min(wall[k]) * 1e3:8.2f} med {statistics.median(wall[k]) * 1e3:8.2f} ms"
            f" | cpu min {min(cpu[k]) * 1e3:8.2f} med {statistics.median(cpu[k]) * 1e3:8.2f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
