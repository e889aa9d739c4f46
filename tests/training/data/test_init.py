"""Tests of `training.data.get_reader`: names -> reader modules, `tfds:` names, clear errors."""

import pytest

from tests.test_case import TestCase
from training.data import READERS, TfdsReader, get_reader


class GetReaderTest(TestCase):
    def test_every_reader_module_has_load(self):
        for name in READERS:
            reader = get_reader(name)
            self.assertEqual(reader.__name__, f"training.data.{name}")
            self.assertTrue(callable(reader.load))
        self.assertEqual(len(READERS), 7)

    def test_unknown_name(self):
        with pytest.raises(ValueError, match="unknown data set.*'digits'.*Received: 'imagenet'"):
            get_reader("imagenet")
        with pytest.raises(TypeError, match="must be a str"):
            get_reader(3)

    def test_tfds_name_never_downloads(self):
        reader = get_reader("tfds:mnist")
        self.assertIsInstance(reader, TfdsReader)
        self.assertEqual(reader.name, "mnist")
        with pytest.raises(ValueError, match="never download"):
            reader.load("train", download=True)
        data_dir = self.make_temp_dir()
        # No prepared data in an empty directory: a clear error, whether or not tensorflow-datasets imports.
        with pytest.raises((FileNotFoundError, ImportError), match="tfds:mnist"):
            reader.load("test", data_dir=data_dir)
        with pytest.raises(ValueError, match="empty tensorflow-datasets name"):
            get_reader("tfds:")
