"""Smoke test of the main job (`python -m training.train --task=digits`): it learns, exports and checks."""

import json
import os

import pytest

from training import train


def test_digits_job_learns_and_exports(tmp_path):
    model_dir = str(tmp_path / "digits")
    metrics = train.run(task="digits", model_dir=model_dir, epochs=3, seed=0, jit_compile=False, verbose=0)
    # Chance is 0.1 on the 10 balanced classes; 3 epochs on real digits reach ~0.69 (seed 0).
    assert metrics["test_accuracy"] > 0.4, metrics["test_accuracy"]
    assert metrics["num_train"] + metrics["num_test"] == 1797
    assert metrics["num_test"] == 360
    assert metrics["export_max_abs_diff"] <= 1e-5
    assert os.path.isfile(os.path.join(model_dir, "saved_model", "saved_model.pb"))
    assert os.path.isfile(os.path.join(model_dir, "model.keras"))
    with open(os.path.join(model_dir, "metrics.json")) as f:
        assert json.load(f)["test_accuracy"] == metrics["test_accuracy"]


def test_split_is_stratified_and_seeded():
    (x_train, y_train), (x_test, y_test) = train.load_digits_data(seed=0, test_fraction=0.2)
    (x_again, _), _ = train.load_digits_data(seed=0, test_fraction=0.2)
    assert x_train.shape == (1437, 8, 8, 1) and x_test.shape == (360, 8, 8, 1)
    assert x_train.dtype == "float32" and x_test.dtype == "float32"
    assert abs(float(x_train.mean())) < 0.05 and abs(float(x_train.std()) - 1.0) < 0.05
    assert (x_train == x_again).all()
    counts = [int((y_test == label).sum()) for label in range(10)]
    assert min(counts) >= 35 and max(counts) <= 37, counts


def test_unknown_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="Unknown task"):
        train.run(task="imagenet", model_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown arguments"):
        train.run(num_epochs=1)
