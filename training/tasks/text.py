"""Shared tf.data functions of the byte-level text tasks: tokenization and masked-LM corruption.

Tokenization runs inside the pipeline with `ByteTokenizer` (TensorFlow string
ops: UTF-8 bytes + 6, PAD 0 / MASK 3). Masks are fed as 0/1 int32: Keras 3's
distributed `fit` averages a first batch across replicas, which fails on
bool tensors (the models accept integer masks).
"""

import tensorflow as tf

from keras_perceiver.tokenizers.byte_tokenizer import (
    MASK_ID,
    NUM_SPECIAL_TOKENS,
    VOCAB_SIZE,
    ByteTokenizer,
)


def tokenize(text, sequence_length):
    """UTF-8 string scalar -> {"token_ids": (L,) int32, "padding_mask": (L,) int32 0/1}."""
    tokens = ByteTokenizer(sequence_length=sequence_length)(text)
    return {"token_ids": tokens["token_ids"], "padding_mask": tf.cast(tokens["padding_mask"], tf.int32)}


def mask_tokens(token_ids, padding_mask, seed, mask_rate=0.15):
    """BERT-style corruption of one sequence with stateless random numbers (a function of `seed`).

    Each real token is selected with probability `mask_rate`; a selected token
    becomes MASK with probability 0.8, a random byte with probability 0.1, and
    stays with probability 0.1 (Perceiver IO, arXiv 2107.14795 section 4.1,
    follows BERT's masking of 15% of the inputs).

    Args:
        token_ids: (L,) int32.
        padding_mask: (L,) int32 0/1 (or bool), 1 = real token.
        seed: int64 (2,) seed of `tf.random.stateless_uniform`.
        mask_rate: float in (0, 1). Defaults to 0.15.

    Returns:
        (corrupted ids (L,) int32, selected (L,) float32 1 = scored).
    """
    length = tf.shape(token_ids)
    real = tf.cast(padding_mask, tf.bool)
    draws = tf.random.stateless_uniform(tf.concat([[3], length], 0), seed=seed)
    selected = (draws[0] < mask_rate) & real
    to_mask = selected & (draws[1] < 0.8)
    to_random = selected & ~to_mask & (draws[2] < 0.5)
    random_ids = tf.random.stateless_uniform(
        length, seed=seed + 1, minval=NUM_SPECIAL_TOKENS, maxval=VOCAB_SIZE, dtype=tf.int32
    )
    corrupted = tf.where(to_mask, MASK_ID, tf.where(to_random, random_ids, token_ids))
    return corrupted, tf.cast(selected, tf.float32)
