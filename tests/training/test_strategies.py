"""Strategies by name: the right class and replica count, TF_CONFIG checks, chief and worker directories."""

import json
import os
import types

import pytest
import tensorflow as tf

from tests.test_case import TestCase
from training.strategies import get_strategy, is_chief, num_workers, split_cpu, tf_config, worker_dir


def _fake_multi_worker(task_type, task_id, workers=2):
    spec = tf.train.ClusterSpec({"worker": [f"localhost:{1000 + i}" for i in range(workers)]})
    resolver = types.SimpleNamespace(task_type=task_type, task_id=task_id, cluster_spec=lambda: spec)
    return types.SimpleNamespace(cluster_resolver=resolver)


class StrategiesTest(TestCase):
    def test_cpu_and_auto_on_a_cpu_machine(self):
        strategy = get_strategy("cpu")
        self.assertIsInstance(strategy, tf.distribute.OneDeviceStrategy)
        self.assertEqual(strategy.num_replicas_in_sync, 1)
        if not tf.config.list_physical_devices("GPU") and not tf.config.list_physical_devices("TPU"):
            self.assertIsInstance(get_strategy("auto"), tf.distribute.OneDeviceStrategy)

    def test_mirrored_on_the_logical_cpus(self):
        strategy = get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
        self.assertIsInstance(strategy, tf.distribute.MirroredStrategy)
        self.assertEqual(strategy.num_replicas_in_sync, 2)
        self.assertTrue(is_chief(strategy))
        self.assertEqual(num_workers(strategy), 1)

    def test_invalid_names_and_arguments(self):
        with self.assertRaisesRegex(ValueError, "must be one of .*Received: strategy='gpu'"):
            get_strategy("gpu")
        with self.assertRaisesRegex(ValueError, "only used by strategy='mirrored'"):
            get_strategy("cpu", devices=["/cpu:0"])
        with self.assertRaisesRegex(ValueError, "positive integer"):
            split_cpu(0)

    def test_tpu_needs_a_name(self):
        os.environ.pop("TPU_NAME", None)
        with self.assertRaisesRegex(ValueError, "needs a TPU"):
            get_strategy("tpu")

    def test_multi_worker_needs_a_valid_tf_config(self):
        os.environ.pop("TF_CONFIG", None)
        self.assertIsNone(tf_config())
        with self.assertRaisesRegex(ValueError, "TF_CONFIG .* not set"):
            get_strategy("multi_worker")
        for bad in ("{not json", json.dumps({"cluster": {"worker": ["a:1"]}}), json.dumps([1])):
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("TF_CONFIG", bad)
                with self.assertRaisesRegex(ValueError, "TF_CONFIG"):
                    get_strategy("multi_worker")
        good = {"cluster": {"worker": ["localhost:1", "localhost:2"]}, "task": {"type": "worker", "index": 1}}
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TF_CONFIG", json.dumps(good))
            self.assertEqual(tf_config(), good)

    def test_chief_and_worker_directories(self):
        chief, other = _fake_multi_worker("worker", 0), _fake_multi_worker("worker", 1)
        self.assertTrue(is_chief(chief))
        self.assertFalse(is_chief(other))
        self.assertTrue(is_chief(_fake_multi_worker("chief", 0)))
        self.assertEqual(worker_dir("runs/x", chief), "runs/x")
        self.assertEqual(worker_dir("runs/x", other), os.path.join("runs/x", "worker_1"))
        self.assertEqual(num_workers(other), 2)
        self.assertEqual(worker_dir("runs/x", tf.distribute.get_strategy()), "runs/x")
