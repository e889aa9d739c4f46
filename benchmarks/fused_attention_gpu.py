"""Fused and recomputed attention on the JAX backend: equality with the whole attention, and speed.

On a GPU (a lent accelerator): `has_fused_attention()` is True, Keras says
whether cuDNN flash attention can run on each dtype, the fused path equals
the whole attention (with zeros for rows without keys) and is timed against
it, a `PerceiverMultiHeadAttention` takes the fused path, and the gradients of
`recomputed_attention` equal the whole attention's. On a CPU it runs small
shapes (no fused kernel there).

    KERAS_BACKEND=jax python benchmarks/fused_attention_gpu.py
"""

import time
from unittest import mock

import jax
import numpy as np
from keras import ops
from keras.src.backend.jax.nn import _can_use_flash_attention

from keras_perceiver.layers import attention_dispatch
from keras_perceiver.layers.chunked_attention import whole_attention
from keras_perceiver.layers.fused_attention import fused_attention, has_fused_attention
from keras_perceiver.layers.multi_head_attention import PerceiverMultiHeadAttention
from keras_perceiver.layers.recomputed_attention import recomputed_attention

ON_GPU = jax.devices()[0].platform == "gpu"


def relative(actual, expected):
    return float(np.max(np.abs(np.asarray(actual) - expected)) / np.max(np.abs(expected)))


def milliseconds(function, *args, repeats=20):
    function(*args).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        out = function(*args)
    out.block_until_ready()
    return (time.perf_counter() - start) / repeats * 1e3


def compare_fused(rng):
    batch, queries, keys, heads, width = (4, 256, 8192, 8, 64) if ON_GPU else (3, 16, 512, 2, 8)
    whole = jax.jit(whole_attention)
    fused = jax.jit(fused_attention)
    for dtype in ("float32", "bfloat16", "float16") if ON_GPU else ("float32", "bfloat16"):
        q = ops.cast(rng.normal(size=(batch, queries, heads, width)) / 8, dtype)
        k = ops.cast(rng.normal(size=(batch, keys, heads, width)), dtype)
        v = ops.cast(rng.normal(size=(batch, keys, heads, width)), dtype)
        padding = np.ones((batch, 1, keys), bool)
        padding[1, :, keys // 3 :] = False
        padding[2] = False
        print(dtype, "cudnn flash usable:", _can_use_flash_attention(q, k, v, None))
        for name, mask in (("no mask", None), ("padding", ops.convert_to_tensor(padding))):
            expected = np.asarray(ops.cast(whole(q, k, v, mask), "float32"))
            if mask is not None:
                expected = np.where(padding.any(-1)[:, :, None, None], expected, 0)
            actual = ops.cast(fused(q, k, v, mask), "float32")
            times = [milliseconds(function, q, k, v, mask) for function in (whole, fused)]
            print(
                f"  {name}: max |fused - whole| / max |whole| = {relative(actual, expected):.2e}; "
                f"whole {times[0]:.3f} ms, fused {times[1]:.3f} ms"
            )


def main():
    print("devices", jax.devices(), "has_fused_attention", has_fused_attention())
    rng = np.random.default_rng(0)
    compare_fused(rng)
    layer = PerceiverMultiHeadAttention(4, 64, 64)
    query = rng.normal(size=(2, 16, 64)).astype("float32")
    inputs = rng.normal(size=(2, 300, 32)).astype("float32")
    layer(query, inputs)
    spy = mock.patch.object(attention_dispatch, "fused_attention", wraps=attention_dispatch.fused_attention)
    with spy as calls:
        layer(query, inputs)
    print("layer used fused_attention:", calls.call_count == 1)
    shapes = ((2, 64, 4, 16), (2, 5000, 4, 16), (2, 5000, 4, 24))
    q, k, v = (rng.normal(size=shape).astype("float32") for shape in shapes)
    weights = rng.normal(size=(2, 64, 4, 24)).astype("float32")
    mask = np.ones((2, 1, 5000), bool)
    mask[1, :, 1234:] = False

    def loss(function):
        return jax.jit(jax.grad(lambda q, k, v: (function(q, k, v) * weights).sum(), (0, 1, 2)))

    expected = loss(lambda q, k, v: whole_attention(q, k, v, mask))(q, k, v)
    actual = loss(lambda q, k, v: recomputed_attention(q, k, v, mask, None, 512))(q, k, v)
    print("recomputed vs whole gradients:", [relative(a, np.asarray(e)) for a, e in zip(actual, expected)])


if __name__ == "__main__":
    main()
