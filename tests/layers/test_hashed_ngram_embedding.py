"""Tests of the hashed n-gram embedding: exact values against a numpy reference, locality, errors."""

import keras
import numpy as np
import pytest

from keras_perceiver.layers.hashed_ngram_embedding import MODULUS, MULTIPLIERS, HashedNGramEmbedding
from tests.test_case import TestCase

KWARGS = {"ngram_sizes": (1, 3), "num_buckets": 50, "embedding_dim": 4, "output_dim": 6, "num_hashes": 2}


def reference_buckets(ids, n, hash_index, num_buckets):
    """The bucket of each n-gram ending at each position, in Python integers (no overflow possible)."""
    buckets = np.zeros(ids.shape, np.int64)
    for b, row in enumerate(ids.tolist()):
        padded = [0] * (n - 1) + row
        for i in range(len(row)):
            value = 0
            for token in padded[i : i + n]:
                value = (value * MULTIPLIERS[hash_index] + token + 1) % MODULUS
            buckets[b, i] = value % num_buckets
    return buckets


class HashedNGramEmbeddingTest(TestCase):
    def setUp(self):
        super().setUp()
        self.token_ids = np.random.default_rng(0).integers(0, 262, size=(2, 9)).astype("int32")

    def test_layer_basics(self):
        self.run_layer_test(
            HashedNGramEmbedding,
            KWARGS,
            self.token_ids,
            expected_output_shape=(2, 9, 6),
            expected_num_trainable_weights=3,
        )

    def test_values_equal_the_numpy_reference(self):
        layer = HashedNGramEmbedding(**KWARGS)
        outputs = np.asarray(layer(self.token_ids))
        parts = []
        for n, table in zip((1, 3), layer.tables):
            table = np.asarray(table.embeddings)
            parts.append(sum(table[reference_buckets(self.token_ids, n, h, 50)] for h in range(2)))
        expected = np.concatenate(parts, axis=-1) @ np.asarray(layer.projection.kernel)
        self.assertAllClose(outputs, expected, atol=1e-6)

    def test_int32_hash_is_exact_for_the_largest_ids(self):
        layer = HashedNGramEmbedding((9,), num_buckets=8191, num_hashes=4)
        ids = np.full((1, 12), 2**20 - 1, np.int32)
        ids[0, ::3] = np.arange(4) * 77_777
        for h in range(4):
            self.assertAllClose(np.asarray(layer.buckets(ids, 9, h)), reference_buckets(ids, 9, h, 8191))

    def test_output_depends_only_on_the_n_gram_ending_at_each_position(self):
        layer = HashedNGramEmbedding((3,), num_buckets=1000, embedding_dim=4, output_dim=4)
        changed = self.token_ids.copy()
        changed[:, 4] = (changed[:, 4] + 1) % 262
        moved = np.any(
            np.abs(np.asarray(layer(changed)) - np.asarray(layer(self.token_ids))) > 0, axis=(0, 2)
        )
        self.assertEqual(np.flatnonzero(moved).tolist(), [4, 5, 6])

    def test_errors_name_expected_and_received_values(self):
        for bad in ((), (0, 3), [2.5], "3", None):
            with pytest.raises(ValueError, match=r"ngram_sizes.*Received: ngram_sizes="):
                HashedNGramEmbedding(bad)
        with pytest.raises(ValueError, match=r"num_hashes.*\[1, 4\].*Received: num_hashes=5"):
            HashedNGramEmbedding((3,), num_hashes=5)
        with pytest.raises(ValueError, match=r"num_buckets.*Received: num_buckets=0"):
            HashedNGramEmbedding((3,), num_buckets=0)
        layer = HashedNGramEmbedding((3,))
        with pytest.raises(TypeError, match="token_ids"):
            layer(np.zeros((2, 4), "float32"))
        with pytest.raises(ValueError, match="rank"):
            layer(np.zeros((4,), "int32"))

    def test_int8_quantization_of_the_tables(self):
        inputs = keras.Input((9,), dtype="int32")
        model = keras.Model(inputs, HashedNGramEmbedding(**KWARGS)(inputs))
        expected = np.asarray(model(self.token_ids))
        model.quantize("int8")
        layer = model.layers[-1]
        self.assertTrue(all(table.embeddings.dtype == "int8" for table in layer.tables))
        quantized = np.asarray(model(self.token_ids))
        self.assertFalse(np.array_equal(quantized, expected))
        self.assertAllClose(quantized, expected, atol=0.02 * np.abs(expected).max())

    def test_files_with_the_tables_as_own_variables_get_a_clear_error(self):
        layer = HashedNGramEmbedding(**KWARGS)
        layer.build((None, 9))
        legacy = {"0": np.zeros((50, 4), "float32"), "1": np.zeros((50, 4), "float32")}
        expected = r"Expected: 0 own variables\. Received: 2.*tables\[i\]\.embeddings"
        with pytest.raises(ValueError, match=expected):
            layer.load_own_variables(legacy)
