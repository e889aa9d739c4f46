"""Which attention computes a call: whole, fused, chunked, or chunked with a recomputing backward pass.

`attention` picks, from the sizes and the call: the whole attention (scores
(B, H, T, S) materialized), the backend's fused kernel where there is one
(`fused_attention`), the chunked forms of `chunked_attention` for inference,
and `recomputed_attention` / `recomputed_projection_attention` for training
in chunks. Every form gives the same result to float32 round-off.

Source: Perceiver IO (arXiv 2107.14795) appendix; DeepMind `perceiver.py` `attend`.
"""

from keras_perceiver.layers.chunked_attention import (
    key_chunked_attention,
    query_chunked_attention,
    resolve_chunk_sizes,
    whole_attention,
)
from keras_perceiver.layers.fused_attention import fused_attention, has_fused_attention
from keras_perceiver.layers.recomputed_attention import (
    recomputed_attention,
    recomputed_projection_attention,
)


def attention(
    query,
    key_value,
    project,
    mask=None,
    dropout=None,
    attention_chunk_size=None,
    value_width=None,
    training=False,
    variables=None,
):
    """Scaled dot-product attention of (B, T, H, d) queries over (B, S, C) inputs, whole or in chunks.

    `project(inputs)` maps inputs (B, s, C) to their keys (B, s, H, d) and
    values (B, s, H, d_v = `value_width`). Chunks by
    `resolve_chunk_sizes(T, S, attention_chunk_size)`: over keys only, the
    inputs are projected chunk by chunk; over queries, the keys and values are
    projected once. With `training`, key chunks only and the `variables`
    that `project` reads, `recomputed_projection_attention`: its backward
    pass recomputes each chunk's keys and values from the inputs, so that
    nothing of size S is kept but the inputs. Other chunked training projects
    the keys and values once and runs `recomputed_attention`, whose backward
    pass recomputes each chunk's probabilities (training memory of the
    scores bounded as inference's). With
    `dropout` (training with attention dropout) it computes the whole
    attention, as the chunked forms have no dropout. Without chunks or
    dropout, `fused_attention` where the backend has a fused kernel.
    Returns (B, T, H, d_v).
    """
    if dropout is not None:
        return whole_attention(query, *project(key_value), mask, dropout)
    query_chunk, key_chunk = resolve_chunk_sizes(query.shape[1], key_value.shape[1], attention_chunk_size)
    if query_chunk is None and key_chunk is None:
        key, value = project(key_value)
        if has_fused_attention() and key.shape[-1] == value.shape[-1]:  # the kernels need d_v = d
            return fused_attention(query, key, value, mask)
        return whole_attention(query, key, value, mask)
    if training and query_chunk is None and variables is not None:
        return recomputed_projection_attention(
            query, key_value, project, variables, key_chunk, mask, value_width=value_width
        )
    if training:
        return recomputed_attention(query, *project(key_value), mask, query_chunk, key_chunk)
    if query_chunk is None:
        return key_chunked_attention(
            query, key_value, None, key_chunk, mask, project=project, value_width=value_width
        )
    key, value = project(key_value)
    return query_chunked_attention(query, key, value, query_chunk, mask, key_chunk_size=key_chunk)
