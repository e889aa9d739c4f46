"""Chunked attention for training: a backward pass that recomputes each chunk instead of storing it.

Differentiating the chunked forms of `chunked_attention` through their loops
keeps every chunk's scores for the backward pass, so training memory is that
of the whole (B, H, T, S) attention again. `recomputed_attention` has its own
gradient (`keras.ops.custom_gradient`): the forward pass keeps only the
output and each query's softmax statistics (B, H, T, 2); the backward pass visits
the same chunks again, recomputes their probabilities
P = exp(Q K^T - max - log-sum) and accumulates

    dV = P^T dO,   dS = P * (dO V^T - rowsum(dO * O)),   dQ = dS K,   dK = dS^T Q,

so that its peak memory is one chunk's scores, as in the forward pass (the
backward pass of flash attention). The keys and values themselves, (B, S, H,
d), are kept: they are the inputs of the projections' gradients.

Source: Dao et al., FlashAttention (arXiv 2205.14135) algorithm 4 (backward
pass); Milakov & Gimelshein, arXiv 1805.02867 (online softmax).
"""

import keras
from keras import ops

from keras_perceiver.layers.chunked_attention import (
    clamp_chunk_size,
    count_chunks,
    initial_statistics,
    key_chunked_attention,
    masked_score,
    online_softmax_step,
    pad_axis,
    query_chunked_attention,
    whole_attention,
)


def _block_gradients(query, key, value, mask, statistics, d_output, delta, start, size, first_new=None):
    """Gradients from the keys [start, start + size) for every query of a block.

    query (B, T, H, d); key/value (B, S, H, d|d_v); mask float (B, T|1, S|1),
    nonzero where allowed; statistics (B, H, T, 2) (`whole_attention`'s),
    delta (B, H, T, 1) and d_output (B, H, T, d_v), float32. Keys before
    `first_new` (an earlier chunk's, visited again by the last chunk) give
    nothing, as in the forward pass. Returns
    float32 (dQ (B, T, H, d), dK (B, size, H, d), dV (B, size, H, d_v)).
    """
    batch, num_heads = ops.shape(query)[0], ops.shape(query)[2]
    key_chunk = ops.slice(key, (0, start, 0, 0), (batch, size, num_heads, key.shape[-1]))
    value_chunk = ops.slice(value, (0, start, 0, 0), (batch, size, num_heads, value.shape[-1]))
    scores = ops.cast(ops.einsum("bthd,bshd->bhts", query, key_chunk), "float32")
    if mask.shape[-1] != 1:
        mask = ops.slice(mask, (0, 0, start), (batch, ops.shape(mask)[1], size))
    allowed = mask[:, None, :, :] > 0
    scores = ops.where(allowed, scores, masked_score("float32"))
    if first_new is not None:
        fresh = ops.arange(size) + start >= first_new
        scores = ops.where(fresh[None, None, None, :], scores, float("-inf"))
    probs = ops.exp(scores - statistics[..., :1] - statistics[..., 1:])  # (B, H, T, size)
    d_value = ops.einsum("bhts,bhtd->bshd", probs, d_output)
    d_probs = ops.einsum("bhtd,bshd->bhts", d_output, ops.cast(value_chunk, "float32"))
    # Masked scores are constants: no gradient reaches Q and K through them (rows with every key masked).
    d_scores = ops.where(allowed, probs * (d_probs - delta), 0.0)
    d_query = ops.einsum("bhts,bshd->bthd", d_scores, ops.cast(key_chunk, "float32"))
    d_key = ops.einsum("bhts,bthd->bshd", d_scores, ops.cast(query, "float32"))
    return d_query, d_key, d_value


def _gradients_over_keys(query, key, value, mask, statistics, d_output, delta, key_chunk):
    """float32 (dQ, dK, dV) of one block of queries, the keys visited whole or `key_chunk` at a time.

    The chunks are independent (`ops.map`): each gives its keys' dK and dV and its share of dQ, summed
    after; nothing of size S is copied per chunk.
    """
    num_keys = ops.shape(key)[1]
    if key_chunk is None:
        return _block_gradients(query, key, value, mask, statistics, d_output, delta, 0, num_keys)
    key_chunk = clamp_chunk_size(key_chunk, key)
    num_chunks = count_chunks(num_keys, key_chunk)

    def chunk(index):
        first_new = index * key_chunk
        start = ops.minimum(first_new, num_keys - key_chunk)  # the last chunk ends at the last key
        return _block_gradients(
            query, key, value, mask, statistics, d_output, delta, start, key_chunk, first_new
        )

    d_query, d_key, d_value = ops.map(chunk, ops.arange(num_chunks))  # (n, B, T, H, d), (n, B, c, H, .)
    # The last chunk holds keys [S - c, S); its first keys were an earlier chunk's (their gradients: zero).
    fresh = num_keys - (num_chunks - 1) * key_chunk

    def assemble(stacked):
        batch, heads, width = ops.shape(stacked)[1], stacked.shape[3], stacked.shape[4]
        flat = ops.reshape(ops.transpose(stacked, (1, 0, 2, 3, 4)), (batch, -1, heads, width))
        full = (num_chunks - 1) * key_chunk
        return ops.concatenate([flat[:, :full], flat[:, full + key_chunk - fresh :]], axis=1)

    return ops.sum(d_query, axis=0), assemble(d_key), assemble(d_value)


