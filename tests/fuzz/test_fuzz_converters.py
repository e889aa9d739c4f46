"""Fuzz cases for `from_transformers` on damaged checkpoint directories: configs that do not parse, of
another model type or with fields of the wrong type or range; weights files that are truncated, garbage,
missing tensors, or hold tensors of the wrong shape. Each raises a named error naming the file, field or
tensor; untouched and harmlessly changed checkpoints convert.
"""

import json
import os
import shutil
import tempfile

import keras
import numpy as np
import pytest

from keras_perceiver.convert.from_transformers import from_transformers
from tests.fuzz.harness import WORKS, Fuzzer, Raises
from tests.test_case import TestCase

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

CONFIG = dict(
    num_latents=4,
    d_latents=16,
    d_model=8,
    num_blocks=1,
    num_self_attends_per_block=1,
    num_self_attention_heads=2,
    num_cross_attention_heads=1,
    vocab_size=262,
    max_position_embeddings=16,
)
DRAWS = 6
MINIMUM_CASES = 40


class ConverterFuzzTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        cls.checkpoints = {}
        torch.manual_seed(0)
        for name, model_class in (
            ("model", transformers.PerceiverModel),
            ("masked_lm", transformers.PerceiverForMaskedLM),
        ):
            path = os.path.join(cls.root, name)
            model_class(transformers.PerceiverConfig(**CONFIG)).save_pretrained(path)
            cls.checkpoints[name] = path

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def copy(self, name):
        path = tempfile.mkdtemp(dir=self.root)
        shutil.copytree(self.checkpoints[name], path, dirs_exist_ok=True)
        return path

    def cases(self, rng):
        """Yield (label, path, expectation)."""
        for draw in range(DRAWS):
            name = ("model", "masked_lm")[draw % 2]
            path = self.copy(name)
            yield f"{name} untouched", path, WORKS
            config_path = os.path.join(path, "config.json")
            weights_path = os.path.join(path, "model.safetensors")
            with open(config_path) as f:
                config = json.load(f)
            weights = safetensors_numpy.load_file(weights_path)

            def write_config(data, path=path, config_path=config_path):
                with open(config_path, "w") as f:
                    json.dump(data, f)
                return path

            # The config.
            path = self.copy(name)
            config_path = os.path.join(path, "config.json")
            raw = bytes(rng.randint(0, 256, size=rng.randint(1, 64)).astype(np.uint8))
            with open(config_path, "wb") as f:
                f.write(b"{" + raw)
            yield f"{name} config garbage", path, Raises(ValueError, f"Received: {len(raw) + 1} bytes")
            path = self.copy(name)
            config_path = os.path.join(path, "config.json")
            value = [[1, 2], "text", 3.5, None][draw % 4]
            write_config(value, path, config_path)
            yield f"{name} config {value!r}", path, Raises(ValueError, "Received: a JSON")
            path = self.copy(name)
            config_path = os.path.join(path, "config.json")
            model_type = str(rng.choice(["bert", "gpt2", "vit", ""]))
            write_config({**config, "model_type": model_type}, path, config_path)
            yield f"{name} model_type {model_type!r}", path, Raises(ValueError, f"model_type={model_type!r}")
            path = self.copy(name)
            config_path = os.path.join(path, "config.json")
            field = str(rng.choice(["num_latents", "d_latents", "num_self_attention_heads", "num_blocks"]))
            bad = [0, -3, "eight", 2.5, None][draw % 5]
            write_config({**config, field: bad}, path, config_path)
            yield f"{name} {field}={bad!r}", path, Raises(ValueError, f"{field}={bad!r}")
            path = self.copy(name)
            os.remove(os.path.join(path, "config.json"))
            yield f"{name} no config", path, Raises(FileNotFoundError, "config.json")

            # The weights.
            path = self.copy(name)
            weights_path = os.path.join(path, "model.safetensors")
            size = os.path.getsize(weights_path)
            cut = int(rng.randint(0, size))
            with open(weights_path, "rb") as f:
                data = f.read()[:cut]
            with open(weights_path, "wb") as f:
                f.write(data)
            yield f"{name} weights cut at {cut}", path, Raises(ValueError, f"Received: {cut} bytes")
            path = self.copy(name)
            os.remove(os.path.join(path, "model.safetensors"))
            yield f"{name} no weights", path, Raises(FileNotFoundError, "model.safetensors")
            keys = sorted(weights)
            missing = keys[rng.randint(0, len(keys))]
            path = self.copy(name)
            safetensors_numpy.save_file(
                {k: v for k, v in weights.items() if k != missing}, os.path.join(path, "model.safetensors")
            )
            yield f"{name} without {missing}", path, Raises(ValueError, repr(missing))
            reshaped = keys[rng.randint(0, len(keys))]
            path = self.copy(name)
            wrong = np.zeros(weights[reshaped].shape + (2,), weights[reshaped].dtype)
            safetensors_numpy.save_file({**weights, reshaped: wrong}, os.path.join(path, "model.safetensors"))
            yield f"{name} {reshaped} shape {wrong.shape}", path, Raises(ValueError, repr(reshaped))

    def test_fuzz(self):
        fuzzer = Fuzzer("from_transformers", MINIMUM_CASES)
        for label, path, expect in self.cases(np.random.RandomState(7)):
            fuzzer.check(label, lambda path=path: from_transformers(path), expect)
        fuzzer.finish(self)


