"""SentencePiece tokenizer layer (tensorflow-text ops: tf.data and SavedModel friendly) and its trainer."""

import base64
import binascii
import io
import os

import keras
import tensorflow as tf

from keras_perceiver.tokenizers.token_checks import check_strings, check_token_ids

# Special ids of the models that `train_sentencepiece` writes.
PAD_ID, UNK_ID, BOS_ID, EOS_ID, MASK_ID = 0, 1, 2, 3, 4
MASK_PIECE = "[MASK]"


def _proto_bytes(proto):
    """The serialized SentencePiece model from bytes, a file path or base64 (as `get_config` writes)."""
    if isinstance(proto, (bytes, bytearray)):
        return bytes(proto)
    if isinstance(proto, os.PathLike) or (isinstance(proto, str) and os.path.isfile(proto)):
        with open(proto, "rb") as f:
            return f.read()
    if isinstance(proto, str):
        try:
            return base64.b64decode(proto, validate=True)
        except binascii.Error as error:
            raise ValueError(
                "SentencePieceTokenizer: `proto` must be the serialized model (bytes), the path of a "
                f"`.model` file or its base64 encoding. Received a string that is neither: {proto[:60]!r}"
            ) from error
    raise TypeError(
        "SentencePieceTokenizer: `proto` must be bytes, a file path or a base64 string. "
        f"Received: {type(proto).__name__}"
    )


