"""The backend's fused attention kernel (`keras.ops.dot_product_attention`) where one exists.

On the JAX backend with a GPU, `keras.ops.dot_product_attention` runs cuDNN's
flash attention when the shapes and dtypes allow it (half precision, head
widths it supports) and XLA's attention otherwise, so the choice of kernel is
Keras'. The TensorFlow backend (and JAX on a CPU) has no fused kernel there:
`whole_attention` computes the same thing with its softmax in float32.
TPUs are left out: Keras' splash-attention path reads one example's mask for
the whole batch, which breaks per-example padding masks.

Source: `keras.ops.dot_product_attention` (keras/src/backend/jax/nn.py);
Dao et al., FlashAttention (arXiv 2205.14135).
"""

import functools

import keras
from keras import ops


@functools.cache
def has_fused_attention():
    """True on the JAX backend when its default device is a GPU (decided once per process)."""
    if keras.backend.backend() != "jax":
        return False
    import jax

    return jax.devices()[0].platform == "gpu"


def fused_attention(query, key, value, mask=None):
    """`whole_attention` through `keras.ops.dot_product_attention`; no dropout.

    Args:
        query: (B, T, H, d) queries, already scaled by 1/sqrt(d).
        key: (B, S, H, d) keys.
        value: (B, S, H, d) values (the kernels need value heads as wide as
            the key heads).
        mask: optional bool, broadcastable to (B, T, S), True where allowed.

    Returns:
        (B, T, H, d); rows whose keys are all masked are zeros (the
        kernels' value there is not specified; `PerceiverMultiHeadAttention`
        returns zeros for them).
    """
    context = ops.dot_product_attention(
        query, key, value, mask=None if mask is None else mask[:, None, :, :], scale=1.0
    )
    if mask is None:
        return context
    any_key = ops.any(mask, axis=-1)[:, :, None, None]  # (B, T, 1, 1)
    return ops.where(any_key, context, ops.zeros_like(context))