class DeepMindConverterFuzzTest(TestCase):
    """`from_deepmind` on damaged Haiku parameter files (`.npz`; pickles are refused without opt-in)."""

    def test_fuzz(self):
        from keras_perceiver.convert.from_deepmind import from_deepmind
        from tests.convert.test_from_deepmind import BASE, HEADS, _randomize, haiku_params

        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root, True)
        reference = _randomize(
            transformers.PerceiverForMaskedLM(transformers.PerceiverConfig(**BASE)), seed=2
        )
        flat = {
            f"{scope}/{k}": v for scope, values in haiku_params(reference).items() for k, v in values.items()
        }
        rng = np.random.RandomState(9)
        fuzzer = Fuzzer("from_deepmind", 30)

        def write(params, name):
            path = os.path.join(root, f"{name}.npz")
            np.savez(path, **params)
            return path

        def convert(path, **kwargs):
            return from_deepmind(path, **{**HEADS, **kwargs})

        for draw in range(DRAWS):
            good = write(flat, f"good{draw}")
            fuzzer.check("valid npz", lambda p=good: convert(p), WORKS)
            with open(good, "rb") as f:
                data = f.read()
            cut = int(rng.randint(0, len(data)))
            path = os.path.join(root, f"cut{draw}.npz")
            with open(path, "wb") as f:
                f.write(data[:cut])
            fuzzer.check(f"npz cut at {cut}", lambda p=path: convert(p), Raises(ValueError, f"{cut} bytes"))
            garbage = bytes(rng.randint(0, 256, size=rng.randint(1, 300)).astype(np.uint8))
            path = os.path.join(root, f"garbage{draw}.npz")
            with open(path, "wb") as f:
                f.write(garbage)
            fuzzer.check(
                "npz garbage", lambda p=path: convert(p), Raises(ValueError, f"{len(garbage)} bytes")
            )
            keys = sorted(flat)
            missing = keys[rng.randint(0, len(keys))]
            path = write({k: v for k, v in flat.items() if k != missing}, f"missing{draw}")
            fuzzer.check(f"without {missing}", lambda p=path: convert(p), Raises(ValueError, repr(missing)))
            path = os.path.join(root, f"params{draw}.pickle")
            with open(path, "wb") as f:
                f.write(b"\x80\x04N.")  # a pickle of None
            fuzzer.check(
                "pickle, no opt-in", lambda p=path: convert(p), Raises(ValueError, "allow_pickle=True")
            )
            architecture = str(rng.choice(["vision", "language", "flow", "hip"]))
            expect = Raises(ValueError, repr(architecture))
            fuzzer.check(
                f"architecture {architecture}",
                lambda a=architecture, p=good: convert(p, architecture=a),
                expect,
            )
        fuzzer.finish(self)


