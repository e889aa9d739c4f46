"""Raw strings of any length -> byte windows of a token classifier; its per-byte labels -> words, tags."""

import keras
import tensorflow as tf

from keras_perceiver.task_preprocessors.task_preprocessor import TaskPreprocessor
from keras_perceiver.tokenizers.byte_tokenizer import NUM_SPECIAL_TOKENS, byte_ids
from keras_perceiver.validation import check_positive_int

POSITIONS = ("b", "m", "e", "s")  # begin, middle, end of a word, single-character word
WORD_STARTS = ("b", "s")  # a word begins at b or s
WORD_ENDS = ("e", "s")
DECODINGS = ("argmax", "viterbi")


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ByteTaggingTaskPreprocessor(TaskPreprocessor):
    """UTF-8 strings (B,) -> windows {"token_ids" (W, L), "padding_mask" (W, L)}; per-byte labels -> words.

    The protocol of byte-level tagging (word segmentation, POS tagging):
    each text's UTF-8 bytes (+ 6, transformers' `PerceiverTokenizer` ids,
    no [CLS]/[SEP]) are cut into windows of L bytes starting every S bytes
    (`window_stride`; S = L: consecutive, non-overlapping windows), as many
    as cover the text (the last one padded; an empty text gives one empty
    window), so a batch of B texts becomes W >= B windows, in order.
    `decode` stitches the model's (W, L, K) logits back: each byte takes its
    logits from the window where it has the most context (the largest of its
    distances to a window edge that cuts the text; S = L: its only window);
    a character's logits are its first byte's; its label is their argmax
    (`decoding="argmax"`) or the best label sequence under the b/m/e/s
    constraints (`decoding="viterbi"`: a `b` or `m` is followed by `m` or
    `e` of the same tag, an `e` or `s` by `b` or `s`, a text starts at `b`
    or `s` and ends at `e` or `s`; Viterbi over the characters' log-softmax);
    a word begins at a character labelled `b` or `s` (the position part of
    labels such as `"b-n"`) and at the text's first character.

    Source: word segmentation as character tagging with b/m/e/s positions
    (Xue, "Chinese Word Segmentation as Character Tagging", 2003), decoded by
    Viterbi under the tag-transition constraints as jieba's HMM segmenter
    (`jieba/finalseg`) does; the byte-level windows are this library's.

    Args:
        label_names: sequence of K label names: b/m/e/s positions
            (`("b", "m", "e", "s")`) or position-tag pairs (`"b-n"`).
        sequence_length: int, L, the window. Defaults to 256.
        window_stride: int in [1, L], S, bytes between window starts.
            Defaults to None: L (no overlap). L // 2 gives every byte at
            least L / 4 bytes of context on both sides (unless the text ends
            there) at twice the windows.
        decoding: `"argmax"` (default) or `"viterbi"`: how `decode` labels
            the characters (above). Viterbi needs every label's position
            part to be one of b/m/e/s.
        token_ids_name, padding_mask_name, text_key: the model's input
            names and the raw input's name. Defaults `"token_ids"`,
            `"padding_mask"`, `"text"`.

    Call arguments:
        x: strings (B,) (list, array or string tensor) or a dict holding
            them under `text_key`.

    Raises:
        TypeError: for inputs that are not strings.
        ValueError: for a non-positive `sequence_length`, a
            `window_stride` outside [1, L], empty `label_names`, an unknown
            `decoding`, or `"viterbi"` with labels that are not b/m/e/s
            positions.

    Example:
    >>> from keras_perceiver.task_preprocessors import ByteTaggingTaskPreprocessor
    >>> preprocessor = ByteTaggingTaskPreprocessor("bmes", sequence_length=4)
    >>> preprocessor(["hello", "hi"])["token_ids"].numpy()
    array([[110, 107, 114, 114],
           [117,   0,   0,   0],
           [110, 111,   0,   0]], dtype=int32)
    """

    def __init__(
        self,
        label_names=("b", "m", "e", "s"),
        sequence_length=256,
        window_stride=None,
        decoding="argmax",
        token_ids_name="token_ids",
        padding_mask_name="padding_mask",
        text_key="text",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("sequence_length", sequence_length)
        self.label_names = [str(name) for name in label_names]
        if not self.label_names:
            raise ValueError(
                "ByteTaggingTaskPreprocessor: label_names must name at least one label. Received: []"
            )
        self.sequence_length = sequence_length
        if window_stride is not None:
            check_positive_int("window_stride", window_stride)
            if window_stride > sequence_length:
                raise ValueError(
                    "ByteTaggingTaskPreprocessor: window_stride must be at most sequence_length="
                    f"{sequence_length}. Received: window_stride={window_stride}"
                )
        self.window_stride = window_stride
        if decoding not in DECODINGS:
            raise ValueError(
                f"ByteTaggingTaskPreprocessor: decoding must be one of {DECODINGS}. Received: "
                f"decoding={decoding!r}"
            )
        # (position, tag) of each label: "b-n" -> ("b", "n"), "s" -> ("s", "")
        self._label_parts = [(name.split("-", 1) + [""])[:2] for name in self.label_names]
        positions = {position for position, _ in self._label_parts}
        if decoding == "viterbi" and not positions <= set(POSITIONS):
            raise ValueError(
                "ByteTaggingTaskPreprocessor: decoding='viterbi' needs labels whose position part is one "
                f"of {POSITIONS}. Received: label_names={self.label_names}"
            )
        self.decoding = decoding
        self.token_ids_name = token_ids_name
        self.padding_mask_name = padding_mask_name
        self.text_key = text_key

    @property
    def input_signature(self):
        return {self.text_key: tf.TensorSpec((None,), tf.string, name=self.text_key)}

    def _texts(self, x):
        texts = self._raw(x, self.text_key)
        if texts.dtype != tf.string:
            raise TypeError(
                f"{type(self).__name__}: `{self.text_key}` must be strings. Received: {texts.dtype.name}"
            )
        return tf.reshape(texts, [-1])

    @property
    def _stride(self):
        return self.window_stride or self.sequence_length

    def _windows(self, lengths):
        """(index of each text's first window (B,), windows per text (B,)) of text byte lengths (B,)."""
        length, stride = self.sequence_length, self._stride
        counts = tf.maximum(lengths - length + stride - 1, 0) // stride + 1
        return tf.cumsum(counts, exclusive=True), counts

    def convert(self, x):
        ids = byte_ids(self._texts(x))
        lengths = ids.row_lengths()
        first_window, counts = self._windows(lengths)
        text = tf.repeat(tf.range(tf.size(counts, out_type=tf.int64)), counts)
        start = (tf.range(tf.reduce_sum(counts)) - tf.gather(first_window, text)) * self._stride
        position = start[:, None] + tf.range(self.sequence_length, dtype=tf.int64)[None]  # (W, L)
        real = position < tf.gather(lengths, text)[:, None]
        flat = tf.gather(ids.row_splits, text)[:, None] + position
        values = tf.concat([ids.flat_values, [0]], axis=0)  # a zero to gather for padding
        token_ids = tf.where(real, tf.gather(values, tf.where(real, flat, tf.size(values, tf.int64) - 1)), 0)
        inputs = {self.token_ids_name: token_ids}
        if self.padding_mask_name is not None:
            inputs[self.padding_mask_name] = real
        return inputs

    def _byte_logits(self, ids, logits):
        """(bytes, K): each byte's logits, from the window where it has the most context."""
        length, stride = self.sequence_length, self._stride
        lengths = ids.row_lengths()
        first_window, counts = self._windows(lengths)
        rows = ids.value_rowids()
        position = tf.ragged.range(lengths).flat_values
        size, count = tf.gather(lengths, rows), tf.gather(counts, rows)
        # The windows holding a byte: the last one starting at or before it and the ones before, up to
        # ceil(L / S) of them.
        candidates = position[:, None] // stride - tf.range(-(-length // stride), dtype=tf.int64)[None]
        start = candidates * stride
        inside = (candidates >= 0) & (candidates < count[:, None]) & (position[:, None] < start + length)
        big = tf.constant(2 * length, tf.int64)
        left = tf.where(start > 0, position[:, None] - start, big)
        right = tf.where(start + length < size[:, None], start + length - 1 - position[:, None], big)
        context = tf.where(inside, tf.minimum(left, right), -1)
        best = tf.gather(candidates, tf.argmax(context, axis=1), batch_dims=1)
        window = tf.gather(first_window, rows) + best
        return tf.gather_nd(logits, tf.stack([window, position - best * stride], axis=1))

    def _transitions(self):
        """(allowed (K, K) bool from row label to column label, allowed first (K,), allowed last (K,))."""
        parts = self._label_parts
        allowed = [
            [
                (a[0] in WORD_ENDS and b[0] in WORD_STARTS)
                or (a[0] not in WORD_ENDS and b[0] not in WORD_STARTS and a[1] == b[1])
                for b in parts
            ]
            for a in parts
        ]
        first = [p[0] in WORD_STARTS for p in parts]
        last = [p[0] in WORD_ENDS for p in parts]
        return tf.constant(allowed), tf.constant(first), tf.constant(last)

    def _viterbi(self, char_logits, char_rows, num_texts):
        """(chars,) int32: the best allowed label sequence of each text's characters (log-softmax scores)."""
        allowed, first, last = self._transitions()
        forbidden = tf.constant(-1e9, tf.float32)
        scores = tf.nn.log_softmax(tf.cast(char_logits, tf.float32), axis=-1)
        padded = tf.RaggedTensor.from_value_rowids(scores, char_rows, nrows=num_texts)
        num_chars = padded.row_lengths()
        emissions = tf.transpose(padded.to_tensor(), [1, 0, 2])  # (T, B, K)
        # At least two steps (padding steps are skipped), so that the scans below never run empty.
        emissions = tf.pad(emissions, [[0, tf.maximum(2 - tf.shape(emissions)[0], 0)], [0, 0], [0, 0]])
        transition = tf.where(allowed, 0.0, forbidden)
        steps = tf.range(1, tf.shape(emissions, out_type=tf.int64)[0])

        def step(carry, t):
            score, _ = carry
            candidates = score[:, :, None] + transition[None]  # (B, from, to)
            back = tf.argmax(candidates, axis=1, output_type=tf.int32)
            new = tf.reduce_max(candidates, axis=1) + emissions[t]
            live = (t < num_chars)[:, None]
            identity = tf.broadcast_to(tf.range(tf.shape(score)[1]), tf.shape(back))
            return tf.where(live, new, score), tf.where(live, back, identity)

        initial = tf.where(first, emissions[0], emissions[0] + forbidden)
        scores_t, backs = tf.scan(step, steps, initializer=(initial, tf.zeros_like(initial, tf.int32)))
        final = tf.concat([initial[None], scores_t], axis=0)[-1]
        label = tf.argmax(tf.where(last, final, final + forbidden), axis=1, output_type=tf.int32)

        def back_step(label, back):
            return tf.gather(back, label, batch_dims=1)

        earlier = tf.scan(back_step, backs, initializer=label, reverse=True)  # (T - 1, B)
        labels = tf.transpose(tf.concat([earlier, label[None]], axis=0))  # (B, T)
        mask = tf.sequence_mask(num_chars, tf.shape(labels, out_type=tf.int64)[1])
        return tf.boolean_mask(labels, mask)

    def decode(self, x, logits):
        """The texts' words and character labels from the logits of their windows (TensorFlow ops).

        Args:
            x: the raw strings (B,) that `convert` made the windows of.
            logits: (W, L, K) float, the model's outputs on those windows.

        Returns:
            dict: `"words"`: string (B,), each text's words separated by
            spaces; `"tags"`: string (B,), the label name of each character
            separated by spaces.
        """
        texts = self._texts(x)
        ids = byte_ids(texts)
        byte_logits = self._byte_logits(ids, logits)
        byte_values = ids.flat_values - NUM_SPECIAL_TOKENS
        first_in_row = tf.ragged.range(ids.row_lengths()).flat_values == 0
        starts = tf.logical_or(tf.bitwise.bitwise_and(byte_values, 0xC0) != 0x80, first_in_row)
        # Characters: the bytes from one start to the next, joined.
        char_index = tf.cumsum(tf.cast(starts, tf.int32)) - 1
        num_chars = tf.reduce_sum(tf.cast(starts, tf.int32))
        chars = tf.strings.unsorted_segment_join(
            tf.strings.bytes_split(texts).flat_values, char_index, num_chars
        )
        char_rows = tf.boolean_mask(ids.value_rowids(), starts)
        char_logits = tf.boolean_mask(byte_logits, starts)
        num_texts = tf.shape(texts, out_type=tf.int64)[0]
        if self.decoding == "viterbi":
            char_labels = self._viterbi(char_logits, char_rows, num_texts)
        else:
            char_labels = tf.argmax(char_logits, axis=-1, output_type=tf.int32)
        is_word_start = tf.constant([position in WORD_STARTS for position, _ in self._label_parts])
        first_char = tf.boolean_mask(first_in_row, starts)
        spaced = tf.where(
            tf.gather(is_word_start, char_labels) & ~first_char, tf.strings.join([" ", chars]), chars
        )
        words = tf.RaggedTensor.from_value_rowids(spaced, char_rows, nrows=num_texts)
        tags = tf.RaggedTensor.from_value_rowids(
            tf.gather(tf.constant(self.label_names), char_labels), char_rows, nrows=num_texts
        )
        return {
            "words": tf.strings.reduce_join(words, axis=1),
            "tags": tf.strings.reduce_join(tags, axis=1, separator=" "),
        }

    def client_outputs(self, x, logits):
        """The serving outputs: `decode(x, logits)` and the windows' `"logits"` (W, L, K)."""
        return {"logits": logits, **self.decode(x, logits)}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "label_names": list(self.label_names),
                "sequence_length": self.sequence_length,
                "window_stride": self.window_stride,
                "decoding": self.decoding,
                "token_ids_name": self.token_ids_name,
                "padding_mask_name": self.padding_mask_name,
                "text_key": self.text_key,
            }
        )
        return config
