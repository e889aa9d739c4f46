"""Scaled dot-product attention over projected heads, whole or in chunks with a running (online) softmax.

The Perceiver's cross-attentions read very many keys (the encoder: M inputs)
or answer very many queries (the decoder: O outputs). The whole attention
materializes scores (B, H, T, S); the chunked forms never do:

- key chunks: the keys and values are visited `chunk_size` at a time, and a
  running maximum, normalizer and weighted sum of the values (the online
  softmax of Milakov & Gimelshein 2018, as in flash attention) give the same
  result as one softmax over all keys; peak memory (B, H, T, chunk_size);
- query chunks: the queries are answered `chunk_size` at a time (each with all
  keys); peak memory (B, H, chunk_size, S).

Every form takes a query scaled by 1/sqrt(head width) and applies DeepMind's
masking: masked keys get a score of -1e9 (rows with every key masked then
average uniformly; `PerceiverMultiHeadAttention` zeroes them). `keras.ops`
only: the loops are `keras.ops.fori_loop` (a `tf.while_loop` on TensorFlow, a
`lax.fori_loop` on JAX).

Source: Perceiver IO (arXiv 2107.14795) appendix; DeepMind `perceiver.py`
`attend`; online softmax: Milakov & Gimelshein, arXiv 1805.02867.
"""

from keras import ops

MASKED_SCORE = -1e9
MASKED_SCORE_FLOAT16 = -1e4
# Scores per head and example above which attention is chunked by default: 4M float32 values = 16 MB.
AUTO_CHUNK_SCORES = 2**22
MIN_AUTO_CHUNK = 1024


def masked_score(dtype):
    """The score given to masked keys: -1e9 (-1e4 in float16, whose range ends at 65504)."""
    return MASKED_SCORE_FLOAT16 if dtype == "float16" else MASKED_SCORE


