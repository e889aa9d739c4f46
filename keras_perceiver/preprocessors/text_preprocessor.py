"""Token + learned position embedding for text, with tied output logits."""

import keras
import numpy as np
from keras import ops

from keras_perceiver.layers.hashed_ngram_embedding import HashedNGramEmbedding
from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.validation import check_integer_dtype, check_positive_int, check_rank


def _concrete(x):
    """Values of an eager tensor as numpy, or None for symbolic/traced tensors."""
    try:
        return np.asarray(ops.convert_to_numpy(x))
    except Exception:  # symbolic (Functional build, tf.function, jax.jit): checked at run time by the op
        return None


@keras.saving.register_keras_serializable(package="keras_perceiver")
class TextPreprocessor(keras.layers.Layer):
    """Embed token ids (B, L) as (B, L, D) = token embedding + learned position embedding.

    With `ngram_sizes`, a `HashedNGramEmbedding` of the ids (the hashed
    n-grams ending at each position, projected to D) is added too: an
    option of this library for byte-level tagging and classification
    trained from scratch, off by default (the published models have none).

    Called with `reverse=True` on hidden states (B, O, D) it returns tied
    logits (B, O, vocab_size) = `hidden @ token_embeddings^T [+ output_bias]`
    (the matmul of transformers' `PerceiverEmbeddingDecoder`). The masked
    LM's output bias belongs to its head (`LogitsBias`), so that a backbone
    holding this layer carries no masked-LM weight; `use_output_bias=True`
    is the version-1 layout (files saved before the backbone/head split,
    whose bias lives here), which `PerceiverMaskedLM.from_hyperparameters`
    rebuilds.

    Source: transformers `PerceiverTextPreprocessor`; DeepMind
    `io_processors.TextPreprocessor` / `EmbeddingDecoder`.

    Args:
        vocab_size: int. Defaults to 262 (UTF-8 bytes + 6 special ids).
        max_sequence_length: int, L_max positions. Defaults to 2048.
        embedding_dim: int, D (the reference's `d_model`). Defaults to 768.
        embeddings_initializer: initializer of both tables; truncated normal
            with stddev 0.02 by default.
        use_output_bias: bool, learn a (vocab_size,) bias for the tied logits
            of `reverse=True` (the masked LM's bias in the version-1 layout;
            new models keep it in the head). Defaults to False.
        ngram_sizes: tuple of n-gram lengths in tokens for a
            `HashedNGramEmbedding` (sublayer `ngram_embedding`), or () for
            none. Defaults to ().
        num_ngram_buckets: int, rows of each n-gram table. Defaults to 8192.
        ngram_embedding_dim: int, width of the n-gram tables (projected to
            D). Defaults to 32.

    Call arguments:
        inputs: (B, L) integer token ids, or (B, O, D) hidden states with
            `reverse=True`.
        reverse: bool. Defaults to False.

    Returns:
        (B, L, D) embeddings, or (B, O, vocab_size) logits when `reverse`.

    Raises:
        TypeError: for token ids that are not integers.
        ValueError: for non-positive sizes (`vocab_size`, `max_sequence_length`,
            `embedding_dim`, `num_ngram_buckets`, `ngram_embedding_dim`), a bad
            `ngram_sizes` (`HashedNGramEmbedding`), ids not of rank 2,
            L > `max_sequence_length`, ids
            outside [0, vocab_size) (checked on eager values), or hidden
            states whose width is not D.

    Example:
    >>> import keras
    >>> from keras_perceiver.preprocessors import TextPreprocessor
    >>> layer = TextPreprocessor(vocab_size=262, max_sequence_length=16, embedding_dim=8)
    >>> tuple(layer(keras.ops.ones((2, 10), "int32")).shape)
    (2, 10, 8)
    """

    def __init__(
        self,
        vocab_size=262,
        max_sequence_length=2048,
        embedding_dim=768,
        embeddings_initializer=None,
        use_output_bias=False,
        ngram_sizes=(),
        num_ngram_buckets=8192,
        ngram_embedding_dim=32,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("vocab_size", vocab_size)
        check_positive_int("max_sequence_length", max_sequence_length)
        check_positive_int("embedding_dim", embedding_dim)
        check_positive_int("num_ngram_buckets", num_ngram_buckets)
        check_positive_int("ngram_embedding_dim", ngram_embedding_dim)
        self.vocab_size = vocab_size
        self.max_sequence_length = max_sequence_length
        self.embedding_dim = embedding_dim
        self.use_output_bias = use_output_bias
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer or default_kernel_initializer()
        )
        self.ngram_sizes = tuple(ngram_sizes or ())
        self.num_ngram_buckets = num_ngram_buckets
        self.ngram_embedding_dim = ngram_embedding_dim
        self.ngram_embedding = None
        if self.ngram_sizes:
            self.ngram_embedding = HashedNGramEmbedding(
                self.ngram_sizes,
                num_buckets=num_ngram_buckets,
                embedding_dim=ngram_embedding_dim,
                output_dim=embedding_dim,
                embeddings_initializer=clone_initializer(self.embeddings_initializer),
                dtype=self.dtype_policy,
                name="ngram_embedding",
            )

    def build(self, inputs_shape=None):
        self.token_embeddings = self.add_weight(
            name="token_embeddings",
            shape=(self.vocab_size, self.embedding_dim),
            initializer=clone_initializer(self.embeddings_initializer),
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(self.max_sequence_length, self.embedding_dim),
            initializer=clone_initializer(self.embeddings_initializer),
        )
        self.output_bias = None
        if self.use_output_bias:
            self.output_bias = self.add_weight(
                name="output_bias", shape=(self.vocab_size,), initializer="zeros"
            )
        if self.ngram_embedding is not None:
            self.ngram_embedding.build(inputs_shape)
        self.built = True

    def call(self, inputs, reverse=False):
        name = self.__class__.__name__
        if reverse:
            check_rank("inputs", inputs, 3, name)
            if inputs.shape[-1] != self.embedding_dim:
                raise ValueError(
                    f"{name}: hidden states must have {self.embedding_dim} channels to be decoded "
                    f"with the tied embeddings. Received: inputs.shape={tuple(inputs.shape)}"
                )
            kernel = ops.cast(self.token_embeddings, self.compute_dtype)
            logits = ops.matmul(inputs, ops.transpose(kernel))
            if self.output_bias is not None:
                logits = logits + ops.cast(self.output_bias, self.compute_dtype)
            return logits
        check_rank("token_ids", inputs, 2, name)
        check_integer_dtype("token_ids", inputs, name)
        length = inputs.shape[1]
        if length is not None and length > self.max_sequence_length:
            raise ValueError(
                f"{name}: sequences of {length} tokens exceed max_sequence_length="
                f"{self.max_sequence_length}. Received: token_ids.shape={tuple(inputs.shape)}"
            )
        values = _concrete(inputs)
        if values is not None and values.size and (values.min() < 0 or values.max() >= self.vocab_size):
            raise ValueError(
                f"{name}: token ids must lie in [0, {self.vocab_size}). "
                f"Received: min={values.min()}, max={values.max()}"
            )
        tokens = ops.take(ops.cast(self.token_embeddings, self.compute_dtype), inputs, axis=0)
        positions = ops.cast(self.position_embeddings, self.compute_dtype)[: ops.shape(inputs)[1]]
        embeddings = tokens + positions[None]
        if self.ngram_embedding is not None:
            embeddings = embeddings + self.ngram_embedding(inputs)
        return embeddings

    def compute_output_spec(self, inputs, reverse=False):
        if reverse:
            shape = tuple(inputs.shape[:-1]) + (self.vocab_size,)
        else:
            shape = tuple(inputs.shape) + (self.embedding_dim,)
        return keras.KerasTensor(shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "max_sequence_length": self.max_sequence_length,
                "embedding_dim": self.embedding_dim,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "use_output_bias": self.use_output_bias,
                "ngram_sizes": list(self.ngram_sizes),
                "num_ngram_buckets": self.num_ngram_buckets,
                "ngram_embedding_dim": self.ngram_embedding_dim,
            }
        )
        return config
