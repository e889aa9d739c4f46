"""Tests of the `fortunes` reader on the Debian fortune packages (CI installs fortunes and fortunes-*)."""

import os

import pytest

from tests.test_case import TestCase
from tests.training.data.helpers import as_numpy, assert_unbatched_dict, debian_data_dir
from training.data import fortunes


class FortunesTest(TestCase):
    def setUp(self):
        super().setUp()
        if self._testMethodName != "test_file_parsing_data_dir_and_errors":  # that one writes its own files
            self.directory = debian_data_dir("fortunes")  # skips (fails under CI=true) without the data

    def test_languages_labels_and_split(self):
        languages = ("de", "zh")
        dataset = fortunes.load("test", languages=languages, with_labels=True)
        assert_unbatched_dict(dataset, {"text": ("string", ()), "label": ("int64", ())})
        data = as_numpy(dataset)
        self.assertEqual(set(data["label"].tolist()), {0, 1})
        german = [text for text, label in zip(data["text"], data["label"]) if label == 0]
        chinese = [text for text, label in zip(data["text"], data["label"]) if label == 1]
        # Chinese quotes are mostly CJK characters; the ANSI colour codes of the Debian files are gone.
        self.assertTrue(all("\x1b" not in text for text in chinese))
        visible = [ch for text in chinese for ch in text if not ch.isspace()]
        self.assertGreater(sum(ch >= "\u2e80" for ch in visible) / len(visible), 0.5)
        self.assertTrue(any(ch in "äöüß" for text in german for ch in text))
        train_texts, _ = fortunes.load_arrays("train", languages=languages)
        self.assertEqual(set(train_texts) & set(data["text"]), set())
        total = len(train_texts) + len(data["text"])
        self.assertAllClose(len(data["text"]) / total, 0.05, atol=0.01)
        self.assertTrue(all(text == text.strip() and text for text in train_texts[:1000]))
        # A validation split carved from train (checkpoint selection): disjoint from train and test, and the
        # test split does not move.
        options = {"languages": languages, "validation_fraction": 0.05}
        validation, _ = fortunes.load_arrays("validation", **options)
        carved_train, _ = fortunes.load_arrays("train", **options)
        self.assertEqual(fortunes.load_arrays("test", **options)[0], data["text"])
        self.assertEqual(set(validation) & (set(carved_train) | set(data["text"])), set())
        self.assertEqual(sorted(validation + carved_train), sorted(train_texts))
        self.assertAllClose(len(validation) / total, 0.05, atol=0.01)

    def test_all_languages_and_determinism(self):
        counts = {
            language: len(fortunes._read_language(language, self.directory))
            for language in fortunes.LANGUAGES
        }
        # ~94k quotes in 8 languages (Debian's fortunes packages); each language has thousands.
        self.assertGreater(sum(counts.values()), 90000)
        self.assertGreater(min(counts.values()), 1000)
        corpus = fortunes.load("test", languages="en,ru")
        assert_unbatched_dict(corpus, {"text": ("string", ())})
        again = fortunes.load("test", languages=("en", "ru"))
        self.assertEqual(as_numpy(corpus, take=5)["text"], as_numpy(again, take=5)["text"])

    def test_file_parsing_data_dir_and_errors(self):
        directory = self.make_temp_dir()
        os.makedirs(os.path.join(directory, "de"))
        with open(os.path.join(directory, "de", "witze"), "w", encoding="utf-8") as f:
            f.write("Erster Spruch.\n%\n\n  Zweiter\n  Spruch.\n%\n%\n")
        for ignored in ("witze.dat", "witze.u8"):
            with open(os.path.join(directory, "de", ignored), "w") as f:
                f.write("ignored\n%\n")
        texts = []
        for split in ("train", "test"):
            texts += fortunes.load_arrays(split, data_dir=directory, languages=["de"], test_fraction=0.5)[0]
        self.assertEqual(sorted(texts), ["Erster Spruch.", "Zweiter\n  Spruch."])
        with pytest.raises(FileNotFoundError, match="apt-get install fortunes-pl"):
            fortunes.load("train", data_dir=directory, languages=["pl"])
        with pytest.raises(FileNotFoundError, match="apt-get install fortunes"):
            fortunes.load("train", data_dir=os.path.join(directory, "missing"))
        with pytest.raises(ValueError, match="unknown language.*Received: 'xx'"):
            fortunes.load("train", languages=["xx"])
