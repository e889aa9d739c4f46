"""Tests of the UTF-8 byte tokenizer (tf.data- and SavedModel-friendly)."""

import os

import numpy as np
import tensorflow as tf

from keras_perceiver.tokenizers import byte_tokenizer
from keras_perceiver.tokenizers.byte_tokenizer import ByteTokenizer
from tests.test_case import TestCase

TEXTS = ["Hello, world!", "héllo", "你好，世界", "emoji 🙂 ok", ""]


def expected_ids(text, add_special_tokens=False, sequence_length=None):
    """Independent spec: UTF-8 bytes + 6, optionally wrapped in [CLS]=4 ... [SEP]=5.

    Truncation to `sequence_length` cuts the bytes and keeps [CLS] and [SEP].
    """
    ids = [b + 6 for b in text.encode("utf-8")]
    if sequence_length is not None:
        ids = ids[: sequence_length - (2 if add_special_tokens else 0)]
    return [4, *ids, 5] if add_special_tokens else ids


def padded(rows, length):
    return np.array([row[:length] + [0] * (length - len(row[:length])) for row in rows], "int32")


class ByteTokenizerTest(TestCase):
    def test_special_ids_and_vocabulary(self):
        self.assertEqual(
            (
                byte_tokenizer.PAD_ID,
                byte_tokenizer.BOS_ID,
                byte_tokenizer.EOS_ID,
                byte_tokenizer.MASK_ID,
                byte_tokenizer.CLS_ID,
                byte_tokenizer.SEP_ID,
            ),
            (0, 1, 2, 3, 4, 5),
        )
        self.assertEqual(ByteTokenizer().vocab_size, 262)

    def test_ids_are_utf8_bytes_plus_six(self):
        outputs = ByteTokenizer()(tf.constant(TEXTS))
        rows = [expected_ids(t) for t in TEXTS]
        length = max(len(r) for r in rows)
        np.testing.assert_array_equal(outputs["token_ids"], padded(rows, length))
        np.testing.assert_array_equal(outputs["padding_mask"], padded(rows, length) > 0)
        self.assertEqual(outputs["token_ids"].dtype, tf.int32)
        self.assertEqual(outputs["padding_mask"].dtype, tf.bool)

    def test_multibyte_chinese_text(self):
        text = "你好，世界"
        ids = ByteTokenizer()(text)["token_ids"].numpy()
        # Five characters of three UTF-8 bytes each.
        self.assertEqual(ids.shape, (15,))
        self.assertEqual(ids[:3].tolist(), [0xE4 + 6, 0xBD + 6, 0xA0 + 6])

    def test_special_tokens_match_transformers(self):
        from transformers import PerceiverTokenizer

        reference = PerceiverTokenizer()
        self.assertEqual(
            [
                reference.pad_token_id,
                reference.bos_token_id,
                reference.eos_token_id,
                reference.mask_token_id,
                reference.cls_token_id,
                reference.sep_token_id,
            ],
            [0, 1, 2, 3, 4, 5],
        )
        tokenizer = ByteTokenizer(add_special_tokens=True)
        outputs = tokenizer(tf.constant(TEXTS))
        hf = reference(TEXTS, padding=True)
        np.testing.assert_array_equal(outputs["token_ids"], np.array(hf["input_ids"]))
        np.testing.assert_array_equal(outputs["padding_mask"], np.array(hf["attention_mask"], bool))
        for text in TEXTS:
            self.assertEqual(tokenizer(text)["token_ids"].numpy().tolist(), expected_ids(text, True))
        # Truncation keeps [CLS] and [SEP], as transformers does.
        fixed = ByteTokenizer(sequence_length=6, add_special_tokens=True)(tf.constant(TEXTS))
        np.testing.assert_array_equal(
            fixed["token_ids"], padded([expected_ids(t, True, 6) for t in TEXTS], 6)
        )
        hf = reference(TEXTS, max_length=6, truncation=True, padding="max_length")
        np.testing.assert_array_equal(fixed["token_ids"], np.array(hf["input_ids"]))
        np.testing.assert_array_equal(fixed["padding_mask"], np.array(hf["attention_mask"], bool))

    def test_sentence_pairs_match_transformers(self):
        from transformers import PerceiverTokenizer

        reference = PerceiverTokenizer()
        rng = np.random.default_rng(0)
        alphabet = ["a", "b", "é", "你", " "]
        for length in (3, 4, 7, 12, 30):
            tokenizer = ByteTokenizer(sequence_length=length, add_special_tokens=True)
            first = ["".join(rng.choice(alphabet, size=rng.integers(0, 12))) for _ in range(30)]
            second = ["".join(rng.choice(alphabet, size=rng.integers(0, 12))) for _ in range(30)]
            ours = tokenizer(tf.constant(first), text_pair=tf.constant(second))
            expected = reference(
                first, second, truncation="longest_first", max_length=length, padding="max_length"
            )
            np.testing.assert_array_equal(
                ours["token_ids"], np.array(expected["input_ids"]), err_msg=str(length)
            )
            np.testing.assert_array_equal(ours["padding_mask"], np.array(expected["attention_mask"], bool))
        # Unpadded, without truncation: [CLS] a [SEP] b [SEP]; a scalar pair; no special tokens: a + b.
        pair = ByteTokenizer(add_special_tokens=True)("ab", text_pair="c")["token_ids"].numpy().tolist()
        self.assertEqual(pair, [4, *expected_ids("ab"), 5, *expected_ids("c"), 5])
        plain = ByteTokenizer(sequence_length=3)(["ab"], text_pair=["cd"])["token_ids"].numpy().tolist()
        self.assertEqual(plain, [[*expected_ids("ab"), *expected_ids("c")]])  # a tie: the pair loses the byte
        with self.assertRaisesRegex(ValueError, r"text_pair.*shape of `inputs`.*\(2,\).*\(\)"):
            ByteTokenizer()(["a", "b"], text_pair="c")
        with self.assertRaisesRegex(TypeError, "text_pair"):
            ByteTokenizer()(["a"], text_pair=tf.constant([1]))

    def test_truncation_and_padding(self):
        outputs = ByteTokenizer(sequence_length=7)(tf.constant(TEXTS))
        rows = [expected_ids(t) for t in TEXTS]
        np.testing.assert_array_equal(outputs["token_ids"], padded(rows, 7))
        np.testing.assert_array_equal(outputs["padding_mask"], padded(rows, 7) > 0)
        self.assertEqual(outputs["token_ids"].shape, (5, 7))
        scalar = ByteTokenizer(sequence_length=4)("ab")
        np.testing.assert_array_equal(scalar["token_ids"], [103, 104, 0, 0])
        np.testing.assert_array_equal(scalar["padding_mask"], [True, True, False, False])

    def test_inside_dataset_map(self):
        tokenizer = ByteTokenizer(sequence_length=10)
        dataset = tf.data.Dataset.from_tensor_slices(TEXTS).batch(2).map(tokenizer)
        token_ids = np.concatenate([batch["token_ids"].numpy() for batch in dataset])
        np.testing.assert_array_equal(token_ids, padded([expected_ids(t) for t in TEXTS], 10))
        unbatched = tf.data.Dataset.from_tensor_slices(TEXTS).map(tokenizer).batch(5)
        np.testing.assert_array_equal(next(iter(unbatched))["token_ids"], token_ids)

    def test_inside_a_saved_model(self):
        tokenizer = ByteTokenizer(sequence_length=12, add_special_tokens=True)

        class Serving(tf.Module):
            def __init__(self):
                super().__init__()
                self.tokenizer = tokenizer

            @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
            def tokenize(self, texts):
                return self.tokenizer(texts)

        path = os.path.join(self.make_temp_dir(), "tokenizer")
        tf.saved_model.save(Serving(), path)
        reloaded = tf.saved_model.load(path)
        outputs = reloaded.tokenize(tf.constant(TEXTS))
        expected = tokenizer(tf.constant(TEXTS))
        np.testing.assert_array_equal(outputs["token_ids"], expected["token_ids"])
        np.testing.assert_array_equal(outputs["padding_mask"], expected["padding_mask"])
        np.testing.assert_array_equal(
            outputs["token_ids"], padded([expected_ids(t, True, 12) for t in TEXTS], 12)
        )

    def test_detokenize_round_trip(self):
        tokenizer = ByteTokenizer(sequence_length=40, add_special_tokens=True)
        strings = tokenizer.detokenize(tokenizer(tf.constant(TEXTS))["token_ids"])
        self.assertEqual([s.decode("utf-8") for s in strings.numpy()], TEXTS)
        # A multi-byte character cut by truncation becomes U+FFFD.
        cut = ByteTokenizer(sequence_length=4)("ab你")["token_ids"]
        self.assertEqual(tokenizer.detokenize(cut[None]).numpy()[0].decode("utf-8"), "ab\ufffd")

    def test_config_round_trip(self):
        tokenizer = ByteTokenizer(sequence_length=9, add_special_tokens=True)
        restored = self.run_config_round_trip(tokenizer)
        np.testing.assert_array_equal(restored("héllo")["token_ids"], tokenizer("héllo")["token_ids"])

    def test_errors_name_expected_and_received_values(self):
        with self.assertRaisesRegex(TypeError, r"string tensor\. Received: dtype=int32"):
            ByteTokenizer()(tf.constant([1, 2]))
        with self.assertRaisesRegex(ValueError, r"sequence_length=0"):
            ByteTokenizer(sequence_length=0)
        with self.assertRaisesRegex(ValueError, r"at least 3 with special tokens.*sequence_length=2"):
            ByteTokenizer(sequence_length=2, add_special_tokens=True)
