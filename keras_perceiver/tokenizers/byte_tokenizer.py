"""UTF-8 byte tokenizer of the language perceiver, in TensorFlow ops (tf.data and SavedModel friendly)."""

import keras
import tensorflow as tf

from keras_perceiver.tokenizers.token_checks import check_strings, check_token_ids

PAD_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID, SEP_ID = 0, 1, 2, 3, 4, 5
NUM_SPECIAL_TOKENS = 6
VOCAB_SIZE = 256 + NUM_SPECIAL_TOKENS


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ByteTokenizer(keras.layers.Layer):
    """Tokenize strings to UTF-8 byte ids: PAD 0, BOS 1, EOS 2, MASK 3, CLS 4, SEP 5, byte + 6.

    Pure TensorFlow string ops, so it runs inside `tf.data.Dataset.map` and
    inside an exported SavedModel (serving signatures that take raw strings).
    Multi-byte UTF-8 characters become several ids; no vocabulary file.

    Source: DeepMind `perceiver/bytes_tokenizer.py` (ids; no special tokens);
    transformers `PerceiverTokenizer` (adds [CLS] ... [SEP]).

    Args:
        sequence_length: int or None, L: pad with PAD and truncate to L.
            None returns a ragged batch padded to the longest sequence.
        add_special_tokens: bool, wrap each sequence in [CLS] ... [SEP] as
            transformers does. Defaults to False (DeepMind).

    Call arguments:
        inputs: string tensor, scalar or (B,), UTF-8 text.
        text_pair: optional string tensor of the same shape, the second
            segment of sentence pairs (GLUE's MRPC, MNLI, ...): joined as
            transformers' `PerceiverTokenizer` joins `(text, text_pair)`,
            `[CLS] text [SEP] text_pair [SEP]` with special tokens (the two
            byte sequences concatenated without), and truncated to
            `sequence_length` with its default `"longest_first"` strategy
            (bytes removed from the end of the longer segment first, the
            rest split between both). Defaults to None.

    Returns:
        dict with `"token_ids"` (B, L) int32 and `"padding_mask"` (B, L) bool
        (True for real tokens); unbatched for a scalar input.

    Raises:
        TypeError: if `inputs` is not a string tensor.
        ValueError: if `inputs` is not a scalar or (B,) (e.g. a (B, 2) batch of
            string pairs: pass the second segment as `text_pair`), or if
            `text_pair` has another shape.

    Example:
    >>> import tensorflow as tf
    >>> from keras_perceiver.tokenizers import ByteTokenizer
    >>> ByteTokenizer(sequence_length=6)(tf.constant(["hé"]))["token_ids"].numpy()
    array([[110, 201, 175,   0,   0,   0]], dtype=int32)
    """

    def __init__(self, sequence_length=None, add_special_tokens=False, **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        if sequence_length is not None and (
            not isinstance(sequence_length, int) or sequence_length < (3 if add_special_tokens else 1)
        ):
            raise ValueError(
                "`sequence_length` must be None or a positive integer (at least 3 with special "
                f"tokens). Received: sequence_length={sequence_length!r}"
            )
        self.sequence_length = sequence_length
        self.add_special_tokens = add_special_tokens
        self.vocab_size = VOCAB_SIZE
        self.built = True

    def __call__(self, inputs, *args, **kwargs):
        # Accept Python strings and lists of strings as well as tensors.
        inputs = _as_strings(inputs)
        if kwargs.get("text_pair") is not None:
            kwargs["text_pair"] = _as_strings(kwargs["text_pair"], "ByteTokenizer text_pair")
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, text_pair=None):
        inputs = tf.convert_to_tensor(inputs)
        check_strings(inputs, "ByteTokenizer")
        scalar = inputs.shape.rank == 0
        strings = tf.reshape(inputs, [-1]) if scalar else inputs
        if text_pair is None:
            ids = self._with_special_tokens([byte_ids(strings)])
        else:
            text_pair = tf.convert_to_tensor(text_pair)
            check_strings(text_pair, "ByteTokenizer text_pair")
            if text_pair.shape.rank != inputs.shape.rank:
                raise ValueError(
                    "ByteTokenizer: `text_pair` must have the shape of `inputs`. "
                    f"Received: inputs.shape={inputs.shape}, text_pair.shape={text_pair.shape}"
                )
            pair_strings = tf.reshape(text_pair, [-1]) if scalar else text_pair
            ids = self._with_special_tokens(
                truncate_longest_first(byte_ids(strings), byte_ids(pair_strings), self._budget(2))
            )
        lengths = ids.row_lengths()
        shape = [None, self.sequence_length]
        token_ids = ids.to_tensor(default_value=PAD_ID, shape=shape)
        padding_mask = tf.sequence_mask(lengths, maxlen=tf.shape(token_ids)[1])
        if scalar:
            token_ids, padding_mask = token_ids[0], padding_mask[0]
        return {"token_ids": token_ids, "padding_mask": padding_mask}

    def _budget(self, segments):
        """Bytes left for `segments` segments in `sequence_length` after the special tokens (None: all)."""
        if self.sequence_length is None:
            return None
        specials = segments + 1 if self.add_special_tokens else 0
        return max(self.sequence_length - specials, 0)

    def _with_special_tokens(self, segments):
        """Ragged ids of 1 or 2 segments -> one ragged (B, None) sequence: `[CLS] a [SEP] (b [SEP])`."""
        if len(segments) == 1 and self.sequence_length is not None:
            segments = [segments[0][:, : self._budget(1)]]
        if not self.add_special_tokens:
            return tf.concat(segments, axis=1)
        batch = segments[0].nrows()
        cls, sep = tf.fill([batch, 1], CLS_ID), tf.fill([batch, 1], SEP_ID)
        joined = [cls]
        for segment in segments:
            joined += [segment, sep]
        return tf.concat(joined, axis=1)

    def detokenize(self, token_ids):
        """Token ids (B, L) -> strings (B,), or (L,) -> a scalar string: special ids are dropped, bytes
        joined.

        Invalid UTF-8 (e.g. a multi-byte character cut by truncation) is
        replaced with U+FFFD.

        Raises:
            TypeError: if `token_ids` are not integers.
            ValueError: if `token_ids` are not rank 1 or 2, or hold an id
                outside [0, 262) (checked on eager values; inside a
                `tf.function` by `tf.debugging` assertions).
        """
        token_ids = tf.convert_to_tensor(token_ids)
        check_token_ids(token_ids, VOCAB_SIZE, "ByteTokenizer.detokenize")
        if token_ids.shape.rank == 1:
            return self.detokenize(token_ids[tf.newaxis])[0]
        ragged = tf.ragged.boolean_mask(token_ids, token_ids >= NUM_SPECIAL_TOKENS)
        byte_values = tf.cast(ragged - NUM_SPECIAL_TOKENS, tf.uint8)
        strings = tf.strings.reduce_join(
            byte_values.with_flat_values(_bytes_to_strings(byte_values.flat_values)), axis=-1
        )
        return tf.strings.unicode_transcode(
            strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )

    def compute_output_spec(self, inputs, text_pair=None):
        del text_pair  # the same (B, L) outputs
        shape = (inputs.shape[0], self.sequence_length)
        return {
            "token_ids": keras.KerasTensor(shape, dtype="int32"),
            "padding_mask": keras.KerasTensor(shape, dtype="bool"),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {"sequence_length": self.sequence_length, "add_special_tokens": self.add_special_tokens}
        )
        return config


