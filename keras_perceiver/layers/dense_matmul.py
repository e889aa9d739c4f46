"""A `Dense` or `EinsumDense` layer's product as one 2-D matmul plus bias: the form TensorFlow fuses."""

import math

from keras import ops


def dense_matmul(layer, x, num_contracted=1, activation=None):
    """`activation(layer(x))` for a `Dense` or `EinsumDense` contracting the last `num_contracted` axes of x.

    The same products and sums as the layer's call, computed as one 2-D
    matmul (N, in) @ (in, out) plus bias, N the product of x's other axes,
    then `activation`. TensorFlow's oneDNN graph rewrite runs
    MatMul + BiasAdd (+ GELU) as one fused kernel, while a `Dense` on a
    (B, T, C) input runs a `tensordot` whose reshape keeps its bias add and
    activation apart, and the `Einsum` op of an `EinsumDense` runs with its
    bias add separate. Measured in benchmarks/README.md ("What was
    tried"): a 256 x 1280 attention projection 7.05 -> 5.84 ms in float32
    (`benchmarks/ab_attention.py`), and the language perceiver's `MLPBlock`
    (256 x 1280 -> 1280 -> 1280, exact GELU) 6.49 -> 5.94 ms in bfloat16
    (`benchmarks/ab_mlp.py`).

    Args:
        layer: a built `keras.layers.Dense` or `keras.layers.EinsumDense`
            without activation, whose kernel is (in..., out...) with
            `num_contracted` input axes (the layouts of `Dense` and of
            `PerceiverMultiHeadAttention`'s projections). A quantized layer
            keeps its own call. LoRA is included (through `layer.kernel`).
        x: (..., in...) tensor: its last `num_contracted` axes are contracted.
        num_contracted: int, number of contracted axes. Defaults to 1.
        activation: optional callable applied to the result.

    Returns:
        (..., out...) tensor: x's leading axes, then the kernel's output axes.
    """
    if getattr(layer, "quantization_mode", None) is not None:
        y = layer(x)
        return y if activation is None else activation(y)
    kernel = layer.kernel
    in_shape = tuple(kernel.shape[:num_contracted])
    out_shape = tuple(kernel.shape[num_contracted:])
    in_size, out_size = math.prod(in_shape), math.prod(out_shape)
    leading = ops.shape(x)[: len(x.shape) - num_contracted]
    y = ops.matmul(ops.reshape(x, (-1, in_size)), ops.reshape(kernel, (in_size, out_size)))
    if layer.bias is not None:
        y = ops.add(y, ops.reshape(layer.bias, (out_size,)))
    if activation is not None:
        y = activation(y)
    return ops.reshape(y, tuple(leading) + out_shape)
