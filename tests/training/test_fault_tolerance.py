"""Multi-process tests of `training.train`: a SIGKILLed run resumes to the same weights; multi-worker sync.

Both run the real CLI (`python -m training.train`) on the real digits data
with a tiny model for a few steps, in subprocesses with timeouts so that CI
never hangs.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_perceiver  # noqa: F401 - registers the model classes for load_model
from tests.test_case import TestCase
from training import plots
from training.callbacks import HISTORY_FILE

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A tiny digits model (about 9k parameters) with dropout, so that resuming must also restore the
# random state of the dropout layers.
TINY_MODEL_FLAGS = [
    "--override=num_latents=8",
    "--override=latent_dim=16",
    "--override=num_self_attends_per_block=1",
    "--override=num_self_attention_heads=2",
    "--override=query_channels=16",
    "--override=num_bands=2",
    "--override=dropout=0.1",
]
COMMON_FLAGS = [
    "--task=digits",
    "--batch_size=16",
    "--seed=3",
    "--jit_compile=false",
    "--tensorboard=false",
    "--export=false",
    "--verbose=0",
    *TINY_MODEL_FLAGS,
]
PROCESS_TIMEOUT_S = 240


def _environment(**extra):
    env = dict(os.environ)
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO_ROOT, "CUDA_VISIBLE_DEVICES": ""})
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _train_command(model_dir, *flags):
    return [sys.executable, "-m", "training.train", f"--model_dir={model_dir}", *COMMON_FLAGS, *flags]


def _start(command, log_path, **env):
    log = open(log_path, "w")  # noqa: SIM115 - closed by _wait
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=_environment(**env), stdout=log, stderr=log)
    process.log = log
    process.log_path = log_path
    return process


def _wait(process, timeout=PROCESS_TIMEOUT_S):
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    finally:
        process.log.close()
    return process.returncode


def _log_tail(process, lines=40):
    with open(process.log_path) as f:
        return "".join(f.readlines()[-lines:])


def _final_weights(model_dir):
    return keras.saving.load_model(os.path.join(model_dir, "model.keras"), compile=False).get_weights()


def _metrics(model_dir):
    with open(os.path.join(model_dir, "metrics.json")) as f:
        return json.load(f)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


pytestmark = pytest.mark.slow  # training subprocesses (kill/resume, two workers)


class FaultToleranceTest(TestCase):
    def test_killed_run_resumes_to_the_same_final_weights(self):
        root = self.make_temp_dir()
        flags = [
            "--epochs=4",
            "--max_train_steps=8",
            "--deterministic",
            "--strategy=cpu",
            "--validate=false",
        ]
        reference_dir = os.path.join(root, "uninterrupted")
        resumed_dir = os.path.join(root, "resumed")
        start = time.perf_counter()
        reference = _start(_train_command(reference_dir, *flags), os.path.join(root, "reference.log"))
        interrupted = _start(_train_command(resumed_dir, *flags), os.path.join(root, "interrupted.log"))

        # Kill the second run with SIGKILL as soon as its backup metadata says epoch 2 is saved (mid-run:
        # during epoch 3 or while writing its backup).
        metadata = os.path.join(resumed_dir, "backup", "training_metadata.json")
        killed_at_epoch = None
        deadline = time.monotonic() + PROCESS_TIMEOUT_S
        while time.monotonic() < deadline and interrupted.poll() is None:
            try:
                with open(metadata) as f:
                    epoch = json.load(f)["epoch"]
            except (OSError, ValueError, KeyError):
                epoch = 0
            if epoch >= 2:  # the event: the backup of epoch 2 is complete (no timed wait)
                interrupted.send_signal(signal.SIGKILL)
                killed_at_epoch = epoch
                break
            time.sleep(0.05)
        self.assertEqual(_wait(interrupted), -signal.SIGKILL, msg=_log_tail(interrupted))
        self.assertIsNotNone(killed_at_epoch)
        self.assertFalse(os.path.exists(os.path.join(resumed_dir, "model.keras")), msg="the run had finished")

        resumed = _start(_train_command(resumed_dir, *flags), os.path.join(root, "resumed.log"))
        self.assertEqual(_wait(resumed), 0, msg=_log_tail(resumed))
        self.assertEqual(_wait(reference), 0, msg=_log_tail(reference))
        print(f"kill/resume test: killed after epoch {killed_at_epoch}, {time.perf_counter() - start:.1f}s")

        resumed_metrics, reference_metrics = _metrics(resumed_dir), _metrics(reference_dir)
        self.assertGreaterEqual(resumed_metrics["initial_epoch"], 2)
        self.assertLess(resumed_metrics["initial_epoch"], 4)
        self.assertEqual(
            resumed_metrics["epochs_run"], 4 - resumed_metrics["initial_epoch"], msg=_log_tail(resumed)
        )
        self.assertEqual(reference_metrics["initial_epoch"], 0)
        self.assertFalse(os.path.exists(os.path.join(resumed_dir, "backup")), msg="backup not cleaned up")
        resumed_weights, reference_weights = _final_weights(resumed_dir), _final_weights(reference_dir)
        self.assertLen(resumed_weights, len(reference_weights))
        max_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(resumed_weights, reference_weights))
        print(f"kill/resume test: max |resumed - uninterrupted| weight difference = {max_diff}")
        self.assertEqual(max_diff, 0.0)
        self.assertEqual(resumed_metrics["test_loss"], reference_metrics["test_loss"])
        # history.csv: the resumed run appended its epochs (one header); per epoch the same losses.
        with open(os.path.join(resumed_dir, HISTORY_FILE)) as f:
            self.assertEqual(f.read().count("epoch,"), 1)
        resumed_history = plots.read_history(os.path.join(resumed_dir, HISTORY_FILE))
        reference_history = plots.read_history(os.path.join(reference_dir, HISTORY_FILE))
        self.assertLen(reference_history["loss"], 4)
        self.assertEqual(resumed_history["loss"], reference_history["loss"])

    def _assert_two_workers_agree(self, model_dir):
        """The chief and worker 1 of a finished two-worker run: synchronous replicas, bit-equal weights."""
        chief, worker = _metrics(model_dir), _metrics(os.path.join(model_dir, "worker_1"))
        self.assertTrue(chief["is_chief"])
        self.assertFalse(worker["is_chief"])
        for metrics in (chief, worker):
            # tf.distribute.MultiWorkerMirroredStrategy is an alias of CollectiveAllReduceStrategy.
            self.assertEqual(metrics["strategy"], tf.distribute.MultiWorkerMirroredStrategy.__name__)
            self.assertEqual(metrics["num_replicas"], 2)
            self.assertEqual(metrics["steps_per_epoch"], 3)
            self.assertTrue(np.isfinite(metrics["train_loss"]))
        # The workers read disjoint shards (tests/training/test_pipeline.py checks the sharding); weights
        # equal bit for bit after training mean that every step applied the same all-reduced gradients.
        chief_weights = _final_weights(model_dir)
        worker_weights = _final_weights(os.path.join(model_dir, "worker_1"))
        max_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(chief_weights, worker_weights))
        print(f"multi-worker test: max |chief - worker| weight difference = {max_diff}")
        self.assertEqual(max_diff, 0.0)
        self.assertEqual(chief["test_accuracy"], worker["test_accuracy"])

    def test_two_workers_and_a_killed_worker_that_resumes_to_the_uninterrupted_weights(self):
        # An uninterrupted two-worker MultiWorkerMirroredStrategy run (its workers must agree bit for bit),
        # then the same run where worker 1 is SIGKILLed mid-run; worker 0 then blocks in a collective, so
        # recovery restarts every worker (the cluster's way), and both resume from their BackupAndRestore
        # backups.
        root = self.make_temp_dir()
        flags = [
            "--strategy=multi_worker",
            "--epochs=4",
            "--max_train_steps=3",
            "--deterministic",
            "--validate=false",
        ]

        def start_workers(model_dir, label):
            workers = [f"localhost:{port}" for port in _free_ports(2)]
            processes = []
            for index in range(2):
                tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
                processes.append(
                    _start(
                        _train_command(model_dir, *flags),
                        os.path.join(root, f"{label}_worker_{index}.log"),
                        TF_CONFIG=json.dumps(tf_config),
                    )
                )
            return processes

        reference_dir, resumed_dir = os.path.join(root, "uninterrupted"), os.path.join(root, "resumed")
        reference = start_workers(reference_dir, "reference")
        for process in reference:
            self.assertEqual(_wait(process), 0, msg=_log_tail(process))
        self._assert_two_workers_agree(reference_dir)

        interrupted = start_workers(resumed_dir, "interrupted")
        metadata = os.path.join(resumed_dir, "worker_1", "backup", "training_metadata.json")
        killed_at_epoch = None
        deadline = time.monotonic() + PROCESS_TIMEOUT_S
        while time.monotonic() < deadline and interrupted[1].poll() is None:
            try:
                with open(metadata) as f:
                    epoch = json.load(f)["epoch"]
            except (OSError, ValueError, KeyError):
                epoch = 0
            if epoch >= 2:  # the event: worker 1's backup of epoch 2 is complete
                interrupted[1].send_signal(signal.SIGKILL)
                killed_at_epoch = epoch
                break
            time.sleep(0.05)
        self.assertEqual(_wait(interrupted[1]), -signal.SIGKILL, msg=_log_tail(interrupted[1]))
        self.assertIsNotNone(killed_at_epoch)
        # The survivor cannot finish without its peer: it is stopped too (it blocks or fails).
        interrupted[0].send_signal(signal.SIGKILL)
        _wait(interrupted[0])
        self.assertFalse(os.path.exists(os.path.join(resumed_dir, "model.keras")), msg="the run had finished")

        resumed = start_workers(resumed_dir, "resumed")
        codes = [_wait(process) for process in resumed]
        self.assertEqual(codes, [0, 0], msg="\n".join(f"{p.log_path}:\n{_log_tail(p)}" for p in resumed))
        resumed_metrics = _metrics(resumed_dir)
        self.assertGreaterEqual(resumed_metrics["initial_epoch"], 2)
        self.assertLess(resumed_metrics["initial_epoch"], 4)
        resumed_weights, reference_weights = _final_weights(resumed_dir), _final_weights(reference_dir)
        max_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(resumed_weights, reference_weights))
        print(
            f"multi-worker kill/restart: worker 1 killed after epoch {killed_at_epoch}, resumed from epoch "
            f"{resumed_metrics['initial_epoch']}; max |resumed - uninterrupted| weights = {max_diff}"
        )
        self.assertEqual(max_diff, 0.0)
