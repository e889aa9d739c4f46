"""A/B of `MLPBlock.call` against its previous formulation, same layer and weights, per precision.

`previous_call` is the call before the Dense layers went through
`dense_matmul` (2-D MatMul + BiasAdd + activation, which TensorFlow's oneDNN
rewrite fuses into one kernel): each Dense was the layer call (a `tensordot`
whose reshapes keep the bias add and the GELU apart). Both run on the same
layer at the language perceiver's latent shape (256 x 1280, widening factor
1, exact GELU) and its decoder's (2048 x 768), in float32, bfloat16 (weights
stored in bfloat16) and mixed_bfloat16, interleaved (`ab_attention.time_case`);
the report gives wall and process CPU time (min and median) and the max
difference between the two outputs.

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/ab_mlp.py --threads 0 --repeats 20
"""

from benchmarks.ab_attention import parse_arguments, time_case

CASES = {"latent MLP 256x1280": (256, 1280), "decoder MLP 2048x768": (2048, 768)}
POLICIES = ("float32", "bfloat16", "mixed_bfloat16")


def previous_call(self, x, training=None):
    h = self.dense_2(self._act(self.dense_1(self.layer_norm(x))))
    h = self.dropout_layer(h, training=training)
    return x + h


def previous_layer_class():
    """`MLPBlock` with the previous call: called through `__call__`, so that both run under the layer's
    autocast (mixed_bfloat16 casts the float32 kernels for the layer's own matmuls)."""
    from keras_perceiver.layers.mlp_block import MLPBlock

    return type("PreviousMLPBlock", (MLPBlock,), {"call": previous_call})


def main():
    args = parse_arguments(__doc__, default_threads=0)
    import numpy as np
    import tensorflow as tf

    from keras_perceiver.layers.mlp_block import MLPBlock

    previous_class = previous_layer_class()
    for case, (length, channels) in CASES.items():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, length, channels)).astype("float32")
        weights = None
        for policy in POLICIES:
            layers = {"previous": previous_class(widening_factor=1, dtype=policy)}
            layers["current"] = MLPBlock(widening_factor=1, dtype=policy)
            inputs = tf.constant(x, dtype=layers["current"].compute_dtype)
            for layer in layers.values():
                layer(inputs)
                if weights is None:
                    weights = [rng.standard_normal(w.shape).astype("float32") * 0.05 for w in layer.weights]
                layer.set_weights(weights)
            calls = {name: lambda _, x, layer=layer: layer(x) for name, layer in layers.items()}
            outputs = {}
            for name, call in calls.items():
                outputs[name] = tf.cast(tf.function(call)(layer, inputs), "float32").numpy()
            diff = float(np.max(np.abs(outputs["previous"] - outputs["current"])))
            scale = float(np.max(np.abs(outputs["current"])))
            print(f"{case}, {policy}: max |previous - current| = {diff:.3g} (max |output| {scale:.3g})")
            time_case(None, (inputs,), calls, args.repeats)


if __name__ == "__main__":
    main()