def _gradients(query, key, value, mask, statistics, d_output, delta, query_chunk, key_chunk):
    """float32 (dQ, dK, dV), the queries answered whole or `query_chunk` at a time (`ops.map`: each chunk
    gives its queries' dQ and its share of dK and dV, summed after)."""
    if query_chunk is None:
        return _gradients_over_keys(query, key, value, mask, statistics, d_output, delta, key_chunk)
    num_queries = ops.shape(query)[1]
    num_chunks = count_chunks(num_queries, query_chunk)
    padding = num_chunks * query_chunk - num_queries
    # Padded queries have a zero output gradient: they add nothing to dK and dV.
    query = pad_axis(query, 1, padding)
    d_output, statistics, delta = (pad_axis(x, 2, padding) for x in (d_output, statistics, delta))
    per_query_mask = mask.shape[1] != 1
    if per_query_mask:
        mask = pad_axis(mask, 1, padding, value=1)

    def chunk(index):
        start = index * query_chunk

        def rows(x, axis):
            begin = [0] * len(x.shape)
            begin[axis] = start
            size = list(ops.shape(x))
            size[axis] = query_chunk
            return ops.slice(x, begin, size)

        return _gradients_over_keys(
            rows(query, 1),
            key,
            value,
            rows(mask, 1) if per_query_mask else mask,
            rows(statistics, 2),
            rows(d_output, 2),
            rows(delta, 2),
            key_chunk,
        )

    d_query, d_key, d_value = ops.map(chunk, ops.arange(num_chunks))  # (n, B, c, H, d), (n, B, S, H, .)
    batch, heads, width = ops.shape(d_query)[1], d_query.shape[3], d_query.shape[4]
    d_query = ops.reshape(ops.transpose(d_query, (1, 0, 2, 3, 4)), (batch, -1, heads, width))
    return d_query[:, :num_queries], ops.sum(d_key, axis=0), ops.sum(d_value, axis=0)


def recomputed_attention(query, key, value, mask=None, query_chunk=None, key_chunk=None):
    """`whole_attention` in chunks, differentiable with a backward pass that recomputes the chunks.

    Args:
        query: (B, T, H, d) queries, scaled by 1/sqrt(d).
        key: (B, S, H, d) keys.
        value: (B, S, H, d_v) values.
        mask: optional bool, broadcastable to (B, T, S), True where allowed
            (masked keys score -1e9, as in `whole_attention`).
        query_chunk: int or None, queries answered at a time (None: all).
        key_chunk: int or None, keys visited at a time (None: all).

    Returns:
        (B, T, H, d_v) in the query's dtype, equal to `whole_attention` to
        float32 round-off; its gradients equal those of `whole_attention`
        the same way, with peak memory of one chunk's scores (B, H,
        query_chunk or T, key_chunk or S) float32 in both passes.
    """
    # A float mask (1 allowed, 0 masked) is an input of the custom gradient like the others (its gradient: 0).
    mask = ops.ones((1, 1, 1), "float32") if mask is None else ops.cast(mask, "float32")

    @ops.custom_gradient
    def chunked(query, key, value, mask):
        bool_mask = mask > 0
        if query_chunk is not None:
            output, statistics = query_chunked_attention(
                query, key, value, query_chunk, bool_mask, key_chunk_size=key_chunk, return_statistics=True
            )
        elif key_chunk is not None:
            output, statistics = key_chunked_attention(
                query, key, value, key_chunk, bool_mask, return_statistics=True
            )
        else:
            output, statistics = whole_attention(query, key, value, bool_mask, return_statistics=True)

        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            d_output = ops.transpose(ops.cast(upstream, "float32"), (0, 2, 1, 3))  # (B, H, T, d_v)
            delta = ops.sum(
                d_output * ops.transpose(ops.cast(output, "float32"), (0, 2, 1, 3)), axis=-1, keepdims=True
            )
            d_query, d_key, d_value = _gradients(
                query, key, value, mask, statistics, d_output, delta, query_chunk, key_chunk
            )
            return (
                ops.cast(d_query, query.dtype),
                ops.cast(d_key, key.dtype),
                ops.cast(d_value, value.dtype),
                ops.zeros_like(mask),
            )

        return output, grad

    return chunked(query, key, value, mask)


