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
        self.assertEqual(metrics["num_train"] + metrics["num_validation"] + metrics["num_test"], 1797)
        self.assertEqual((metrics["num_validation"], metrics["num_test"]), (180, 360))
        self.assertEqual(metrics["steps_per_epoch"], 1257 // 16)
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
        # The last epoch's row holds what fit returned (metrics.json's train_*); validation_* are the
        # selected (best validation accuracy) epoch's, whose weights were tested and exported.
        self.assertAllClose(float(rows[-1]["loss"]), metrics["train_loss"], rtol=1e-6)
        best = max(range(3), key=lambda epoch: float(rows[epoch]["val_accuracy"]))
        self.assertEqual(metrics["best_epoch"], best)
        self.assertAllClose(float(rows[best]["val_accuracy"]), metrics["validation_accuracy"], rtol=1e-6)
        self.assertNotIn("train_val_accuracy", metrics)
        with open(os.path.join(model_dir, "metrics.json")) as f:
            self.assertEqual(json.load(f)["saved_model"], "saved_model")  # relative: no machine path
        self.assertEqual(len(plots.read_history(path)["val_loss"]), 3)
        # training.evaluate finds it through the export's metadata ("source": the run's directory).
        self.assertEqual(evaluate.find_history({"source": model_dir}), path)
        png = plots.plot_training_curves(path, os.path.join(model_dir, "curves.png"))
        self.assertTrue(plots.is_png(png) and os.path.getsize(png) > 5000)

    def test_fit_validates_on_the_validation_split_and_tests_once(self):
        """fit's validation data is the task's validation split (carved from train), never the test split."""
        from unittest import mock

        import keras

        from training.data import digits

        fit_calls, evaluated = [], []
        original_fit, original_evaluate = keras.Model.fit, keras.Model.evaluate

        def fit(model, *args, **kwargs):
            fit_calls.append(kwargs.get("validation_data"))
            return original_fit(model, *args, **kwargs)

        def evaluate(model, *args, **kwargs):
            if not kwargs.get("_use_cached_eval_dataset"):  # fit's own validation calls evaluate too
                evaluated.append(args[0] if args else kwargs["x"])
            return original_evaluate(model, *args, **kwargs)

        def labels_of(dataset):  # sparse, or one-hot (label smoothing: the task's default)
            labels = [y if y.ndim == 1 else y.argmax(-1) for _, y in dataset.as_numpy_iterator()]
            return [int(label) for batch in labels for label in batch]

        tiny = {"num_latents": 4, "latent_dim": 16, "num_self_attends_per_block": 1, "query_channels": 16}
        common = dict(
            task="digits", epochs=2, max_train_steps=2, overrides=tiny, jit_compile=False, tensorboard=False,
            backup=False, export=False,
        )  # fmt: skip
        model_dir = os.path.join(self.make_temp_dir(), "run")
        with mock.patch.object(keras.Model, "fit", fit), mock.patch.object(keras.Model, "evaluate", evaluate):
            metrics = train.run(verbose=0, model_dir=model_dir, **common)
        _, validation_labels = digits.load_arrays("validation", validation_fraction=0.1)
        _, test_labels = digits.load_arrays("test")
        self.assertEqual(labels_of(fit_calls[0]), validation_labels.tolist())
        self.assertEqual([labels_of(data) for data in evaluated], [test_labels.tolist()])  # test: once
        self.assertEqual(
            (metrics["num_train"], metrics["num_validation"], metrics["num_test"]), (1257, 180, 360)
        )
        self.assertIn(metrics["best_epoch"], (0, 1))
        self.assertEqual(metrics["monitor"], "val_accuracy")
        for name in ("validation_accuracy", "validation_loss", "test_accuracy"):
            self.assertIn(name, metrics)
        self.assertTrue(metrics["restored"])
        self.assertTrue(os.path.isfile(os.path.join(model_dir, "best.weights.h5")))
        with open(os.path.join(model_dir, "metrics.json")) as f:
            written = json.load(f)
        self.assertEqual(written["params"]["model_dir"], ".")  # relative to the output directory

        # --validate=false: no validation data, no checkpoint selection, the test split still once.
        fit_calls.clear(), evaluated.clear()
        model_dir = os.path.join(self.make_temp_dir(), "run")
        with mock.patch.object(keras.Model, "fit", fit), mock.patch.object(keras.Model, "evaluate", evaluate):
            metrics = train.run(verbose=0, model_dir=model_dir, validate=False, **common)
        self.assertEqual(fit_calls, [None])
        self.assertEqual(len(evaluated), 1)
        self.assertEqual(metrics["num_validation"], 0)
        self.assertNotIn("best_epoch", metrics)
        self.assertFalse([name for name in metrics if name.startswith("validation_")])
        self.assertFalse(os.path.exists(os.path.join(model_dir, "best.weights.h5")))

    def test_select_best_epoch(self):
        history = {"loss": [3.0, 2.0, 1.0], "val_loss": [2.0, 1.5, 1.7], "val_accuracy": [0.5, 0.6, 0.7]}
        best = train.select_best_epoch(history, "val_loss", "auto", initial_epoch=4)
        self.assertEqual(best["best_epoch"], 5)
        self.assertEqual(best["validation"], {"validation_loss": 1.5, "validation_accuracy": 0.6})
        self.assertEqual(train.select_best_epoch(history, "val_accuracy")["best_epoch"], 2)
        self.assertEqual(train.select_best_epoch(history, "val_loss", "max")["best_epoch"], 0)
        self.assertEqual(train.select_best_epoch(history, "val_psnr"), {})

    def test_every_task_names_a_validation_split_distinct_from_test(self):
        for name, task in TASKS.items():
            self.assertTrue(task.validation_split, msg=name)
            self.assertNotEqual(task.validation_split, task.eval_split, msg=name)
            self.assertNotEqual(task.validation_split, task.train_split, msg=name)
        with self.assertRaisesRegex(ValueError, "gives no validation split 'validation'.*--validate=false"):
            train._validation_loader(
                train.resolve_params(task="optical_flow", dataset="middlebury_flow"), get_task("optical_flow")
            )

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
