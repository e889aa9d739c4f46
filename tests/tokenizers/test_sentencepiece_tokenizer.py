"""Tests of the SentencePiece tokenizer on a model trained here on real text (English fortunes)."""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_perceiver.models.perceiver_text_classifier import PerceiverTextClassifier
from keras_perceiver.tokenizers import sentencepiece_tokenizer
from keras_perceiver.tokenizers.sentencepiece_tokenizer import SentencePieceTokenizer, train_sentencepiece
from tests.test_case import TestCase

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORTUNES_DIR = "/usr/share/games/fortunes"  # Debian `fortunes` (installed by .ci/run)
TRAIN_FILES = ("computers", "science", "people")
HELD_OUT_FILE = "linux"
VOCAB_SIZE = 600


def read_quotes(name):
    """The %-separated quotes of one English fortune file, stripped."""
    with open(os.path.join(FORTUNES_DIR, name), "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    return [quote.strip() for quote in re.split(r"^%\s*$", text, flags=re.M) if quote.strip()]


_PROTO = []


def trained_proto():
    """One SentencePiece model per test session, trained on three fortune files (a few seconds)."""
    if not _PROTO:
        texts = [q for name in TRAIN_FILES for q in read_quotes(name)]
        _PROTO.append(train_sentencepiece(texts, VOCAB_SIZE))
    return _PROTO[0]


class SentencePieceTokenizerTest(TestCase):
    def setUp(self):
        super().setUp()
        if not all(os.path.isfile(os.path.join(FORTUNES_DIR, n)) for n in (*TRAIN_FILES, HELD_OUT_FILE)):
            self.skipTest(f"English fortunes not found in {FORTUNES_DIR}: apt-get install fortunes")
        self.proto = trained_proto()
        self.held_out = read_quotes(HELD_OUT_FILE)

    def test_round_trip_on_held_out_quotes(self):
        tokenizer = SentencePieceTokenizer(self.proto)
        self.assertEqual(tokenizer.vocab_size, VOCAB_SIZE)
        outputs = tokenizer(self.held_out)
        token_ids, mask = outputs["token_ids"].numpy(), outputs["padding_mask"].numpy()
        self.assertEqual(token_ids.dtype, np.int32)
        self.assertEqual(token_ids.shape, mask.shape)
        self.assertTrue(np.all((token_ids >= 0) & (token_ids < VOCAB_SIZE)))
        self.assertTrue(np.all(token_ids[~mask] == sentencepiece_tokenizer.PAD_ID))
        self.assertTrue(np.all(token_ids[mask] > sentencepiece_tokenizer.MASK_ID))  # no special ids from text
        # Subwords, not characters: fewer tokens than characters.
        self.assertLess(mask.sum(), 0.6 * sum(len(q) for q in self.held_out))
        decoded = [s.decode("utf-8") for s in tokenizer.detokenize(token_ids, mask).numpy()]
        mismatches = [(a, b) for a, b in zip(self.held_out, decoded) if a != b]
        exact = len(self.held_out) - len(mismatches)
        print(f"round trip: {exact}/{len(self.held_out)} held-out quotes exact")
        self.assertEqual(mismatches, [])
        # Without a mask the pad ids are dropped.
        self.assertEqual(
            tokenizer.detokenize(token_ids[:3]).numpy().tolist(), [d.encode() for d in decoded[:3]]
        )
        # Characters never seen in training come back through byte fallback.
        unseen = "naïve café — 你好"
        self.assertEqual(tokenizer.detokenize(tokenizer(unseen)["token_ids"]).numpy().decode(), unseen)

    def test_sequence_length_and_special_tokens(self):
        tokenizer = SentencePieceTokenizer(self.proto, sequence_length=12, add_bos=True, add_eos=True)
        free = SentencePieceTokenizer(self.proto)
        texts = self.held_out[:5] + ["ok"]
        ids = tokenizer(texts)
        self.assertEqual(tuple(ids["token_ids"].shape), (6, 12))
        unpadded = free(texts)
        rows = zip(unpadded["token_ids"].numpy(), unpadded["padding_mask"].numpy())
        for row, (text_ids, text_mask) in enumerate(rows):
            pieces = text_ids[text_mask][:10].tolist()
            expected = [sentencepiece_tokenizer.BOS_ID, *pieces, sentencepiece_tokenizer.EOS_ID]
            expected += [0] * (12 - len(expected))
            self.assertEqual(ids["token_ids"][row].numpy().tolist(), expected)
            self.assertEqual(ids["padding_mask"][row].numpy().sum(), len(pieces) + 2)
        # BOS/EOS decode to nothing.
        self.assertEqual(tokenizer.detokenize(ids["token_ids"][-1]).numpy(), b"ok")
        self.assertEqual(tokenizer.id_to_piece([4]).numpy().tolist(), [b"[MASK]"])

    def test_tf_data_config_and_keras_saving(self):
        tokenizer = SentencePieceTokenizer(self.proto, sequence_length=16)
        texts = self.held_out[:7]
        direct = tokenizer(texts)
        dataset = tf.data.Dataset.from_tensor_slices(texts).batch(3).map(tokenizer)
        batches = list(dataset)
        for key in ("token_ids", "padding_mask"):
            np.testing.assert_array_equal(np.concatenate([b[key] for b in batches]), direct[key])

        restored = self.run_config_round_trip(tokenizer)
        np.testing.assert_array_equal(restored(texts)["token_ids"], direct["token_ids"])

        strings = keras.Input(shape=(), dtype="string", name="text")
        model = keras.Model(strings, tokenizer(strings))
        path = os.path.join(self.make_temp_dir(), "tokenizer.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
        np.testing.assert_array_equal(reloaded(tf.constant(texts))["token_ids"], direct["token_ids"])

    def test_saved_model_export(self):
        tokenizer = SentencePieceTokenizer(self.proto, sequence_length=16)
        texts = tf.constant(self.held_out[:4])
        expected = tokenizer(texts)
        archive = keras.export.ExportArchive()
        archive.track(tokenizer)
        archive.add_endpoint(
            "tokenize", lambda x: tokenizer(x), input_signature=[tf.TensorSpec([None], tf.string)]
        )
        path = os.path.join(self.make_temp_dir(), "saved_model")
        archive.write_out(path, verbose=False)
        del archive
        loaded = tf.saved_model.load(path)
        outputs = loaded.tokenize(texts)
        np.testing.assert_array_equal(outputs["token_ids"], expected["token_ids"])
        np.testing.assert_array_equal(outputs["padding_mask"], expected["padding_mask"])
        # A fresh process (as a server would be): `load_saved_model` registers tensorflow-text's ops itself.
        script = (
            "import sys, numpy as np; from keras_perceiver.export import load_saved_model; "
            "tokenize = load_saved_model(sys.argv[1], endpoint='tokenize'); "
            "print(np.asarray(tokenize(np.array(sys.argv[2:], dtype=object))['token_ids']).tolist())"
        )
        job = subprocess.run(
            [sys.executable, "-c", script, path, *self.held_out[:4]],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=300,
        )
        self.assertEqual(job.returncode, 0, job.stderr[-3000:])
        fresh_ids = json.loads(job.stdout.strip().splitlines()[-1])
        self.assertEqual(fresh_ids, expected["token_ids"].numpy().tolist())

    def test_text_classifier_trains_on_sentencepiece_ids(self):
        # Which file does a quote come from: computers (0) or people (1)? Real text, real labels.
        tokenizer = SentencePieceTokenizer(self.proto, sequence_length=32)
        computers, people = read_quotes("computers")[:32], read_quotes("people")[:32]
        encoded = tokenizer(computers + people)
        inputs = {
            "token_ids": encoded["token_ids"].numpy(),
            "padding_mask": encoded["padding_mask"].numpy().astype("int32"),
        }
        labels = np.array([0] * 32 + [1] * 32)
        model = PerceiverTextClassifier.from_hyperparameters(
            num_classes=2,
            vocab_size=tokenizer.vocab_size,
            max_sequence_length=32,
            embedding_dim=32,
            num_latents=8,
            latent_dim=32,
            num_self_attends_per_block=1,
            num_cross_attention_heads=1,
            num_self_attention_heads=2,
            qk_channels=32,
            v_channels=32,
            initializer_range=0.1,
        )
        loss = model.default_loss()
        optimizer = keras.optimizers.Adam(3e-3)
        initial = float(loss(labels, model(inputs)))
        for _ in range(8):  # eager full-batch steps: no graph tracing, a few seconds
            with tf.GradientTape() as tape:
                value = loss(labels, model(inputs, training=True))
            gradients = tape.gradient(value, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        final = float(loss(labels, model(inputs)))
        print(f"text classifier on SentencePiece ids: loss {initial:.3f} -> {final:.3f}")
        self.assertLess(final, 0.8 * initial)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "not a valid SentencePiece model"):
            SentencePieceTokenizer(b"not a model")
        with self.assertRaisesRegex(ValueError, "neither"):
            SentencePieceTokenizer("no such file and not base64!")
        with self.assertRaisesRegex(TypeError, "Received: int"):
            SentencePieceTokenizer(3)
        with self.assertRaisesRegex(ValueError, "sequence_length.*Received: sequence_length=2"):
            SentencePieceTokenizer(self.proto, sequence_length=2, add_bos=True, add_eos=True)
        with self.assertRaisesRegex(ValueError, r"pad_id.*\[0, 600\).*Received: pad_id=600"):
            SentencePieceTokenizer(self.proto, pad_id=600)
        with self.assertRaisesRegex(TypeError, "string tensor.*Received: dtype=int32"):
            SentencePieceTokenizer(self.proto)(tf.constant([1, 2]))
        with self.assertRaisesRegex(ValueError, "vocab_size.*>= 262.*Received: vocab_size=100"):
            train_sentencepiece(["some text"], 100)
        with self.assertRaisesRegex(ValueError, "empty"):
            train_sentencepiece([], 300)
        # A proto given as a file path.
        path = os.path.join(self.make_temp_dir(), "fortunes.model")
        with open(path, "wb") as f:
            f.write(self.proto)
        self.assertEqual(SentencePieceTokenizer(path).vocab_size, VOCAB_SIZE)
        # ... but not in a config: loading a saved model or preset reads nothing outside it.
        config = {**SentencePieceTokenizer(path).get_config(), "proto": path}
        with self.assertRaisesRegex(ValueError, f"may not name a file.*Received: proto='{path}'"):
            SentencePieceTokenizer.from_config(config)
