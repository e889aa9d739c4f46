"""Tests of the `glue` reader on tensorflow-datasets' mock data (no download): one example format for every
task, the task index, a validation part carved from training data and disjoint from it, GLUE's validation
split as the held-out test split, named errors."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.test_case import TestCase
from training.data import glue


def rows(dataset):
    return list(dataset.as_numpy_iterator())


class GlueReaderTest(TestCase):
    def test_every_task_reads_in_one_format(self):
        with tfds.testing.mock_data(num_examples=12):
            for name in glue.TASKS:
                examples = rows(glue.load("test", tasks=name))
                self.assertLen(examples, 12)
                for example in examples:
                    self.assertEqual(sorted(example), ["label", "task", "text", "text_pair"])
                    self.assertEqual(example["task"], 0)
                    self.assertIsInstance(example["text"], bytes)
                    if glue.TASKS[name].text_pair_key is None:
                        self.assertEqual(example["text_pair"], b"")
                    self.assertEqual(example["label"].dtype, np.float32)
                    if not glue.TASKS[name].is_regression:
                        self.assertIn(example["label"], range(glue.TASKS[name].num_classes))
            # Several tasks: concatenated in the given order, each example with its task's index.
            examples = rows(glue.load("test", tasks="rte,stsb,mnli"))
            self.assertEqual([e["task"] for e in examples], [0] * 12 + [1] * 12 + [2] * 12)
            self.assertLen(rows(glue.load("test_mismatched", tasks="mnli")), 12)
            self.assertEqual(glue.parse_tasks("all"), tuple(glue.TASKS))

    def test_validation_is_carved_from_training_data_by_content(self):
        with tfds.testing.mock_data(num_examples=60):
            train = rows(glue.load("train", tasks="mrpc", validation_fraction=0.3))
            validation = rows(glue.load("validation", tasks="mrpc", validation_fraction=0.3))
            pair = lambda e: (e["text"], e["text_pair"])  # noqa: E731
            self.assertEqual(len(train) + len(validation), 60)
            self.assertTrue(validation and train)
            self.assertFalse({pair(e) for e in train} & {pair(e) for e in validation})
            # The same examples on every call (a stable hash, not a random draw).
            again = rows(glue.load("validation", tasks="mrpc", validation_fraction=0.3))
            self.assertEqual([pair(e) for e in again], [pair(e) for e in validation])
            fractions = [
                np.mean([bool(glue._in_validation(e["text"], e["text_pair"], 0.3)) for e in validation]),
                np.mean([bool(glue._in_validation(e["text"], e["text_pair"], 0.3)) for e in train]),
            ]
            self.assertEqual(fractions, [1.0, 0.0])

    def test_errors_name_the_received_values(self):
        with pytest.raises(ValueError, match=r"unknown split.*Received: 'dev'"):
            glue.load("dev")
        with pytest.raises(
            ValueError, match=r"tasks must be 'all' or distinct names.*Received: tasks='wnli'"
        ):
            glue.load("test", tasks="wnli")
        with pytest.raises(ValueError, match=r"Received: tasks='cola,cola'"):
            glue.parse_tasks("cola,cola")
        with pytest.raises(ValueError, match=r"validation_fraction=1.5"):
            glue.load("train", validation_fraction=1.5)
        with pytest.raises(ValueError, match="test_mismatched split is MNLI's"):
            glue.load("test_mismatched", tasks="rte")
        # Nothing prepared: a clear error naming the builder, never a download.
        with pytest.raises((FileNotFoundError, ImportError), match="tfds:glue/cola"):
            glue.load("test", data_dir=self.make_temp_dir(), tasks="cola")
