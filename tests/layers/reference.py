"""Independent numpy implementations of the Perceiver blocks, from the README's reference numerics.

They read a built layer's weights and recompute its output with plain numpy, so
that the layer tests compare against the formula rather than against numbers
copied from the code under test.
"""

import math

import numpy as np

_erf = np.vectorize(math.erf)


def randomize_weights(layer, seed=0, scale=0.3):
    """Give every weight of a built layer random values (biases and LayerNorm included)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=scale, size=w.shape).astype("float32") for w in layer.get_weights()])


def gelu(x, approximate=False):
    if approximate:
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x, layer_norm_layer, epsilon=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    gamma = np.asarray(layer_norm_layer.gamma)
    beta = np.asarray(layer_norm_layer.beta)
    return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


def _einsum_dense(equation, x, dense):
    return np.einsum(equation, x, np.asarray(dense.kernel)) + np.asarray(dense.bias)


def attention(layer, query, key_value, attention_mask=None):
    """`PerceiverMultiHeadAttention`: per-head scaled dot product, masked rows with no key give zeros."""
    query = np.asarray(query, "float64")
    key_value = np.asarray(key_value, "float64")
    q = _einsum_dense("btc,chd->bthd", query, layer.query_dense)
    k = _einsum_dense("bsc,chd->bshd", key_value, layer.key_dense)
    v = _einsum_dense("bsc,chd->bshd", key_value, layer.value_dense)
    head_dim = layer.qk_channels // layer.num_heads
    scores = np.einsum("bthd,bshd->bhts", q, k) / math.sqrt(head_dim)
    batch, num_queries, num_keys = query.shape[0], query.shape[1], key_value.shape[1]
    if attention_mask is None:
        mask = np.ones((batch, num_queries, num_keys), bool)
    else:
        mask = np.broadcast_to(np.asarray(attention_mask, bool), (batch, num_queries, num_keys))
    mask = mask[:, None]  # (B, 1, T, S)
    scores = np.where(mask, scores, -np.inf)
    row_max = np.max(np.where(mask, scores, -1e300), axis=-1, keepdims=True)
    exp = np.where(mask, np.exp(scores - row_max), 0.0)
    denominator = exp.sum(axis=-1, keepdims=True)
    probs = np.divide(exp, denominator, out=np.zeros_like(exp), where=denominator > 0)
    context = np.einsum("bhts,bshd->bthd", probs, v)
    return _einsum_dense("bthd,hdo->bto", context, layer.output_dense)


def squared_relu(x):
    return np.maximum(x, 0.0) ** 2


def mlp(layer, x):
    """`MLPBlock`: x + Dense(Act(Dense(LN(x)))), Act GELU (exact or tanh) or squared ReLU."""
    x = np.asarray(x, "float64")
    h = layer_norm(x, layer.layer_norm, layer.layer_norm_epsilon)
    h = h @ np.asarray(layer.dense_1.kernel) + np.asarray(layer.dense_1.bias)
    if layer.activation == "squared_relu":
        h = squared_relu(h)
    else:
        h = gelu(h, approximate=layer.activation == "gelu_approximate")
    h = h @ np.asarray(layer.dense_2.kernel) + np.asarray(layer.dense_2.bias)
    return x + h


def cross_attention(layer, query, inputs, attention_mask=None):
    """`CrossAttention`: [q +] Attn(LN_q(q), LN_kv(kv)), then the residual MLP."""
    query = np.asarray(query, "float64")
    attended = attention(
        layer.attention,
        layer_norm(query, layer.query_norm, layer.layer_norm_epsilon),
        layer_norm(np.asarray(inputs, "float64"), layer.inputs_norm, layer.layer_norm_epsilon),
        attention_mask,
    )
    x = query + attended if layer.use_query_residual else attended
    return mlp(layer.mlp, x)


def self_attention(layer, x, attention_mask=None):
    """`SelfAttention`: x + Attn(LN(x), LN(x)), then the residual MLP."""
    x = np.asarray(x, "float64")
    normed = layer_norm(x, layer.layer_norm, layer.layer_norm_epsilon)
    return mlp(layer.mlp, x + attention(layer.attention, normed, normed, attention_mask))


def grid_positions(index_dims):
    """Row-major grid of positions, each axis linspace(-1, 1, n): (prod(index_dims), d)."""
    points = []
    for index in np.ndindex(*index_dims):
        points.append([-1.0 + 2.0 * i / (n - 1) if n > 1 else -1.0 for i, n in zip(index, index_dims)])
    return np.array(points, "float64")


def fourier_reference(positions, num_bands, max_resolution, concat_pos=True, sine_only=False):
    """README reference numerics, one channel at a time: [pos_1..pos_d, sin axis-major, cos axis-major]."""
    positions = np.asarray(positions, "float64")
    channels = []
    if concat_pos:
        channels += [positions[..., axis] for axis in range(positions.shape[-1])]
    phases = ("sin",) if sine_only else ("sin", "cos")
    for phase in phases:
        for axis, resolution in enumerate(max_resolution):
            for band in range(num_bands):
                freq = 1.0 if num_bands == 1 else 1.0 + band * (resolution / 2.0 - 1.0) / (num_bands - 1)
                value = math.pi * freq * positions[..., axis]
                channels.append(np.sin(value) if phase == "sin" else np.cos(value))
    return np.stack(channels, axis=-1)
