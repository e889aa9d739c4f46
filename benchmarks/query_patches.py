"""The language models' 17-byte patch projection: a `Conv1D` against `CentredPatches` + `QueryPatches`.

`QueryPatches` became an `EinsumDense` over centred patches (B, L, P, E) so
that `keras.Model.quantize` reaches its kernel (Keras does not quantize
convolutions). This times one XLA-compiled training step (forward, and the
gradients of sum(y^2) with respect to the inputs and the weights) of both
formulations at the tagging tasks' shape, same kernel layout (P, E, F), and
prints the largest output difference.

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/query_patches.py --repeats 10
"""

import argparse
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--patch", type=int, default=17)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from keras_perceiver.layers.query_patches import CentredPatches, QueryPatches

    inputs = tf.random.normal((args.batch, args.length, args.width), seed=0)
    mask = tf.ones((args.batch, args.length), bool)
    conv = keras.layers.Conv1D(args.width, args.patch, padding="same")
    conv.build((None, None, args.width))
    window, projection = CentredPatches(args.patch), QueryPatches(args.width)
    projection.build((None, None, args.patch, args.width))
    projection.set_weights(conv.get_weights())
    cases = {
        "Conv1D": (lambda x: conv(x * tf.cast(mask, x.dtype)[..., None]), conv.trainable_variables),
        "CentredPatches + QueryPatches": (
            lambda x: projection(window(x, padding_mask=mask)),
            projection.weights,
        ),
    }
    outputs = [np.asarray(forward(inputs)) for forward, _ in cases.values()]
    print(f"max |difference| of the outputs: {np.abs(outputs[0] - outputs[1]).max():.2e}")
    for name, (forward, variables) in cases.items():

        @tf.function(jit_compile=True)
        def step(x, forward=forward, variables=variables):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = forward(x)
                loss = tf.reduce_sum(y * y)
            return tape.gradient(loss, [x, *variables])

        step(inputs)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            step(inputs)
            times.append(time.perf_counter() - start)
        median = sorted(times)[len(times) // 2]
        print(f"{name}: {1000 * min(times):.1f} ms (min), {1000 * median:.1f} ms (median)")


if __name__ == "__main__":
    main()
