"""Checks of what users pass to the tokenizers: strings to tokenize, token ids to detokenize."""

import tensorflow as tf


def check_strings(inputs, name):
    """Raise unless `inputs` is a scalar or (B,) string tensor.

    Raises:
        TypeError: for a tensor that is not of strings, naming its dtype.
        ValueError: for a rank other than 0 or 1, naming the shape.
    """
    if inputs.dtype != tf.string:
        raise TypeError(f"{name} expects a string tensor. Received: dtype={inputs.dtype.name}")
    if inputs.shape.rank not in (0, 1):
        raise ValueError(
            f"{name} expects a scalar string or a (B,) batch of strings. "
            f"Received: inputs.shape={tuple(inputs.shape)} (rank {inputs.shape.rank})"
        )


def check_token_ids(token_ids, vocab_size, name):
    """Raise unless `token_ids` are (L,) or (B, L) integers in [0, vocab_size).

    The range is checked on eager values (a ValueError naming the first bad
    id); inside a `tf.function` by `tf.debugging` assertions.

    Raises:
        TypeError: for ids that are not integers, naming the dtype.
        ValueError: for a rank other than 1 or 2, or an id out of range.
    """
    if not token_ids.dtype.is_integer:
        raise TypeError(f"{name} expects integer token ids. Received: dtype={token_ids.dtype.name}")
    if token_ids.shape.rank not in (1, 2):
        raise ValueError(
            f"{name} expects token ids of shape (L,) or (B, L). "
            f"Received: token_ids.shape={tuple(token_ids.shape)} (rank {token_ids.shape.rank})"
        )
    message = f"{name} expects ids in [0, {vocab_size})"
    if tf.executing_eagerly():
        ids = token_ids.numpy()
        bad = (ids < 0) | (ids >= vocab_size)
        if bad.any():
            raise ValueError(f"{message}. Received: the id {ids[bad][0]} ({int(bad.sum())} out of range)")
        return
    tf.debugging.assert_non_negative(token_ids, message=message)
    tf.debugging.assert_less(token_ids, tf.cast(vocab_size, token_ids.dtype), message=message)
