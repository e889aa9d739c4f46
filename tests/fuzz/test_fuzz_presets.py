"""Fuzz cases for `from_preset` (every task model and backbone has it) on unknown names and damaged preset
directories: files missing, truncated or garbage, configs that are not objects, of another class, naming
modules outside keras_perceiver and Keras or overriding arguments out of range, an unknown format version,
weights that do not fit. Each raises a named error naming the file, value or class; an untouched directory
loads with the saved outputs.
"""

import json
import os
import shutil
import tempfile

import numpy as np

from keras_perceiver import models
from keras_perceiver.models.preset_loading import CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE
from tests.fuzz.harness import WORKS, Fuzzer, Raises
from tests.fuzz.test_fuzz_models import STACK
from tests.test_case import TestCase

DRAWS = 3
MINIMUM_CASES = 40


def random_name(rng, size=8):
    return "".join(rng.choice(list("abcdxyz_0123"), size=size))


class PresetFuzzTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.model = models.PerceiverIO.from_hyperparameters(input_shape=(6, 3), **STACK)
        cls.saved = os.path.join(cls.root, "saved")
        cls.model.save_to_preset(cls.saved)
        cls.inputs = np.random.RandomState(0).normal(size=(2, 6, 3)).astype("float32")
        cls.expected = np.asarray(cls.model(cls.inputs))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def copy(self):
        path = tempfile.mkdtemp(dir=self.root)
        shutil.copytree(self.saved, path, dirs_exist_ok=True)
        return path

    def write(self, path, name, data):
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)

    def read(self, name):
        with open(os.path.join(self.saved, name), "rb") as f:
            return f.read()

    def edit_json(self, path, name, change):
        value = json.loads(self.read(name))
        change(value)
        self.write(path, name, json.dumps(value).encode())

    def cases(self, rng):
        """(label, thunk, expect) triples."""
        load = models.PerceiverIO.from_preset
        yield "untouched", lambda: load(self.saved), WORKS
        yield "as PerceiverTaskModel", lambda: models.PerceiverTaskModel.from_preset(self.saved), WORKS
        for wrong_class in (models.PerceiverOpticalFlow, models.PerceiverMaskedLM, models.HiPClassifier):
            expect = Raises(ValueError, "holds a PerceiverIO")
            yield f"into {wrong_class.__name__}", lambda c=wrong_class: c.from_preset(self.saved), expect
        for preset in (3, None, ["a"]):
            yield f"preset {preset!r}", lambda p=preset: load(p), Raises(ValueError, repr(preset))
        yield (
            "missing directory",
            lambda: load(os.path.join(self.root, "nowhere")),
            Raises(ValueError, "nowhere"),
        )
        missing_weights = os.path.join(self.root, "other.weights.h5")
        yield (
            "weights= missing",
            lambda: load(self.saved, weights=missing_weights),
            Raises(FileNotFoundError, missing_weights),
        )
        yield (
            "num_latents=-1 override",
            lambda: load(self.saved, num_latents=-1),
            Raises(ValueError, "num_latents=-1"),
        )
        for _ in range(DRAWS):
            name = random_name(rng)
            yield f"preset name {name}", lambda n=name: load(n), Raises(ValueError, repr(name))
            for filename in (CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE):
                path = self.copy()
                os.remove(os.path.join(path, filename))
                yield f"without {filename}", lambda p=path: load(p), Raises(FileNotFoundError, filename)
                data = self.read(filename)
                cut = int(rng.randint(1, len(data)))
                path = self.copy()
                self.write(path, filename, data[:cut])
                yield f"{filename} cut at {cut}", lambda p=path: load(p), Raises(ValueError, filename)
                garbage = bytes(rng.randint(0, 256, size=rng.randint(1, 200)).astype(np.uint8))
                path = self.copy()
                self.write(path, filename, garbage)
                yield f"{filename} garbage", lambda p=path: load(p), Raises(ValueError, filename)
            for value in ([1, 2], "text", 7):
                path = self.copy()
                self.write(path, CONFIG_FILE, json.dumps(value).encode())
                yield f"config {value!r}", lambda p=path: load(p), Raises(ValueError, type(value).__name__)
            version = int(rng.randint(2, 100))
            path = self.copy()
            self.edit_json(path, METADATA_FILE, lambda m, v=version: m.update(format_version=v))
            yield f"format_version {version}", lambda p=path: load(p), Raises(ValueError, repr(version))
            module = f"{random_name(rng, 5)}.evil"
            path = self.copy()
            self.edit_json(path, CONFIG_FILE, lambda c, m=module: c.update(module=m))
            yield f"module {module}", lambda p=path: load(p), Raises(ValueError, repr(module))
            latents = int(rng.randint(5, 9))
            path = self.copy()
            self.edit_json(
                path,
                CONFIG_FILE,
                lambda c, n=latents: c["config"]["backbone"]["config"].update(num_latents=n),
            )
            yield (
                f"config num_latents {latents} (weights for 4)",
                lambda p=path: load(p),
                Raises(ValueError, WEIGHTS_FILE),
            )

    def test_fuzz(self):
        fuzzer = Fuzzer("from_preset", MINIMUM_CASES)

        def same_outputs(model):
            difference = float(np.max(np.abs(np.asarray(model(self.inputs)) - self.expected)))
            return None if difference == 0 else f"outputs differ by {difference}"

        for label, thunk, expect in self.cases(np.random.RandomState(13)):
            fuzzer.check(label, thunk, expect, same_outputs if expect is WORKS else None)
        fuzzer.finish(self)
