"""The training job: the main job learns and exports; parameters resolve defaults, task defaults, flags."""

import csv
import json
import os

import pytest

from tests.test_case import TestCase
from training import evaluate, plots, train
from training.callbacks import HISTORY_FILE
from training.tasks import TASKS, Task, get_task, register


class TrainJobTest(TestCase):
    @pytest.mark.slow  # the main job end to end
    def test_digits_job_learns_and_exports(self):
        model_dir = os.path.join(self.make_temp_dir(), "digits")
        metrics = train.run(
            task="digits",
            model_dir=model_dir,
            epochs=3,
            seed=0,
            jit_compile=False,
            tensorboard=False,
            verbose=0,
        )
        # Chance is 0.1 on the 10 balanced classes; 3 epochs on real digits reach ~0.8 (seed 0).
        self.assertGreater(metrics["test_accuracy"], 0.4)
        self.assertEqual(metrics["num_train"] + metrics["num_test"], 1797)
        self.assertEqual(metrics["num_test"], 360)
        self.assertEqual(metrics["steps_per_epoch"], 1437 // 16)
        self.assertEqual(metrics["num_replicas"], 1)
        self.assertLessEqual(metrics["export_max_abs_diff"], 1e-5)
        for name in ("saved_model/saved_model.pb", "model.keras", "best.weights.h5"):
            self.assertTrue(os.path.isfile(os.path.join(model_dir, name)), msg=name)
        self.assertFalse(
            os.path.exists(os.path.join(model_dir, "backup")), msg="backup left after a full run"
        )
        with open(os.path.join(model_dir, "metrics.json")) as f:
            self.assertEqual(json.load(f)["test_accuracy"], metrics["test_accuracy"])

        # history.csv: one row per epoch (a resumed run appending to it: tests/training/test_callbacks.py).
        path = os.path.join(model_dir, HISTORY_FILE)
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([row["epoch"] for row in rows], ["0", "1", "2"])
        for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
            self.assertIn(column, rows[0])
        # The last epoch's row holds what fit returned (metrics.json's train_*).
        self.assertAllClose(float(rows[-1]["loss"]), metrics["train_loss"], rtol=1e-6)
        self.assertAllClose(float(rows[-1]["val_accuracy"]), metrics["train_val_accuracy"], rtol=1e-6)
        self.assertEqual(len(plots.read_history(path)["val_loss"]), 3)
        # training.evaluate finds it through the export's metadata ("source": the run's directory).
        self.assertEqual(evaluate.find_history({"source": model_dir}), path)
        png = plots.plot_training_curves(path, os.path.join(model_dir, "curves.png"))
        self.assertTrue(plots.is_png(png) and os.path.getsize(png) > 5000)

    def test_params_resolve_defaults_task_defaults_and_overrides(self):
        params = train.resolve_params(task="digits")
        digits = get_task("digits")
        for key, value in digits.defaults.items():
            self.assertEqual(params[key], value, msg=key)
        self.assertEqual(params["dataset"], "digits")
        self.assertEqual(params["strategy"], train.DEFAULTS["strategy"])
        params = train.resolve_params(
            task="digits", epochs=2, learning_rate=None, overrides={"num_latents": 8}
        )
        self.assertEqual(params["epochs"], 2)
        self.assertEqual(params["learning_rate"], digits.defaults["learning_rate"])  # None = not given
        model = digits.build_model(params)
        self.assertEqual(model.backbone.num_latents, 8)

    def test_parse_key_values(self):
        parsed = train.parse_key_values(
            ["num_latents=64", "languages=en,de", "image_size=(8, 8)", "x=True"], "o"
        )
        self.assertEqual(parsed, {"num_latents": 64, "languages": "en,de", "image_size": (8, 8), "x": True})
        with self.assertRaisesRegex(ValueError, "key=value"):
            train.parse_key_values(["num_latents"], "override")

    def test_unknown_arguments_raise(self):
        with self.assertRaisesRegex(ValueError, "Unknown task"):
            train.run(task="jft300m", model_dir=self.make_temp_dir())
        with self.assertRaisesRegex(ValueError, "Unknown arguments"):
            train.run(num_epochs=1)
        with self.assertRaisesRegex(ValueError, "Unknown overrides for task 'digits'"):
            get_task("digits").build_model(train.resolve_params(task="digits", overrides={"latents": 8}))
        with self.assertRaisesRegex(ValueError, "no presets"):
            get_task("digits").build_model(
                train.resolve_params(task="digits", preset="vision_perceiver_conv")
            )

    def test_registry(self):
        self.assertIn("digits", TASKS)
        with self.assertRaisesRegex(ValueError, "registered already"):
            register(Task("digits", "", "digits", None, None, None, None))
        with pytest.raises(ValueError, match="Expected one of"):
            get_task("nope")
