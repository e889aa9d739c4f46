"""Raw strings -> token ids and padding mask (keras-hub's `TextClassifierPreprocessor`)."""

import inspect

import keras
import tensorflow as tf

from keras_perceiver.task_preprocessors.task_preprocessor import TaskPreprocessor
from keras_perceiver.tokenizers.byte_tokenizer import ByteTokenizer


@keras.saving.register_keras_serializable(package="keras_perceiver")
class TextTaskPreprocessor(TaskPreprocessor):
    """UTF-8 strings (B,) -> {"token_ids" (B, L) int32, "padding_mask" (B, L) bool} through a tokenizer.

    Source: keras-hub `TextClassifierPreprocessor`; transformers
    `PerceiverTokenizer` (bytes + 6 special ids, padded).

    Args:
        tokenizer: a `ByteTokenizer` or `SentencePieceTokenizer` (a fixed
            `sequence_length` L for models with fixed positions). Defaults to
            `ByteTokenizer(sequence_length=2048)`, the language perceiver's.
        token_ids_name, padding_mask_name: str, the model's input names.
            Default `"token_ids"` and `"padding_mask"`; `padding_mask_name=None`
            drops the mask.
        text_key: str, the raw input's name in signatures and dict inputs.
            Defaults to `"text"`.
        text_pair_key: str or None, the name of a second raw input, the
            second segment of sentence pairs (GLUE's MRPC, MNLI, ...), joined
            by the tokenizer's `text_pair` (`ByteTokenizer`: `[CLS] a [SEP] b
            [SEP]`, as transformers' `PerceiverTokenizer(text, text_pair)`).
            Defaults to None (single texts).

    Call arguments:
        x: strings (B,): a list, an array or a string tensor; or a dict
            holding them under `text_key` (and `text_pair_key`); with
            `text_pair_key`, also a tuple `(texts, text_pairs)`.
        y, sample_weight: passed through.

    Raises:
        TypeError: for inputs that are not strings (the tokenizer's check).
        ValueError: for `text_pair_key` with a tokenizer without pairs, or
            pairs given as something else than a dict or a 2-tuple.

    Example:
    >>> from keras_perceiver.task_preprocessors import TextTaskPreprocessor
    >>> from keras_perceiver.tokenizers import ByteTokenizer
    >>> preprocessor = TextTaskPreprocessor(ByteTokenizer(sequence_length=4))
    >>> preprocessor(["hi"])["token_ids"].numpy()
    array([[110, 111,   0,   0]], dtype=int32)
    """

    def __init__(
        self,
        tokenizer=None,
        token_ids_name="token_ids",
        padding_mask_name="padding_mask",
        text_key="text",
        text_pair_key=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(tokenizer, dict):
            tokenizer = keras.saving.deserialize_keras_object(tokenizer)
        self.tokenizer = tokenizer if tokenizer is not None else ByteTokenizer(sequence_length=2048)
        self.token_ids_name = token_ids_name
        self.padding_mask_name = padding_mask_name
        self.text_key = text_key
        self.text_pair_key = text_pair_key
        if text_pair_key is not None and "text_pair" not in inspect.signature(self.tokenizer.call).parameters:
            raise ValueError(
                f"{type(self).__name__}: `text_pair_key` needs a tokenizer that joins sentence pairs "
                f"(`ByteTokenizer`). Received: tokenizer={type(self.tokenizer).__name__}"
            )

    @property
    def input_signature(self):
        keys = [self.text_key] + ([self.text_pair_key] if self.text_pair_key else [])
        return {key: tf.TensorSpec((None,), tf.string, name=key) for key in keys}

    def convert(self, x):
        if self.text_pair_key is None:
            tokens = self.tokenizer(self._raw(x, self.text_key))
        else:
            if isinstance(x, tuple) and len(x) == 2:
                x = dict(zip((self.text_key, self.text_pair_key), x))
            if not isinstance(x, dict):
                raise ValueError(
                    f"{type(self).__name__}: sentence pairs come as a dict with keys "
                    f"{sorted(self.input_signature)} or a tuple (texts, text_pairs). "
                    f"Received: {type(x).__name__}"
                )
            tokens = self.tokenizer(
                self._raw(x, self.text_key), text_pair=self._raw(x, self.text_pair_key)
            )
        inputs = {self.token_ids_name: tokens["token_ids"]}
        if self.padding_mask_name is not None:
            inputs[self.padding_mask_name] = tokens["padding_mask"]
        return inputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
                "token_ids_name": self.token_ids_name,
                "padding_mask_name": self.padding_mask_name,
                "text_key": self.text_key,
                "text_pair_key": self.text_pair_key,
            }
        )
        return config