def _bytes_to_strings(byte_values):
    """(n,) uint8 -> (n,) one-byte strings."""
    table = tf.constant([bytes([b]) for b in range(256)])
    return tf.gather(table, tf.cast(byte_values, tf.int32))


def _as_strings(values, what="ByteTokenizer"):
    """Python strings/lists -> a string tensor; eager tensors are checked for a string dtype."""
    if isinstance(values, (str, bytes, list, tuple)):
        values = tf.convert_to_tensor(values)
    if not isinstance(values, keras.KerasTensor):
        # Before Keras' autocasting: a float array would reach `call` cast to int32.
        check_strings(tf.convert_to_tensor(values), what)
    return values


def truncate_longest_first(first, second, budget):
    """Truncate two ragged (B, None) id batches to at most `budget` ids per row together.

    transformers' `"longest_first"` strategy (`truncate_sequences`): of the
    n ids too many, min(n, |len_a - len_b|) come off the end of the longer
    sequence; of the r left, r // 2 come off the first and r - r // 2 off
    the second.

    Args:
        first, second: ragged int32 (B, None).
        budget: int or None (no truncation).

    Returns:
        (first, second), truncated.
    """
    if budget is None:
        return [first, second]
    len_a, len_b = first.row_lengths(), second.row_lengths()
    remove = tf.maximum(len_a + len_b - budget, 0)
    first_remove = tf.minimum(tf.abs(len_a - len_b), remove)
    second_remove = remove - first_remove
    a_longer = len_a > len_b
    remove_a = tf.where(a_longer, first_remove + second_remove // 2, second_remove // 2)
    remove_b = remove - remove_a
    keep_a, keep_b = len_a - remove_a, len_b - remove_b
    mask_a = tf.ragged.range(len_a) < tf.expand_dims(keep_a, 1)
    mask_b = tf.ragged.range(len_b) < tf.expand_dims(keep_b, 1)
    return [tf.ragged.boolean_mask(first, mask_a), tf.ragged.boolean_mask(second, mask_b)]


def byte_ids(strings):
    """Strings (B,) -> ragged int32 (B, None): each UTF-8 byte + `NUM_SPECIAL_TOKENS` (no pad, no specials).

    Source: transformers `PerceiverTokenizer` (byte ids offset by the 6
    special tokens).
    """
    chars = tf.strings.bytes_split(strings)
    values = tf.reshape(tf.io.decode_raw(chars.flat_values, tf.uint8), [-1])
    return chars.with_flat_values(tf.cast(values, tf.int32) + NUM_SPECIAL_TOKENS)
