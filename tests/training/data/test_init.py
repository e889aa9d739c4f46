"""Tests of `training.data.get_reader`: names -> reader modules, `tfds:` names, clear errors."""

import pytest
import tensorflow as tf

from tests.test_case import TestCase
from training.data import READERS, TfdsReader, get_reader


class GetReaderTest(TestCase):
    def test_every_reader_module_has_load(self):
        for name in READERS:
            reader = get_reader(name)
            self.assertEqual(reader.__name__, f"training.data.{name}")
            self.assertTrue(callable(reader.load))
        # Every reader module of training/data (a module with `load`) is listed, and nothing else.
        import importlib
        import pkgutil

        import training.data

        modules = [info.name for info in pkgutil.iter_modules(training.data.__path__)]
        with_load = {
            name for name in modules if hasattr(importlib.import_module(f"training.data.{name}"), "load")
        }
        self.assertEqual(with_load, set(READERS))

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


class TfdsReaderTest(TestCase):
    def test_prepared_tfds_dataset_reads_like_a_reader(self):
        # tensorflow-datasets is a dependency: it must import, with its builder API.
        import tensorflow_datasets as tfds

        self.assertTrue(hasattr(tfds, "core"), "tensorflow-datasets imported without tfds.core")

        from training.data import digits

        class DigitsTfdsTest(tfds.core.GeneratorBasedBuilder):
            """scikit-learn's digits as a tensorflow-datasets builder, prepared offline in a temp dir."""

            VERSION = tfds.core.Version("1.0.0")

            def _info(self):
                features = {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
                return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(features))

            def _split_generators(self, dl_manager):
                return {split: self._generate_examples(split) for split in ("train", "test")}

            def _generate_examples(self, split):
                for index, (image, label) in enumerate(zip(*digits.load_arrays(split))):
                    yield index, {"image": image, "label": int(label)}

        data_dir = self.make_temp_dir()
        DigitsTfdsTest(data_dir=data_dir).download_and_prepare()
        dataset = get_reader("tfds:digits_tfds_test").load("test", data_dir=data_dir)
        self.assertEqual(int(dataset.cardinality()), 360)
        example = next(iter(dataset))
        self.assertEqual(sorted(example), ["image", "label"])
        self.assertEqual((example["image"].dtype, tuple(example["image"].shape)), (tf.uint8, (8, 8, 1)))
        # tfds shuffles the examples when it prepares them: compare the (image, label) pairs as sets.
        images, labels = digits.load_arrays("test")
        ours = sorted((image.tobytes(), int(label)) for image, label in zip(images, labels))
        theirs = sorted((e["image"].tobytes(), int(e["label"])) for e in dataset.as_numpy_iterator())
        self.assertEqual(ours, theirs)
