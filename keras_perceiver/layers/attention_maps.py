"""Opt-in recording of attention weights (transformers' `output_attentions`): what attends where.

Inside `with record_attention_maps() as maps:`, every
`PerceiverMultiHeadAttention` call adds its attention probabilities
(B, H, T, S) to `maps`, keyed by the layer's path; outside it nothing is
recorded and nothing is computed. The probabilities are computed apart from
the attention itself (whole, fused or chunked), from the same projected
queries and keys, so that recording never changes the model's outputs; they
cost the whole (B, H, T, S) scores in memory.

Works eagerly on every backend and inside one `tf.function` trace (the
recorded tensors belong to that trace: return them from it, as the
SavedModel's `attention_maps` endpoint does).

Source: transformers `PerceiverModel(output_attentions=True)` (its
`attentions` and `cross_attentions`); the Perceiver IO blog's figures of
latent attention over an image.
"""

import contextlib

from keras import ops

from keras_perceiver.layers.chunked_attention import masked_score

_ACTIVE = []


class AttentionMaps(dict):
    """Attention probabilities by layer path: path -> (B, H, T, S) float32, in call order.

    A layer called more than once (weights shared across repeated blocks)
    gets `"<path>#1"`, `"<path>#2"`, ... for its later calls.
    `kinds[key]` is `"cross"` (queries attend to other inputs: the encoder's
    latents over the inputs, the decoder's queries over the latents) or
    `"self"`.
    """

    def __init__(self):
        super().__init__()
        self.kinds = {}

    def add(self, path, kind, probabilities):
        key, count = path, 0
        while key in self:
            count += 1
            key = f"{path}#{count}"
        self[key] = probabilities
        self.kinds[key] = kind

    def cross_attentions(self):
        """The cross-attention maps, in call order (the encoder's first, the decoder's last)."""
        return [value for key, value in self.items() if self.kinds[key] == "cross"]

    def self_attentions(self):
        """The latent self-attention maps, in call order."""
        return [value for key, value in self.items() if self.kinds[key] == "self"]


@contextlib.contextmanager
def record_attention_maps():
    """Record the attention probabilities of the `PerceiverMultiHeadAttention` calls in this block.

    Yields:
        An `AttentionMaps` (empty until the model runs).

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import CrossAttention
    >>> from keras_perceiver.layers.attention_maps import record_attention_maps
    >>> layer = CrossAttention(num_heads=2, qk_channels=8)
    >>> with record_attention_maps() as maps:
    ...     _ = layer(keras.ops.ones((1, 3, 8)), keras.ops.ones((1, 5, 4)))
    >>> [tuple(m.shape) for m in maps.cross_attentions()]
    [(1, 2, 3, 5)]
    """
    maps = AttentionMaps()
    _ACTIVE.append(maps)
    try:
        yield maps
    finally:
        _ACTIVE.remove(maps)


def is_recording():
    """Whether a `record_attention_maps` block is open."""
    return bool(_ACTIVE)


def record(layer, kind, query, key, mask=None):
    """Add the probabilities of scaled queries (B, T, H, d) over keys (B, S, H, d) under `layer.path`.

    `mask`: optional bool, broadcastable to (B, T, S), True where allowed.
    """
    scores = ops.cast(ops.einsum("bthd,bshd->bhts", query, key), "float32")
    if mask is not None:
        scores = ops.where(mask[:, None, :, :], scores, masked_score("float32"))
    probabilities = ops.softmax(scores, axis=-1)
    for maps in _ACTIVE:
        maps.add(layer.path, kind, probabilities)
