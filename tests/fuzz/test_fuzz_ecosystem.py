"""Fuzz cases for this session's entry points: hub ids (`from_transformers("owner/name")`,
`from_preset("hf://...")`), `export_to_transformers`, `write_serving_version` and `decode_in_chunks`.
Each works, or raises exactly the named exception type with the received value in its message."""

import os
import shutil
import tempfile
from unittest import mock

import numpy as np
import pytest

from keras_perceiver.convert import export_to_transformers, from_transformers
from keras_perceiver.models import PerceiverMaskedLM
from keras_perceiver.serving_layout import write_serving_version
from tests.fuzz.harness import WORKS, Fuzzer, Raises
from tests.fuzz.test_fuzz_converters import CONFIG
from tests.test_case import TestCase

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
huggingface_hub = pytest.importorskip("huggingface_hub")

DRAWS = 8


class EcosystemFuzzTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp()
        torch.manual_seed(0)
        cls.checkpoint = os.path.join(cls.root, "checkpoint")
        transformers.PerceiverForMaskedLM(transformers.PerceiverConfig(**CONFIG)).save_pretrained(
            cls.checkpoint
        )
        cls.model = from_transformers(cls.checkpoint)
        cls.cache = os.path.join(cls.root, "hub")
        os.makedirs(cls.cache)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def offline(self):
        patches = [
            mock.patch.object(huggingface_hub.constants, "HF_HUB_OFFLINE", True),
            mock.patch.object(huggingface_hub.constants, "HF_HUB_CACHE", self.cache),
        ]
        for patch in patches:
            patch.start()
            self.addCleanup(patch.stop)

    def test_hub_ids(self):
        self.offline()
        fuzzer = Fuzzer("hub ids", 40)
        rng = np.random.RandomState(3)
        letters = list("abcXYZ019-_.")
        for draw in range(DRAWS):
            owner = "".join(rng.choice(letters[:9], size=rng.randint(1, 6)))
            name = "".join(rng.choice(letters[:9], size=rng.randint(1, 6)))
            # Well-formed but absent: a clear FileNotFoundError naming the repository, no network.
            fuzzer.check(
                f"absent {owner}/{name}",
                lambda o=owner, n=name: from_transformers(f"{o}/{n}"),
                Raises(FileNotFoundError, f"{owner}/{name}"),
            )
            fuzzer.check(
                f"absent hf://{owner}/{name}@v{draw}",
                lambda o=owner, n=name, d=draw: PerceiverMaskedLM.from_preset(f"hf://{o}/{n}@v{d}"),
                Raises(FileNotFoundError, f"{owner}/{name}@v{draw}"),
            )
            for bad in (f"hf://{owner}", f"hf://{owner}/{name}/x", f"hf://{owner}/{name}@", f"hf:///{name}"):
                fuzzer.check(
                    f"malformed {bad}",
                    lambda b=bad: PerceiverMaskedLM.from_preset(b),
                    Raises(ValueError, bad),
                )
            fuzzer.check(
                f"not an id {owner}",
                lambda o=owner: from_transformers(o),
                Raises(FileNotFoundError, f"path={owner!r}"),
            )
        fuzzer.finish(self)

    def test_export_to_transformers(self):
        fuzzer = Fuzzer("export_to_transformers", 30)
        rng = np.random.RandomState(4)
        config = transformers.PerceiverConfig(**CONFIG).to_dict()
        config["architectures"] = ["PerceiverForMaskedLM"]
        for draw in range(DRAWS):
            out = os.path.join(self.root, f"export{draw}")
            fuzzer.check(f"export {draw}", lambda o=out: export_to_transformers(self.model, o, config), WORKS)
            field = str(rng.choice(["num_latents", "d_latents", "d_model", "vocab_size"]))
            changed = {**config, field: int(config[field]) * 2}
            fuzzer.check(
                f"{field} doubled",
                lambda c=changed, o=out: export_to_transformers(self.model, o, c),
                Raises(ValueError, "does not have the weights of PerceiverForMaskedLM"),
            )
            bad = [3, 2.5, None, ["config"]][draw % 4]
            fuzzer.check(
                f"config {bad!r}",
                lambda b=bad, o=out: export_to_transformers(self.model, o, b),
                Raises(TypeError, type(bad).__name__),
            )
            missing = os.path.join(self.root, f"no_checkpoint_{draw}")
            os.makedirs(missing, exist_ok=True)
            fuzzer.check(
                "checkpoint directory without config.json",
                lambda m=missing, o=out: export_to_transformers(self.model, o, m),
                Raises(FileNotFoundError, "config.json"),
            )
        fuzzer.finish(self)

    def test_write_serving_version(self):
        fuzzer = Fuzzer("write_serving_version", 30)
        saved_model = os.path.join(self.root, "saved_model")
        os.makedirs(os.path.join(saved_model, "variables"), exist_ok=True)
        with open(os.path.join(saved_model, "saved_model.pb"), "wb") as f:
            f.write(b"\x08\x01")
        base = os.path.join(self.root, "serving")
        rng = np.random.RandomState(5)
        for draw in range(DRAWS):
            version = int(rng.randint(100, 10**6))
            fuzzer.check(
                f"version {version}",
                lambda v=version: write_serving_version(saved_model, base, "m", v),
                WORKS,
            )
            fuzzer.check(
                f"version {version} again",
                lambda v=version: write_serving_version(saved_model, base, "m", v),
                Raises(FileExistsError, f"Version {version}"),
            )
            bad_version = [0, -version, 1.5, "7", True][draw % 5]
            fuzzer.check(
                f"version {bad_version!r}",
                lambda v=bad_version: write_serving_version(saved_model, base, "m", v),
                Raises(ValueError, f"version={bad_version!r}"),
            )
            bad_name = ["a/b", "", ".x", None, "..", 3][draw % 6]
            fuzzer.check(
                f"name {bad_name!r}",
                lambda n=bad_name: write_serving_version(saved_model, base, n),
                Raises(ValueError, f"name={bad_name!r}"),
            )
        fuzzer.finish(self)

    def test_decode_in_chunks(self):
        fuzzer = Fuzzer("decode_in_chunks", 30)
        rng = np.random.RandomState(6)
        inputs = {
            "token_ids": rng.randint(6, 262, size=(2, 16)).astype("int32"),
            "padding_mask": np.ones((2, 16), bool),
        }
        expected = np.asarray(self.model(inputs))
        for draw in range(DRAWS):
            size = int(rng.randint(1, 40))
            fuzzer.check(
                f"chunk_size {size}",
                lambda s=size: self.model.decode_in_chunks(inputs, chunk_size=s),
                WORKS,
                validate=lambda result: (
                    None
                    if np.max(np.abs(np.asarray(result) - expected)) <= 1e-5
                    else "differs from model(inputs)"
                ),
            )
            bad = [0, -size, 2.5, "4", None][draw % 5]
            fuzzer.check(
                f"chunk_size {bad!r}",
                lambda b=bad: self.model.decode_in_chunks(inputs, chunk_size=b),
                Raises(ValueError, f"chunk_size={bad!r}"),
            )
            wrong = {
                "token_ids": inputs["token_ids"].astype("float32") + 0.5,
                "padding_mask": inputs["padding_mask"],
            }
            fuzzer.check(
                "float token ids",
                lambda w=wrong: self.model.decode_in_chunks(w),
                Raises(TypeError, "float32"),
            )
            fuzzer.check(
                "unknown input",
                lambda: self.model.decode_in_chunks({**inputs, "images": inputs["token_ids"]}),
                Raises(ValueError, "images"),
            )
        fuzzer.finish(self)