@keras.saving.register_keras_serializable(package="keras_perceiver")
class SentencePieceTokenizer(keras.layers.Layer):
    """Tokenize strings with a SentencePiece model: (B,) strings -> token ids (B, L) and padding mask.

    Runs `tensorflow_text.SentencepieceTokenizer`, so it works inside
    `tf.data.Dataset.map` and inside an exported SavedModel. The serialized
    model (`proto`) is stored in the layer's config (base64), so the layer
    and models that contain it survive `get_config`/`from_config` and
    `.keras` saving without a separate vocabulary file; the exported
    SavedModel holds it as a TensorFlow resource.

    The token ids feed `PerceiverMaskedLM` and `PerceiverTextClassifier`
    with `vocab_size=tokenizer.vocab_size` (a token + learned position
    embedding, as for bytes). `train_sentencepiece` trains such a model with
    PAD 0, UNK 1, BOS 2, EOS 3 and MASK 4.

    Source: Perceiver IO (arXiv 2107.14795) section 4.1 compares byte
    inputs with a SentencePiece-tokenized baseline; the storage of the proto
    in the config follows keras-nlp's `SentencePieceTokenizer`.

    Args:
        proto: the serialized SentencePiece model: bytes, the path of a
            `.model` file, or its base64 encoding.
        sequence_length: int or None, L: pad with `pad_id` and truncate to
            L. None pads to the longest sequence of the batch.
        add_bos: bool, prepend the model's BOS id. Defaults to False.
        add_eos: bool, append the model's EOS id (kept after truncation).
            Defaults to False.
        pad_id: int, the id written at padded positions. Defaults to 0
            (`<pad>` of models from `train_sentencepiece`).

    Call arguments:
        inputs: string tensor (or Python str / list of str), scalar or (B,).

    Returns:
        dict with `"token_ids"` (B, L) int32 and `"padding_mask"` (B, L) bool
        (True for real tokens); unbatched for a scalar input.

    Raises:
        ValueError: for a proto that is not a SentencePiece model, a bad
            `sequence_length`, a `pad_id` outside the vocabulary, or inputs
            that are not a scalar or (B,).
        TypeError: for non-string inputs, or a `proto` of another type.

    Example:
    >>> from keras_perceiver.tokenizers.sentencepiece_tokenizer import train_sentencepiece
    >>> from keras_perceiver.tokenizers import SentencePieceTokenizer
    >>> proto = train_sentencepiece(["the quick brown fox", "jumps over the lazy dog"] * 50, 289)
    >>> tokenizer = SentencePieceTokenizer(proto, sequence_length=16)
    >>> outputs = tokenizer(["the lazy fox"])
    >>> tokenizer.detokenize(outputs["token_ids"]).numpy()
    array([b'the lazy fox'], dtype=object)
    """

    def __init__(self, proto, sequence_length=None, add_bos=False, add_eos=False, pad_id=PAD_ID, **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        import tensorflow_text as tf_text  # lazy: registers its ops only when the layer is used

        if sequence_length is not None and (
            isinstance(sequence_length, bool)
            or not isinstance(sequence_length, int)
            or sequence_length < 1 + int(add_bos) + int(add_eos)
        ):
            raise ValueError(
                "`sequence_length` must be None or a positive integer (room for BOS/EOS when added). "
                f"Received: sequence_length={sequence_length!r}"
            )
        self.proto = _proto_bytes(proto)
        self.sequence_length = sequence_length
        self.add_bos = add_bos
        self.add_eos = add_eos
        self.pad_id = pad_id
        try:
            self._sentencepiece = tf_text.SentencepieceTokenizer(model=self.proto, out_type=tf.int32)
            self.vocab_size = int(self._sentencepiece.vocab_size())
        except (tf.errors.InternalError, tf.errors.InvalidArgumentError) as error:
            raise ValueError(
                f"SentencePieceTokenizer: `proto` is not a valid SentencePiece model ({len(self.proto)} "
                f"bytes): {error.message}"
            ) from error
        if isinstance(pad_id, bool) or not isinstance(pad_id, int) or not 0 <= pad_id < self.vocab_size:
            raise ValueError(
                f"`pad_id` must be an id of the vocabulary, in [0, {self.vocab_size}). "
                f"Received: pad_id={pad_id!r}"
            )
        self.bos_id = int(self._sentencepiece.string_to_id("<s>"))
        self.eos_id = int(self._sentencepiece.string_to_id("</s>"))
        self.built = True

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, (str, bytes, list, tuple)):
            inputs = tf.convert_to_tensor(inputs)
        if not isinstance(inputs, keras.KerasTensor):
            # Before Keras' autocasting: a float array would reach `call` cast to int32.
            check_strings(tf.convert_to_tensor(inputs), "SentencePieceTokenizer")
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        check_strings(inputs, "SentencePieceTokenizer")
        scalar = inputs.shape.rank == 0
        strings = tf.reshape(inputs, [-1]) if scalar else inputs
        ids = self._sentencepiece.tokenize(strings)
        if self.sequence_length is not None:
            ids = ids[:, : self.sequence_length - int(self.add_bos) - int(self.add_eos)]
        batch = tf.shape(strings)[0]
        if self.add_bos:
            ids = tf.concat([tf.fill([batch, 1], self.bos_id), ids], axis=1)
        if self.add_eos:
            ids = tf.concat([ids, tf.fill([batch, 1], self.eos_id)], axis=1)
        token_ids = ids.to_tensor(default_value=self.pad_id, shape=[None, self.sequence_length])
        padding_mask = tf.sequence_mask(ids.row_lengths(), maxlen=tf.shape(token_ids)[1])
        if scalar:
            token_ids, padding_mask = token_ids[0], padding_mask[0]
        return {"token_ids": token_ids, "padding_mask": padding_mask}

    def detokenize(self, token_ids, padding_mask=None):
        """Token ids (B, L) (or (L,)) -> strings (B,) (or a scalar).

        Positions where `padding_mask` is False are dropped; without a mask,
        `pad_id` entries are dropped. Control ids (BOS, EOS, MASK) decode to
        nothing.

        Raises:
            TypeError: if `token_ids` are not integers.
            ValueError: if `token_ids` are not rank 1 or 2, hold an id
                outside [0, vocab_size) (eager values; `tf.debugging`
                assertions in a `tf.function`), or `padding_mask` is not of
                their shape.
        """
        token_ids = tf.convert_to_tensor(token_ids)
        check_token_ids(token_ids, self.vocab_size, "SentencePieceTokenizer.detokenize")
        token_ids = tf.cast(token_ids, tf.int32)
        if padding_mask is not None:
            padding_mask = tf.convert_to_tensor(padding_mask)
            if padding_mask.shape != token_ids.shape:
                raise ValueError(
                    "SentencePieceTokenizer.detokenize: `padding_mask` must have the shape of `token_ids`, "
                    f"{tuple(token_ids.shape)}. Received: padding_mask.shape={tuple(padding_mask.shape)}"
                )
        keep = tf.cast(padding_mask, tf.bool) if padding_mask is not None else token_ids != self.pad_id
        scalar = token_ids.shape.rank == 1
        if scalar:
            token_ids, keep = token_ids[None], keep[None]
        strings = self._sentencepiece.detokenize(tf.ragged.boolean_mask(token_ids, keep))
        return strings[0] if scalar else strings

    def id_to_piece(self, ids):
        """Token ids -> their SentencePiece pieces (strings)."""
        return self._sentencepiece.id_to_string(tf.convert_to_tensor(ids, dtype=tf.int32))

    def compute_output_spec(self, inputs):
        shape = (inputs.shape[0], self.sequence_length)
        return {
            "token_ids": keras.KerasTensor(shape, dtype="int32"),
            "padding_mask": keras.KerasTensor(shape, dtype="bool"),
        }

    @classmethod
    def from_config(cls, config):
        """Rebuild from `get_config`: `proto` must be its base64 string.

        Raises:
            ValueError: if `proto` is not base64 (e.g. a file path: a config,
                such as a preset's, may not make loading read files outside
                its own directory).
        """
        proto = config.get("proto")
        if isinstance(proto, str):
            try:
                proto = base64.b64decode(proto, validate=True)
            except binascii.Error:
                raise ValueError(
                    "SentencePieceTokenizer.from_config: `proto` must be the base64 model that get_config "
                    "writes; a config may not name a file (loading it would read outside the saved model). "
                    f"Received: proto={config['proto'][:80]!r}"
                ) from None
        return cls(**{**config, "proto": proto})

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "proto": base64.b64encode(self.proto).decode("ascii"),
                "sequence_length": self.sequence_length,
                "add_bos": self.add_bos,
                "add_eos": self.add_eos,
                "pad_id": self.pad_id,
            }
        )
        return config


