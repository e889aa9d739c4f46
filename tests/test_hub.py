"""Hub ids: `from_transformers("owner/name")` and `from_preset("hf://owner/name")` read a Hugging Face cache
laid out by the test (offline, as `huggingface_hub` lays it out); missing repositories or files fail at
once."""

import os
import shutil
import time
from unittest import mock

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from transformers import PerceiverConfig, PerceiverForMaskedLM

from keras_perceiver.convert.from_transformers import from_transformers
from keras_perceiver.hub import looks_like_repo_id, parse_hub_id
from keras_perceiver.models import PerceiverMaskedLM
from keras_perceiver.models.preset_loading import save_to_preset
from tests.test_case import TestCase

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CONFIG = dict(
    num_latents=4,
    d_latents=16,
    d_model=8,
    num_blocks=1,
    num_self_attends_per_block=1,
    num_self_attention_heads=2,
    num_cross_attention_heads=1,
    vocab_size=262,
    max_position_embeddings=12,
)


def lay_out(cache, repo_id, files, commit=COMMIT, missing=()):
    """`files` ({name: source path}) as the snapshot `commit` of `repo_id` in a hub cache, `refs/main`
    naming it; `missing` names are recorded as known to be missing (`.no_exist`)."""
    root = os.path.join(cache, "models--" + repo_id.replace("/", "--"))
    os.makedirs(os.path.join(root, "refs"), exist_ok=True)
    with open(os.path.join(root, "refs", "main"), "w") as f:
        f.write(commit)
    snapshot = os.path.join(root, "snapshots", commit)
    os.makedirs(snapshot, exist_ok=True)
    for name, source in files.items():
        shutil.copy(source, os.path.join(snapshot, name))
    for name in missing:
        os.makedirs(os.path.join(root, ".no_exist", commit), exist_ok=True)
        open(os.path.join(root, ".no_exist", commit, name), "w").close()


def tokens():
    rng = np.random.default_rng(0)
    token_ids = rng.integers(6, 262, size=(2, 12)).astype("int32")
    return {"token_ids": token_ids, "padding_mask": np.ones((2, 12), bool)}


class HubTest(TestCase):
    def setUp(self):
        super().setUp()
        self.cache = self.make_temp_dir()
        # huggingface_hub reads HF_HUB_OFFLINE / HF_HUB_CACHE once, at import: patch its constants.
        for name, value in (("HF_HUB_OFFLINE", True), ("HF_HUB_CACHE", self.cache)):
            patcher = mock.patch.object(huggingface_hub.constants, name, value)
            patcher.start()
            self.addCleanup(patcher.stop)

    def save_transformers_checkpoint(self, seed):
        torch.manual_seed(seed)
        path = os.path.join(self.make_temp_dir(), "checkpoint")
        PerceiverForMaskedLM(PerceiverConfig(**CONFIG)).save_pretrained(path)
        return path

    def test_from_transformers_reads_a_hub_repository_at_a_revision_and_a_local_directory_wins(self):
        checkpoint = self.save_transformers_checkpoint(seed=1)
        files = {name: os.path.join(checkpoint, name) for name in ("config.json", "model.safetensors")}
        lay_out(self.cache, "deepmind/tiny-perceiver", files)
        expected = np.asarray(from_transformers(checkpoint)(tokens()))
        for hub_id in ("deepmind/tiny-perceiver", f"deepmind/tiny-perceiver@{COMMIT}"):
            self.assertAllClose(from_transformers(hub_id)(tokens()), expected, atol=0)
        # A directory of the same name (relative to the working directory) is read instead.
        other = self.save_transformers_checkpoint(seed=2)
        workdir = self.make_temp_dir()
        shutil.copytree(other, os.path.join(workdir, "deepmind", "tiny-perceiver"))
        previous = os.getcwd()
        os.chdir(workdir)
        try:
            local = np.asarray(from_transformers("deepmind/tiny-perceiver")(tokens()))
        finally:
            os.chdir(previous)
        self.assertAllClose(local, np.asarray(from_transformers(other)(tokens())), atol=0)
        self.assertGreater(float(np.max(np.abs(local - expected))), 1e-5)  # other weights, other logits

    def test_missing_repositories_and_files_fail_at_once_with_their_names(self):
        checkpoint = self.save_transformers_checkpoint(seed=1)
        lay_out(
            self.cache,
            "deepmind/no-weights",
            {"config.json": os.path.join(checkpoint, "config.json")},
            missing=("model.safetensors",),
        )
        start = time.perf_counter()
        with pytest.raises(FileNotFoundError, match="'deepmind/absent'.*config.json"):
            from_transformers("deepmind/absent")
        with pytest.raises(FileNotFoundError, match="'deepmind/no-weights' has no model.safetensors .*pick"):
            from_transformers("deepmind/no-weights")
        with pytest.raises(FileNotFoundError, match=r"'deepmind/no-weights' has no model.safetensors\.$"):
            from_transformers("deepmind/no-weights", allow_pickle=True)
        with pytest.raises(FileNotFoundError, match="hf://deepmind/absent|'deepmind/absent'"):
            PerceiverMaskedLM.from_preset("hf://deepmind/absent")
        self.assertLess(time.perf_counter() - start, 10.0)  # no network retries
        with pytest.raises(FileNotFoundError, match="Expected a transformers checkpoint directory"):
            from_transformers("not-a-repo-id")

    def test_from_preset_reads_a_keras_preset_from_the_hub(self):
        checkpoint = self.save_transformers_checkpoint(seed=3)
        model = from_transformers(checkpoint)
        preset = os.path.join(self.make_temp_dir(), "preset")
        save_to_preset(model, preset)
        files = {name: os.path.join(preset, name) for name in os.listdir(preset)}
        lay_out(self.cache, "someone/perceiver-preset", files)
        loaded = PerceiverMaskedLM.from_preset("hf://someone/perceiver-preset")
        self.assertAllClose(loaded(tokens()), np.asarray(model(tokens())), atol=0)
        with pytest.raises(ValueError, match="hf://owner/name"):
            PerceiverMaskedLM.from_preset("hf://only-a-name")
        with pytest.raises(ValueError, match="Unknown preset.*hf://owner/name"):
            PerceiverMaskedLM.from_preset("someone/perceiver-preset")

    def test_hub_id_parsing(self):
        self.assertEqual(parse_hub_id("hf://a/b"), ("a/b", None))
        self.assertEqual(parse_hub_id("hf://a-1/b.c_d@v1.0"), ("a-1/b.c_d", "v1.0"))
        self.assertEqual(parse_hub_id("a/b@main", scheme=False), ("a/b", "main"))
        for bad in ("a/b", "hf://a", "hf://a/b/c", "hf://a/b@", "hf:///b", None):
            with pytest.raises(ValueError, match="hf://owner/name"):
                parse_hub_id(bad)
        self.assertTrue(looks_like_repo_id("deepmind/language-perceiver"))
        self.assertFalse(looks_like_repo_id("/tmp/x"))
        self.assertFalse(looks_like_repo_id("a/b/c"))
