"""Hashed n-gram embeddings of token ids: (B, L) -> (B, L, D), the identity of the n tokens ending at each."""

import keras
from keras import ops

from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.validation import check_integer_dtype, check_positive_int, check_rank

# Hash of an n-gram: h = (h * MULTIPLIER + id + 1) mod MODULUS over its ids (oldest first), one multiplier per
# hash function; the bucket is h mod num_buckets. MODULUS * max(MULTIPLIERS) + ids stays below 2^31, so the
# arithmetic is exact in int32 on every backend (and in TFLite's FloorMod).
MODULUS = 999_983
MULTIPLIERS = (1_009, 1_741, 1_931, 1_303)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class HashedNGramEmbedding(keras.layers.Layer):
    """Sum of embeddings of the hashed n-grams that end at each position, projected to `output_dim`.

    For each size n in `ngram_sizes` and each of `num_hashes` hash
    functions, the n token ids ending at position i (ids before the start
    count as 0, the PAD id) are hashed into one of `num_buckets` rows of
    that size's table (B, L, `embedding_dim`); the rows of one size are
    summed (several hashes per n-gram: the Bloom / multi-hash embedding
    that keeps distinct n-grams apart despite collisions), the sizes are
    concatenated and a bias-free Dense layer maps them to `output_dim`.
    The tables are `keras.layers.Embedding` sublayers (`tables[i]`, one per
    size), so `keras.Model.quantize("int8")` stores them in int8 with a
    scale per row (`training.export --weight_quantization=int8`).
    On UTF-8 bytes, sizes 3, 6 and 9 cover one, two and three CJK
    characters: the character and character-pair identities that
    character-window classifiers use, which byte embeddings alone have to
    compose.

    Source: hash embeddings of token-free models (CANINE, Clark et al. 2022,
    section 3.1: several hash functions of code points, each with its own
    table) applied to byte n-grams as in the hashed n-gram features of
    fastText (Bojanowski et al. 2017, section 3.2); not in the Perceiver
    papers, which embed single bytes.

    Args:
        ngram_sizes: tuple of positive ints, the n-gram lengths in tokens.
        num_buckets: int, rows of each size's table. Defaults to 8192.
        embedding_dim: int, width of the tables. Defaults to 32.
        output_dim: int, D, width of the output. Defaults to 128.
        num_hashes: int in [1, 4], hash functions per n-gram. Defaults to 2.
        embeddings_initializer: initializer of the tables and the projection;
            truncated normal with stddev 0.02 by default.

    Call arguments:
        token_ids: (B, L) integer ids in [0, 2^20).

    Returns:
        (B, L, output_dim) in the layer's compute dtype.

    Raises:
        ValueError: for an empty or non-positive `ngram_sizes`, non-positive
            sizes, `num_hashes` outside [1, 4], or ids not of rank 2.
        TypeError: for ids that are not integers.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers.hashed_ngram_embedding import HashedNGramEmbedding
    >>> layer = HashedNGramEmbedding((3, 6), num_buckets=64, embedding_dim=4, output_dim=8)
    >>> tuple(layer(keras.ops.ones((2, 10), "int32")).shape)
    (2, 10, 8)
    """

    def __init__(
        self,
        ngram_sizes,
        num_buckets=8192,
        embedding_dim=32,
        output_dim=128,
        num_hashes=2,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        sizes = tuple(ngram_sizes) if isinstance(ngram_sizes, (list, tuple)) else None
        if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
            raise ValueError(
                "`ngram_sizes` must be a non-empty tuple of positive integers. "
                f"Received: ngram_sizes={ngram_sizes!r}"
            )
        check_positive_int("num_buckets", num_buckets)
        check_positive_int("embedding_dim", embedding_dim)
        check_positive_int("output_dim", output_dim)
        if isinstance(num_hashes, bool) or num_hashes not in range(1, len(MULTIPLIERS) + 1):
            raise ValueError(
                f"`num_hashes` must be an integer in [1, {len(MULTIPLIERS)}]. "
                f"Received: num_hashes={num_hashes!r}"
            )
        self.ngram_sizes = sizes
        self.num_buckets = num_buckets
        self.embedding_dim = embedding_dim
        self.output_dim = output_dim
        self.num_hashes = num_hashes
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer or default_kernel_initializer()
        )
        self.projection = keras.layers.Dense(
            output_dim,
            use_bias=False,
            kernel_initializer=clone_initializer(self.embeddings_initializer),
            dtype=self.dtype_policy,
            name="projection",
        )
        # One `keras.layers.Embedding` per size, so that `Model.quantize("int8")` stores the tables in int8.
        self.tables = [
            keras.layers.Embedding(
                num_buckets,
                embedding_dim,
                embeddings_initializer=clone_initializer(self.embeddings_initializer),
                dtype=self.dtype_policy,
                name=f"ngram_{n}_embeddings",
            )
            for n in sizes
        ]

    def build(self, token_ids_shape=None):
        for table in self.tables:
            table.build((None, None))
        self.projection.build((None, None, self.embedding_dim * len(self.ngram_sizes)))
        self.built = True

    def load_own_variables(self, store):
        # Since the tables became `keras.layers.Embedding` sublayers (keras-perceiver, December 2026), this
        # layer owns no variable; files written before that stored the tables here.
        if len(store.keys()):
            raise ValueError(
                f"{self.__class__.__name__} '{self.name}': the file stores {len(store.keys())} n-gram tables "
                "as the layer's own variables, the layout before the tables became `keras.layers.Embedding` "
                "sublayers (`tables[i].embeddings`). Expected: 0 own variables. Received: "
                f"{len(store.keys())}. Load the file with the earlier version and move each table into "
                "`tables[i].embeddings`, or use its SavedModel export."
            )

    def buckets(self, token_ids, n, hash_index):
        """(B, L) int32 bucket of the n-gram ending at each position under hash function `hash_index`."""
        ids = ops.cast(token_ids, "int32")
        padded = ops.pad(ids, [[0, 0], [n - 1, 0]])
        length = ops.shape(ids)[1]
        value = ops.zeros_like(ids)
        for k in range(n):  # oldest id first: positions i - n + 1 ... i
            value = ops.mod(value * MULTIPLIERS[hash_index] + padded[:, k : k + length] + 1, MODULUS)
        return ops.mod(value, self.num_buckets)

    def call(self, token_ids):
        name = self.__class__.__name__
        check_rank("token_ids", token_ids, 2, name)
        check_integer_dtype("token_ids", token_ids, name)
        parts = []
        for n, table in zip(self.ngram_sizes, self.tables):
            rows = [table(self.buckets(token_ids, n, h)) for h in range(self.num_hashes)]
            parts.append(rows[0] if len(rows) == 1 else ops.sum(ops.stack(rows), axis=0))
        return self.projection(ops.concatenate(parts, axis=-1))

    def compute_output_spec(self, token_ids):
        return keras.KerasTensor(tuple(token_ids.shape) + (self.output_dim,), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "ngram_sizes": list(self.ngram_sizes),
                "num_buckets": self.num_buckets,
                "embedding_dim": self.embedding_dim,
                "output_dim": self.output_dim,
                "num_hashes": self.num_hashes,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config