class DeepMindHiPConverterFuzzTest(TestCase):
    """`from_deepmind_hip` on the official HiP fixture's parameters, damaged: files truncated or garbage,
    parameters missing, unexpected, mis-shaped or not numeric, inputs of the wrong type."""

    def test_fuzz(self):
        from keras_perceiver.convert import from_deepmind_hip
        from keras_perceiver.models import HierarchicalPerceiver
        from tests.models.test_hierarchical_perceiver import TINY, fixture_params, load_fixture

        fixture = load_fixture()
        params = fixture_params(fixture, "pparam/")
        inputs = {m: fixture[f"input/{m}"][:1] for m in TINY["input_shapes"]}
        model = HierarchicalPerceiver(**TINY)  # a failed load assigns nothing, so one model serves every case
        expected = from_deepmind_hip(params, HierarchicalPerceiver(**TINY))(inputs)
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root, True)
        rng = np.random.RandomState(10)
        keys = sorted(params)
        fuzzer = Fuzzer("from_deepmind_hip", 30)

        def same_outputs(loaded):
            pairs = zip(keras.tree.flatten(loaded(inputs)), keras.tree.flatten(expected))
            difference = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in pairs)
            return None if difference == 0 else f"outputs differ by {difference}"

        path = os.path.join(root, "hip.npz")
        np.savez(path, **params)
        with open(path, "rb") as f:
            data = f.read()
        fuzzer.check("valid npz", lambda: from_deepmind_hip(path, model), WORKS, same_outputs)
        for draw in range(DRAWS):
            cut = int(rng.randint(0, len(data)))
            cut_path = os.path.join(root, f"cut{draw}.npz")
            with open(cut_path, "wb") as f:
                f.write(data[:cut])
            fuzzer.check(
                f"npz cut at {cut}",
                lambda p=cut_path: from_deepmind_hip(p, model),
                Raises(ValueError, f"{cut} bytes"),
            )
            missing = keys[rng.randint(0, len(keys))]
            fuzzer.check(
                f"without {missing}",
                lambda m=missing: from_deepmind_hip({k: v for k, v in params.items() if k != m}, model),
                Raises(ValueError, repr(missing)),
            )
            extra = f"perceiver/block_{rng.randint(5, 99)}/~/self_attend_id_0/layer_norm/scale"
            fuzzer.check(
                f"with {extra}",
                lambda e=extra: from_deepmind_hip({**params, e: np.ones(4, "float32")}, model),
                Raises(ValueError, repr(extra)),
            )
            reshaped = keys[rng.randint(0, len(keys))]
            wrong = np.zeros(params[reshaped].shape + (2,), "float32")
            fuzzer.check(
                f"{reshaped} of shape {wrong.shape}",
                lambda r=reshaped, w=wrong: from_deepmind_hip({**params, r: w}, model),
                Raises(ValueError, f"received {wrong.shape}"),
            )
            text = keys[rng.randint(0, len(keys))]
            strings = np.full(params[text].shape, "0.5")
            fuzzer.check(
                f"{text} as strings",
                lambda t=text, s=strings: from_deepmind_hip({**params, t: s}, model),
                Raises(ValueError, f"received dtype {strings.dtype}"),
            )
        for wrong_params in (list(params.values())[:2], None, 3):
            fuzzer.check(
                f"params {type(wrong_params).__name__}",
                lambda p=wrong_params: from_deepmind_hip(p, model),
                Raises(TypeError, type(wrong_params).__name__),
            )
        for wrong_model in ("model", None):
            fuzzer.check(
                f"model {wrong_model!r}",
                lambda m=wrong_model: from_deepmind_hip(params, m),
                Raises(TypeError, type(wrong_model).__name__),
            )
        pickle_path = os.path.join(root, "params.pickle")
        with open(pickle_path, "wb") as f:
            f.write(b"\x80\x04N.")
        fuzzer.check(
            "pickle, no opt-in",
            lambda: from_deepmind_hip(pickle_path, model),
            Raises(ValueError, "allow_pickle"),
        )
        missing_path = os.path.join(root, "missing.npz")
        fuzzer.check(
            "missing file",
            lambda: from_deepmind_hip(missing_path, model),
            Raises(FileNotFoundError, missing_path),
        )
        fuzzer.finish(self)
