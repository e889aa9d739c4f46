"""`training.hip_experiments`: the runs it asks for, resuming from finished runs, the summary table."""

import json
import os
import tempfile
from unittest import mock

import numpy as np
import pytest

from tests.test_case import TestCase
from training import hip_experiments


def write_metrics(directory, **metrics):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "metrics.json"), "w") as f:
        json.dump({"num_parameters": 1234, **metrics}, f)


class HipExperimentsTest(TestCase):
    def test_finished_runs_are_read_and_summarized_per_fold(self):
        output = tempfile.mkdtemp()
        accuracies = {0: 0.5, 1: 0.7}
        for fold, accuracy in accuracies.items():
            write_metrics(os.path.join(output, "hip_mae", f"fold_{fold}"), validation_loss=0.1, test_loss=0.2)
            write_metrics(os.path.join(output, "hip_learned_mae", f"fold_{fold}"), test_accuracy=accuracy)
        rows = {0: [{"name": "majority", "accuracy": 0.25}], 1: [{"name": "majority", "accuracy": 0.35}]}
        def baseline(dataset, options):
            return rows[options["fold"]]

        with (
            mock.patch.object(hip_experiments.train, "run") as run,
            mock.patch.object(hip_experiments, "baseline", side_effect=baseline),
        ):
            results = hip_experiments.run_experiment(
                "point_clouds", output, repeats=[0, 1], variants=["hip_learned_mae"]
            )
        run.assert_not_called()  # every run had finished
        row = results["variants"]["hip_learned_mae"]
        self.assertAllClose(row["mean"], 0.6)
        self.assertAllClose(row["std"], np.std([0.5, 0.7], ddof=1))
        self.assertAllClose(results["baselines"]["majority"]["mean"], 0.3)
        self.assertEqual(set(results["pretrain"]), {"0", "1"})
        with open(os.path.join(output, "results.md")) as f:
            table = f.read()
        self.assertIn("| hip_learned_mae | 0.6000 ± 0.1414 | 0.5000, 0.7000 | 1,234 |", table)

    def test_missing_runs_are_trained_with_the_experiment_budget(self):
        output = tempfile.mkdtemp()

        def fake_run(verbose, model_dir, export, tensorboard, **arguments):
            write_metrics(model_dir, test_accuracy=0.8, arguments=arguments)

        with (
            mock.patch.object(hip_experiments.train, "run", side_effect=fake_run) as run,
            mock.patch.object(hip_experiments, "baseline", return_value=[{"name": "lr", "accuracy": 0.83}]),
        ):
            hip_experiments.run_experiment("positions", output, repeats=[0, 1], variants=["hip_learned_mae"])
        calls = [call.kwargs for call in run.call_args_list]
        # One shared MAE run (seed 0), then one fine-tuning run per seed from it.
        self.assertEqual([c["task"] for c in calls], ["hip_mae", "hip_classification", "hip_classification"])
        self.assertEqual(calls[0]["batch_size"], 128)
        self.assertEqual(calls[0]["epochs"] * calls[0]["steps_per_epoch"], 600)
        self.assertEqual([c["seed"] for c in calls[1:]], [0, 1])
        for call in calls[1:]:
            self.assertEqual(call["init_from"], os.path.join(output, "hip_mae"))
            self.assertEqual((call["epochs"], call["steps_per_epoch"], call["batch_size"]), (3, 100, 64))
            self.assertEqual(call["warmup_steps"], 30)

    def test_unknown_names(self):
        with pytest.raises(ValueError, match="Unknown experiment.*'sizes'"):
            hip_experiments.run_experiment("sizes", tempfile.mkdtemp())
        with pytest.raises(ValueError, match=r"Unknown variants \['hip_xl'\]"):
            hip_experiments.run_experiment("positions", tempfile.mkdtemp(), variants=["hip_xl"])