def recomputed_projection_attention(
    query, inputs, project, variables, key_chunk, mask=None, value_width=None
):
    """Key-chunked attention over inputs whose keys and values are recomputed, chunk by chunk, when training.

    The encoder's cross-attention reads M inputs (B, M, C) and projects them to
    keys and values (B, M, H, d) that are far wider than the inputs (the
    benchmark's 64 channels give 2 x 512). `recomputed_attention` keeps those
    keys and values for its backward pass; here nothing of size M is kept but
    the inputs themselves (padded and split into chunks): each chunk of
    `key_chunk` inputs is a `keras.remat` function of (queries, input chunk,
    projection weights), so that the backward pass recomputes the
    chunk's input LayerNorm, keys, values and scores from the input chunk and
    differentiates them there. The chunks are independent (`keras.ops.map`:
    a loop of known length, which XLA compiles): each gives its own softmax
    statistics, merged after as one softmax (the online softmax's rescaling,
    done once). Peak memory: one chunk's keys, values and scores plus the
    statistics of every chunk, (n, B, H, T, d_v + 2) float32.

    Args:
        query: (B, T, H, d) queries, scaled by 1/sqrt(d).
        inputs: (B, S, C) unprojected inputs.
        project: callable, inputs (B, s, C) -> (keys (B, s, H, d), values
            (B, s, H, d_v)), reading no variable outside `variables`.
        variables: the Keras variables `project` reads (its LayerNorm and
            projections). Their values are arguments of each rematerialized
            step (through `keras.StatelessScope`), so that every backend
            differentiates them there.
        key_chunk: int, inputs per chunk (cut to S when S is smaller, also
            when S is known only at run time).
        mask: optional bool, broadcastable to (B, T, S), True where allowed
            (masked keys score -1e9, as in `whole_attention`).
        value_width: int, d_v.

    Returns:
        (B, T, H, d_v) in the query's dtype, equal to `whole_attention` of
        the projected inputs to float32 round-off, and so are its gradients
        with respect to the queries, the inputs and `variables`.

    Source: Chen et al., Training Deep Nets with Sublinear Memory Cost (arXiv
    1604.06174) for the recomputation; the online softmax as in
    `chunked_attention`.
    """
    variables = list(variables)
    # Tensors, not the variables (`convert_to_tensor` of a variable returns it in eager TensorFlow, whose
    # `recompute_grad` would then count its gradient twice: as an argument and as a variable read).
    values = [ops.copy(variable) for variable in variables]
    batch, num_queries, num_heads = ops.shape(query)[0], ops.shape(query)[1], ops.shape(query)[2]
    num_keys = ops.shape(inputs)[1]
    key_chunk = clamp_chunk_size(key_chunk, inputs)
    num_chunks = count_chunks(num_keys, key_chunk)
    padding = num_chunks * key_chunk - num_keys

    def split(x, axis):
        """(..., S at `axis`, ...) -> (n, ..., key_chunk, ...): one slice per chunk, padded with zeros."""
        x = pad_axis(x, axis, padding)
        shape = list(ops.shape(x))
        x = ops.reshape(x, shape[:axis] + [num_chunks, key_chunk] + shape[axis + 1 :])
        return ops.moveaxis(x, axis, 0)

    # 1 for the inputs, 0 for the padding (which the chunk gives a score of -inf).
    chunks = {"inputs": split(inputs, 1), "fresh": split(ops.ones((num_keys,), "float32"), 0)}
    # A float mask (1 allowed), an argument of each chunk's function like the rest; per key, split too.
    mask = ops.ones((1, 1, 1), "float32") if mask is None else ops.cast(mask, "float32")
    if mask.shape[-1] != 1:
        chunks["mask"] = split(mask, 2)

    def chunk_statistics(query, input_chunk, fresh, mask, *weights):
        with keras.StatelessScope(state_mapping=list(zip(variables, weights))):
            key, value = project(input_chunk)
        initial = initial_statistics(batch, num_heads, num_queries, value_width)
        return online_softmax_step(initial, query, key, value, mask > 0, fresh > 0)

    rematerialized = keras.remat(chunk_statistics)

    def one_chunk(chunk):
        chunk_mask = chunk.get("mask", mask)
        return rematerialized(query, chunk["inputs"], chunk["fresh"], chunk_mask, *values)

    # Each chunk's (maximum, normalizer, weighted values), (n, B, H, T, 1 | 1 | d_v), merged as one softmax.
    maxima, normalizers, weighted = ops.map(one_chunk, chunks)
    running_max = ops.max(maxima, axis=0)
    correction = ops.exp(maxima - running_max)
    normalizer = ops.sum(normalizers * correction, axis=0)
    weighted = ops.sum(weighted * correction, axis=0)
    return ops.transpose(ops.cast(weighted / normalizer, query.dtype), (0, 2, 1, 3))