def resolve_chunk_sizes(num_queries, num_keys, attention_chunk_size):
    """Which axis to chunk, as (query_chunk, key_chunk); None where that axis is not chunked.

    Args:
        num_queries: int or None, T (None: not known statically).
        num_keys: int or None, S.
        attention_chunk_size: None (automatic: chunk the longer axis when T x S
            is known and above `AUTO_CHUNK_SCORES`), 0 (never chunk), or a
            positive int (chunk the keys when S may exceed it, and the queries
            when T may exceed it).
    """
    if attention_chunk_size == 0:
        return None, None
    if attention_chunk_size is None:
        if num_queries is None or num_keys is None or num_queries * num_keys <= AUTO_CHUNK_SCORES:
            return None, None
        if num_keys >= num_queries:
            return None, max(MIN_AUTO_CHUNK, AUTO_CHUNK_SCORES // num_queries)
        return max(MIN_AUTO_CHUNK, AUTO_CHUNK_SCORES // num_keys), None
    query_chunk = attention_chunk_size if num_queries is None or num_queries > attention_chunk_size else None
    key_chunk = attention_chunk_size if num_keys is None or num_keys > attention_chunk_size else None
    return query_chunk, key_chunk


def whole_attention(query, key, value, mask=None, dropout=None, return_statistics=False):
    """Attention of (B, T, H, d) queries over (B, S, H, d) keys -> (B, T, H, d_v); scores (B, H, T, S).

    `mask`: optional bool, broadcastable to (B, T, S), True where allowed.
    `dropout`: optional callable applied to the probabilities (training).
    `return_statistics`: also return each row's softmax statistics, float32
    (B, H, T, 2): the largest score m and log(sum(exp(score - m))) (what
    `recomputed_attention`'s backward pass needs; kept apart, as m + log-sum
    would lose the log-sum next to the -1e9 of a row whose keys are all
    masked).
    Softmax in float32, the rest in the query's dtype.
    """
    scores = ops.cast(ops.einsum("bthd,bshd->bhts", query, key), "float32")
    if mask is not None:
        scores = ops.where(mask[:, None, :, :], scores, masked_score("float32"))
    probs = ops.cast(ops.softmax(scores, axis=-1), query.dtype)
    if dropout is not None:
        probs = dropout(probs)
    context = ops.einsum("bhts,bshd->bthd", probs, value)
    if return_statistics:
        row_max = ops.max(scores, axis=-1, keepdims=True)
        log_sum = ops.log(ops.sum(ops.exp(scores - row_max), axis=-1, keepdims=True))
        return context, ops.concatenate([row_max, log_sum], axis=-1)
    return context


def pad_axis(x, axis, amount, value=0):
    widths = [[0, 0] for _ in range(len(x.shape))]
    widths[axis][1] = amount
    return ops.pad(x, widths, constant_values=value)


def clamp_chunk_size(chunk_size, x, axis=1):
    """`chunk_size` cut to the size of `x` along `axis`: an int when that size is known when the graph is
    built, else a scalar tensor (TensorFlow slices and reshapes with it; JAX always knows the size)."""
    if x.shape[axis] is not None:
        return min(chunk_size, x.shape[axis])
    return ops.minimum(chunk_size, ops.shape(x)[axis])


def count_chunks(size, chunk_size):
    """Chunks of `chunk_size` that cover `size` (the last one may be partial); ints or tensors."""
    return (size + chunk_size - 1) // chunk_size


def initial_statistics(batch, num_heads, num_queries, value_width):
    """The online softmax's start: running maximum -inf (B, H, T, 1), normalizer 0 (B, H, T, 1) and
    weighted sum of the values 0 (B, H, T, d_v), float32."""
    return (
        ops.full((batch, num_heads, num_queries, 1), float("-inf"), dtype="float32"),
        ops.zeros((batch, num_heads, num_queries, 1), dtype="float32"),
        ops.zeros((batch, num_heads, num_queries, value_width), dtype="float32"),
    )


def online_softmax_step(statistics, query, key, value, mask=None, fresh=None):
    """One chunk of the online softmax: the statistics updated with keys (B, c, H, d), values (B, c, H, d_v).

    `statistics`: (running maximum, normalizer, weighted sum), as made by
    `initial_statistics`. `mask`: optional bool broadcastable to (B, T, c),
    True where allowed (masked keys score -1e9); `fresh`: optional bool (c,),
    False for keys that must not count (already visited, or padding: score
    -inf). The weighted values are summed in the query's dtype, the rest in
    float32.
    """
    running_max, normalizer, weighted = statistics
    scores = ops.cast(ops.einsum("bthd,bshd->bhts", query, key), "float32")
    if mask is not None:
        scores = ops.where(mask[:, None, :, :], scores, masked_score("float32"))
    if fresh is not None:
        scores = ops.where(fresh[None, None, None, :], scores, float("-inf"))
    new_max = ops.maximum(running_max, ops.max(scores, axis=-1, keepdims=True))
    correction = ops.exp(running_max - new_max)
    exponentials = ops.exp(scores - new_max)
    normalizer = normalizer * correction + ops.sum(exponentials, axis=-1, keepdims=True)
    update = ops.einsum("bhts,bshd->bhtd", ops.cast(exponentials, query.dtype), value)
    return new_max, normalizer, weighted * correction + ops.cast(update, "float32")


def key_chunked_attention(
    query, key, value, chunk_size, mask=None, project=None, value_width=None, return_statistics=False
):
    """`whole_attention` with the keys visited `chunk_size` at a time (online softmax); no dropout.

    Peak memory of the scores: (B, H, T, chunk_size) float32. Nothing is
    padded or copied: when S is not a multiple of `chunk_size` the last chunk
    is the last `chunk_size` keys, and its keys already visited get a score of
    -inf (they count once); masked keys get -1e9 (as in `whole_attention`).
    A `chunk_size` above S is cut to S.

    With `project`, `key` holds the unprojected inputs (B, S, C), `value` is
    None and `value_width` is d_v: each chunk's keys and values are
    `project(inputs_chunk)` -> ((B, c, H, d), (B, c, H, d_v)), so that the
    projections of all S inputs never exist at once either.
    `return_statistics` as in `whole_attention`.
    """
    batch, num_queries, num_heads = ops.shape(query)[0], ops.shape(query)[1], ops.shape(query)[2]
    num_keys = ops.shape(key)[1]
    chunk_size = clamp_chunk_size(chunk_size, key)  # at most S keys per chunk
    num_chunks = count_chunks(num_keys, chunk_size)
    per_key_mask = mask is not None and mask.shape[-1] != 1
    if project is None:
        key_width, value_width = key.shape[-1], value.shape[-1]
    else:
        input_width = key.shape[-1]
    dtype = query.dtype

    def chunk_keys_and_values(start):
        if project is not None:
            return project(ops.slice(key, (0, start, 0), (batch, chunk_size, input_width)))
        return (
            ops.slice(key, (0, start, 0, 0), (batch, chunk_size, num_heads, key_width)),
            ops.slice(value, (0, start, 0, 0), (batch, chunk_size, num_heads, value_width)),
        )

    def step(index, carry):
        first_new = index * chunk_size
        start = ops.minimum(first_new, num_keys - chunk_size)  # the last chunk ends at the last key
        key_chunk, value_chunk = chunk_keys_and_values(start)
        chunk_mask = mask
        if per_key_mask:
            chunk_mask = ops.slice(mask, (0, 0, start), (batch, ops.shape(mask)[1], chunk_size))
        new_keys = ops.arange(chunk_size) + start >= first_new  # keys of the previous chunk count once
        return online_softmax_step(carry, query, key_chunk, value_chunk, chunk_mask, new_keys)

    initial = initial_statistics(batch, num_heads, num_queries, value_width)
    running_max, normalizer, weighted = ops.fori_loop(0, num_chunks, step, initial)
    context = ops.transpose(ops.cast(weighted / normalizer, dtype), (0, 2, 1, 3))
    if return_statistics:
        return context, ops.concatenate([running_max, ops.log(normalizer)], axis=-1)
    return context


def query_chunked_attention(
    query, key, value, chunk_size, mask=None, key_chunk_size=None, return_statistics=False
):
    """`whole_attention` (or `key_chunked_attention`) answering `chunk_size` queries at a time; no dropout.

    Peak memory of the scores: (B, H, chunk_size, S) float32, or
    (B, H, chunk_size, key_chunk_size) with key chunks too.
    `return_statistics` as in `whole_attention`.
    """
    batch, num_queries, num_heads = ops.shape(query)[0], ops.shape(query)[1], ops.shape(query)[2]
    padding = count_chunks(num_queries, chunk_size) * chunk_size - num_queries
    query = pad_axis(query, 1, padding)
    per_query_mask = mask is not None and mask.shape[1] != 1
    if per_query_mask:
        mask = pad_axis(mask, 1, padding, value=True)
    query_width, value_width = query.shape[-1], value.shape[-1]
    # (B, n * c, H, d) -> (n, B, c, H, d): one slice per chunk, answered in turn by `ops.map`.
    chunks = ops.transpose(
        ops.reshape(query, (batch, -1, chunk_size, num_heads, query_width)), (1, 0, 2, 3, 4)
    )
    if per_query_mask:
        mask_chunks = ops.reshape(mask, (batch, -1, chunk_size, ops.shape(mask)[2]))
        chunks = (chunks, ops.transpose(mask_chunks, (1, 0, 2, 3)))

    def answer(chunk):
        query_chunk, chunk_mask = chunk if per_query_mask else (chunk, mask)
        if key_chunk_size is None:
            result = whole_attention(query_chunk, key, value, chunk_mask, None, return_statistics)
        else:
            result = key_chunked_attention(
                query_chunk, key, value, key_chunk_size, chunk_mask, return_statistics=return_statistics
            )
        if not return_statistics:
            return result
        # One float32 tensor per chunk (`ops.map` maps to one tensor): the context, then the statistics.
        context, statistics = result
        return ops.concatenate(
            [ops.cast(context, "float32"), ops.transpose(statistics, (0, 2, 1, 3))], axis=-1
        )

    outputs = ops.map(answer, chunks)  # (n, B, c, H, d_v [+ 2])
    width = value_width + 2 if return_statistics else value_width
    outputs = ops.reshape(ops.transpose(outputs, (1, 0, 2, 3, 4)), (batch, -1, num_heads, width))
    outputs = outputs[:, :num_queries]
    if not return_statistics:
        return outputs
    context = ops.cast(outputs[..., :value_width], query.dtype)
    return context, ops.transpose(outputs[..., value_width:], (0, 2, 1, 3))
