"""`training.fit_on_arrays`: prepare here, fit with the JAX backend, adopt here as a `training.train` run."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.test_case import TestCase
from tests.training.data.helpers import debian_data_dir
from training import fit_on_arrays

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class AugmentTest(TestCase):
    def test_crops_are_windows_of_the_padded_image_and_flips_mirror_it(self):
        images = np.random.default_rng(0).integers(1, 255, size=(64, 6, 5, 1)).astype("uint8")
        padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
        crops = fit_on_arrays.augment(images, 2, False, np.random.default_rng(1))
        offsets = set()
        for image, crop in zip(padded, crops):
            windows = [(r, c) for r in range(5) for c in range(5)]
            matches = [(r, c) for r, c in windows if np.array_equal(image[r : r + 6, c : c + 5], crop)]
            self.assertTrue(matches)
            offsets.add(matches[0])
        self.assertGreater(len(offsets), 10)  # the offsets vary
        flipped = fit_on_arrays.augment(images, 0, True, np.random.default_rng(1))
        mirrored = [np.array_equal(f, i[:, ::-1]) for f, i in zip(flipped, images)]
        kept = [np.array_equal(f, i) for f, i in zip(flipped, images)]
        self.assertTrue(all(m or k for m, k in zip(mirrored, kept)))
        self.assertTrue(any(mirrored) and any(kept))

    def test_prepare_refuses_other_tasks(self):
        with pytest.raises(ValueError, match="task.*Received: task='digits'"):
            fit_on_arrays.prepare("digits", self.make_temp_dir(), {}, fit_on_arrays.RECIPE_DEFAULTS)


class RoundTripTest(TestCase):
    def test_a_model_fit_on_jax_is_adopted_with_its_validation_accuracy(self):
        debian_data_dir("fashion_mnist")  # skips (fails under CI=true) without the data
        run = self.make_temp_dir()
        overrides = {"num_latents": 4, "latent_dim": 16, "num_self_attends_per_block": 1, "num_bands": 2}
        recipe = {**fit_on_arrays.RECIPE_DEFAULTS, "epochs": 2, "batch_size": 32, "warmup_steps": 2}
        fit_on_arrays.prepare("fashion_mnist", run, overrides, recipe)
        arrays = dict(np.load(os.path.join(run, fit_on_arrays.ARRAYS_FILE)))
        small = {key: value[:96] if key.startswith("train") else value[:64] for key, value in arrays.items()}
        np.savez(os.path.join(run, fit_on_arrays.ARRAYS_FILE), **small)
        env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO_ROOT}
        result = subprocess.run(
            [sys.executable, "-m", "training.fit_on_arrays", "fit", f"--run={run}", "--seeds=3"],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=300,
            check=False,
        )
        self.assertEqual(result.returncode, 0, msg=result.stderr[-3000:])
        fit_on_arrays.adopt(run, 3)
        out = os.path.join(run, "seed3")
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
        summary = (metrics["task"], metrics["backend"], metrics["epochs_run"])
        self.assertEqual(summary, ("fashion_mnist", "jax", 2))
        self.assertEqual(metrics["params"]["seed"], 3)
        # The adopted model (TensorFlow here) scores the validation images as the JAX run's best epoch did.
        model = keras.saving.load_model(os.path.join(out, "model.keras"))
        images = (small["validation_images"].astype("float32") / 255.0 - 0.2860) / 0.3530
        predicted = np.argmax(np.asarray(model.predict({"images": images}, verbose=0)), axis=-1)
        accuracy = float(np.mean(predicted == small["validation_labels"]))
        self.assertAlmostEqual(accuracy, metrics["validation_accuracy"], places=5)
