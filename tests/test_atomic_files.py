"""Artifacts survive a kill at any moment: SIGKILL at every enumerated point of a write leaves the previous
version (or the new one, once complete) loadable; a full disk gives a clear error and loses nothing.

The enumerated-point tests run `keras_perceiver/atomic_files.py` in child processes without TensorFlow
(fast); the preset test runs `save_to_preset` itself, killed inside its weights write and around the swap.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

from keras_perceiver.models import PerceiverIO
from tests.test_case import TestCase

ATOMIC_FILES = os.path.join(os.path.dirname(__file__), os.pardir, "keras_perceiver", "atomic_files.py")

# A child that writes version `version` of a 3-file directory (or one file) through atomic_files and
# SIGKILLs itself at the `kill_at`-th point: before and after every file-system call the helpers make,
# and between the chunks of every file it writes.
CHILD = textwrap.dedent(
    """
    import importlib.util, os, shutil, signal, sys, tempfile
    kind, target, version, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    spec = importlib.util.spec_from_file_location("atomic_files", sys.argv[5])
    atomic_files = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(atomic_files)
    count = 0

    def point():
        global count
        count += 1
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(owner, name):
        real = getattr(owner, name)
        def wrapped(*args, **kwargs):
            point()
            result = real(*args, **kwargs)
            point()
            return result
        setattr(owner, name, wrapped)

    for owner, name in ((os, "rename"), (os, "replace"), (os, "remove"), (shutil, "rmtree"),
                        (tempfile, "mkdtemp"), (tempfile, "mkstemp"), (atomic_files, "_exchange")):
        wrap(owner, name)

    def write(path, text):
        with open(path, "w") as f:
            for chunk in (text[: len(text) // 2], text[len(text) // 2 :]):
                f.write(chunk)
                f.flush()
                point()

    if kind == "directory":
        with atomic_files.staged_directory(target) as staging:
            for name in ("config.json", "weights.bin", "metadata.json"):
                write(os.path.join(staging, name), f"{name} version {version} " * 50)
    else:
        with atomic_files.staged_file(target) as path:
            write(path, f"file version {version} " * 50)
    print("points", count)
    """
)


def run_child(kind, target, version, kill_at):
    result = subprocess.run(
        [sys.executable, "-c", CHILD, kind, target, str(version), str(kill_at), ATOMIC_FILES],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result


def read_directory(path):
    contents = {}
    for name in ("config.json", "weights.bin", "metadata.json"):
        with open(os.path.join(path, name)) as f:
            contents[name] = f.read()
    return contents


class AtomicFilesTest(TestCase):
    def _kill_everywhere(self, kind, read, expected):
        """Write version 1, then kill a write of version 2 at each point k = 1, 2, ... until one completes."""
        root = tempfile.mkdtemp()
        target = os.path.join(root, "artifact")
        self.assertEqual(run_child(kind, target, 1, 0).returncode, 0)
        old, new = expected(1), expected(2)
        self.assertEqual(read(target), old)
        for kill_at in range(1, 200):
            result = run_child(kind, target, 2, kill_at)
            if result.returncode == 0:
                break
            self.assertEqual(result.returncode, -signal.SIGKILL, result.stderr[-2000:])
            self.assertIn(read(target), (old, new), f"killed at point {kill_at}")
            # Roll back to version 1 for the next point unless the new version is already in place.
            if read(target) == new:
                self.assertEqual(run_child(kind, target, 1, 0).returncode, 0)
        points = int(result.stdout.split()[-1])
        self.assertGreaterEqual(points, 8)
        self.assertEqual(kill_at, points + 1, "every point up to the last one was tried")
        self.assertEqual(read(target), new)
        leftovers = [name for name in os.listdir(root) if name != "artifact"]
        self.assertEqual(leftovers, [], "a completed write removes the leftovers of killed ones")

    def test_directory_survives_a_kill_at_every_point(self):
        def expected(version):
            return {
                name: f"{name} version {version} " * 50
                for name in ("config.json", "weights.bin", "metadata.json")
            }

        self._kill_everywhere("directory", read_directory, expected)

    def test_file_survives_a_kill_at_every_point(self):
        def read(path):
            with open(path) as f:
                return f.read()

        self._kill_everywhere("file", read, lambda version: f"file version {version} " * 50)

    def test_full_disk_is_a_clear_error_and_keeps_the_old_version(self):
        root = tempfile.mkdtemp()
        target = os.path.join(root, "artifact")
        self.assertEqual(run_child("directory", target, 1, 0).returncode, 0)
        before = read_directory(target)
        script = (
            "import resource, signal, subprocess, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (500, 500))\n"
            f"exec(compile({CHILD!r}, 'child', 'exec'))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script, "directory", target, "2", "0", ATOMIC_FILES],
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("OSError: [Errno 27] File too large", result.stderr)
        self.assertEqual(read_directory(target), before)
        self.assertEqual(os.listdir(root), ["artifact"])


PRESET_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import keras
    from keras_perceiver.models import PerceiverIO
    from keras_perceiver import atomic_files
    target, where = sys.argv[1], sys.argv[2]
    model = PerceiverIO.from_hyperparameters(input_shape=(6, 3), num_latents=4, latent_dim=8,
        num_self_attends_per_block=1, num_cross_attention_heads=1, num_self_attention_heads=2)
    for weight in model.weights:
        weight.assign(keras.ops.full(weight.shape, 2.0))
    if where == "weights":  # inside the weights file's write, after its first bytes
        real = keras.Model.save_weights
        def save_weights(self, path, *args, **kwargs):
            real(self, path, *args, **kwargs)
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        keras.Model.save_weights = save_weights
    else:  # right before or right after the swap
        real = atomic_files.replace_directory
        def replace_directory(staging, directory):
            if where == "after":
                real(staging, directory)
            os.kill(os.getpid(), signal.SIGKILL)
        atomic_files.replace_directory = replace_directory
    model.save_to_preset(target, overwrite=True)
    """
)


class PresetKillTest(TestCase):
    def test_a_killed_save_keeps_a_loadable_preset(self):
        root = tempfile.mkdtemp()
        target = os.path.join(root, "preset")
        model = PerceiverIO.from_hyperparameters(
            input_shape=(6, 3),
            num_latents=4,
            latent_dim=8,
            num_self_attends_per_block=1,
            num_cross_attention_heads=1,
            num_self_attention_heads=2,
        )
        model.save_to_preset(target)
        env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), os.pardir))
        for where, expected_value in (("weights", None), ("before", None), ("after", 2.0)):
            result = subprocess.run(
                [sys.executable, "-c", PRESET_CHILD, target, where], capture_output=True, text=True, env=env
            )
            self.assertEqual(result.returncode, -signal.SIGKILL, result.stderr[-2000:])
            restored = PerceiverIO.from_preset(target)
            for ours, theirs in zip(restored.weights, model.weights):
                if expected_value is None:
                    self.assertAllClose(ours, theirs, atol=0)  # the old preset, intact
                else:
                    self.assertAllClose(ours, np.full(theirs.shape, expected_value), atol=0)
            with open(os.path.join(target, "metadata.json")) as f:
                self.assertEqual(json.load(f)["parameter_count"], model.count_params())
            model.save_to_preset(target, overwrite=True)  # back to the old weights for the next point
