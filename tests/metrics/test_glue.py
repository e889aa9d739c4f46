"""Tests of `glue_scores`: each GLUE metric against hand-computed values and numpy formulas."""

import numpy as np
import pytest

from keras_perceiver.metrics.glue import glue_scores


def test_classification_metrics_by_hand():
    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    predictions = [1, 1, 0, 0, 0, 1, 1, 0]
    # Confusion: TP 3, FN 1, FP 1, TN 3.
    tp, fn, fp, tn = 3, 1, 1, 3
    mcc = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    scores = glue_scores(["matthews_correlation", "accuracy", "f1"], labels, predictions)
    assert scores["matthews_correlation"] == pytest.approx(mcc) == pytest.approx(0.5)
    assert scores["accuracy"] == pytest.approx(6 / 8)
    assert scores["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    # F1 scores the positive class (1), as GLUE does for MRPC and QQP.
    assert glue_scores(["f1"], [0, 0, 1], [0, 0, 0])["f1"] == 0.0
    assert glue_scores(["matthews_correlation"], [0, 1, 0, 1], [1, 0, 1, 0])["matthews_correlation"] == -1.0
    # Three classes (MNLI): accuracy only.
    assert glue_scores(["accuracy"], [0, 1, 2, 2], [0, 2, 2, 2])["accuracy"] == 0.75


def test_correlations_against_numpy():
    rng = np.random.default_rng(0)
    labels = rng.uniform(0, 5, size=50)
    predictions = labels + rng.normal(0, 1, size=50)
    scores = glue_scores(["pearson", "spearman"], labels, predictions)
    assert scores["pearson"] == pytest.approx(np.corrcoef(labels, predictions)[0, 1])
    ranks = lambda x: np.argsort(np.argsort(x))  # noqa: E731  (no ties in continuous draws)
    assert scores["spearman"] == pytest.approx(np.corrcoef(ranks(labels), ranks(predictions))[0, 1])
    assert glue_scores(["spearman"], [1.0, 2.0, 3.0], [10.0, 20.0, 1000.0])["spearman"] == pytest.approx(1.0)


def test_errors_name_the_received_values():
    with pytest.raises(ValueError, match=r"unknown metric.*\['bleu'\]"):
        glue_scores(["bleu"], [1], [1])
    with pytest.raises(ValueError, match=r"labels.shape=\(2,\), predictions.shape=\(3,\)"):
        glue_scores(["accuracy"], [1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match=r"labels.shape=\(0,\)"):
        glue_scores(["accuracy"], [], [])
