"""Raw strings of any length -> byte windows of a token classifier; its per-byte labels -> words, tags."""

import keras
import tensorflow as tf

from keras_perceiver.task_preprocessors.task_preprocessor import TaskPreprocessor
from keras_perceiver.tokenizers.byte_tokenizer import NUM_SPECIAL_TOKENS, byte_ids
from keras_perceiver.validation import check_positive_int

WORD_STARTS = ("b", "s")  # b/m/e/s positions: a word begins at b (begin) or s (single-character word)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ByteTaggingTaskPreprocessor(TaskPreprocessor):
    """UTF-8 strings (B,) -> windows {"token_ids" (W, L), "padding_mask" (W, L)}; per-byte labels -> words.

    The protocol of byte-level tagging (word segmentation, POS tagging):
    each text's UTF-8 bytes (+ 6, transformers' `PerceiverTokenizer` ids,
    no [CLS]/[SEP]) are cut into consecutive, non-overlapping windows of L
    bytes (the last one padded; an empty text gives one empty window), so a
    batch of B texts becomes W >= B windows, in order. `decode` stitches the
    model's (W, L, K) logits back: each character's label is the argmax at
    its first byte, a word begins at a character labelled `b` or `s` (the
    position part of labels such as `"b-n"`) and at the text's first
    character.

    Args:
        label_names: sequence of K label names: b/m/e/s positions
            (`("b", "m", "e", "s")`) or position-tag pairs (`"b-n"`).
        sequence_length: int, L, the window. Defaults to 256.
        token_ids_name, padding_mask_name, text_key: the model's input
            names and the raw input's name. Defaults `"token_ids"`,
            `"padding_mask"`, `"text"`.

    Call arguments:
        x: strings (B,) (list, array or string tensor) or a dict holding
            them under `text_key`.

    Raises:
        TypeError: for inputs that are not strings.
        ValueError: for a non-positive `sequence_length` or empty
            `label_names`.

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

    def _layout(self, ids):
        """(scatter indices (bytes, 2) into the (W, L) windows, W) of ragged ids (B, None)."""
        length = self.sequence_length
        lengths = ids.row_lengths()
        counts = tf.maximum((lengths + length - 1) // length, 1)
        first_window = tf.cumsum(counts, exclusive=True)
        position = tf.ragged.range(lengths).flat_values
        window = tf.gather(first_window, ids.value_rowids()) + position // length
        return tf.stack([window, position % length], axis=1), tf.reduce_sum(counts)

    def convert(self, x):
        ids = byte_ids(self._texts(x))
        indices, num_windows = self._layout(ids)
        shape = tf.stack([num_windows, tf.constant(self.sequence_length, tf.int64)])
        token_ids = tf.scatter_nd(indices, ids.flat_values, shape)
        real = tf.scatter_nd(indices, tf.ones_like(ids.flat_values), shape) > 0
        inputs = {self.token_ids_name: token_ids}
        if self.padding_mask_name is not None:
            inputs[self.padding_mask_name] = real
        return inputs

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
        indices, _ = self._layout(ids)
        labels = tf.gather_nd(tf.argmax(logits, axis=-1, output_type=tf.int32), indices)
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
        char_labels = tf.boolean_mask(labels, starts)
        positions = [name.split("-", 1)[0] for name in self.label_names]
        is_word_start = tf.constant([position in WORD_STARTS for position in positions])
        first_char = tf.boolean_mask(first_in_row, starts)
        spaced = tf.where(
            tf.gather(is_word_start, char_labels) & ~first_char, tf.strings.join([" ", chars]), chars
        )
        num_texts = tf.shape(texts, out_type=tf.int64)[0]
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
                "token_ids_name": self.token_ids_name,
                "padding_mask_name": self.padding_mask_name,
                "text_key": self.text_key,
            }
        )
        return config