def train_sentencepiece(texts, vocab_size, model_type="unigram", byte_fallback=True, **trainer_kwargs):
    """Train a SentencePiece model on `texts` and return it serialized (for `SentencePieceTokenizer`).

    Needs the `sentencepiece` pip package (imported here only). The model
    has PAD 0, UNK 1, BOS 2, EOS 3 and a `[MASK]` control piece 4 (for
    masked language modelling), keeps the text as is (identity
    normalization, whitespace kept) and, with `byte_fallback`, spells
    unseen characters as UTF-8 bytes, so `detokenize(tokenize(x)) == x` for
    any text without leading whitespace.

    Args:
        texts: iterable of str, one example each (may contain newlines).
        vocab_size: int, pieces in the vocabulary (more than 261 with
            `byte_fallback`: 5 special ids + 256 bytes).
        model_type: `"unigram"` (default), `"bpe"`, `"word"` or `"char"`.
        byte_fallback: bool. Defaults to True.
        **trainer_kwargs: more `sentencepiece.SentencePieceTrainer.train`
            options (e.g. `input_sentence_size`, `character_coverage`).

    Returns:
        bytes, the serialized model.

    Raises:
        ImportError: if `sentencepiece` is not installed (`pip install sentencepiece`).
        ValueError: for a vocabulary too small or no texts.
    """
    try:
        import sentencepiece
    except ImportError as error:
        raise ImportError(
            "train_sentencepiece needs the `sentencepiece` package: `pip install sentencepiece` "
            "(or the 'data' extra of keras-perceiver)."
        ) from error
    texts = [str(t) for t in texts]
    if not texts:
        raise ValueError("train_sentencepiece: `texts` is empty. Expected at least one text.")
    minimum = MASK_ID + 2 + (256 if byte_fallback else 0)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < minimum:
        raise ValueError(
            f"`vocab_size` must be an integer >= {minimum} (special ids"
            f"{' + 256 byte pieces' if byte_fallback else ''} + at least one piece). "
            f"Received: vocab_size={vocab_size!r}"
        )
    options = dict(
        model_type=model_type,
        vocab_size=vocab_size,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        control_symbols=[MASK_PIECE],
        byte_fallback=byte_fallback,
        character_coverage=0.9995 if byte_fallback else 1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        max_sentence_length=1 << 16,
        num_threads=1,
        minloglevel=2,
    )
    options.update(trainer_kwargs)
    writer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=writer, **options)
    return writer.getvalue()
