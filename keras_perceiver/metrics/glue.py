"""GLUE's metrics (Matthews correlation, accuracy, F1, Pearson/Spearman), computed by scikit-learn/scipy."""

import numpy as np

METRICS = ("matthews_correlation", "accuracy", "f1", "pearson", "spearman")


def glue_scores(metrics, labels, predictions):
    """The GLUE `metrics` of `predictions` against `labels`.

    Classification metrics take class indices (binary F1 scores class 1, the
    positive class of MRPC and QQP, as GLUE does); `"pearson"` and
    `"spearman"` take real values (STS-B's similarity in [0, 5]). Computed by
    scikit-learn (`matthews_corrcoef`, `accuracy_score`, `f1_score`) and
    scipy (`pearsonr`, `spearmanr`).

    Source: GLUE (Wang et al. 2018) section 3; the metrics of transformers'
    `glue_compute_metrics` and TF Model Garden's `sentence_prediction` task.

    Args:
        metrics: sequence of names from `METRICS`.
        labels: (N,) int class indices, or float scores for the correlations.
        predictions: (N,) predicted class indices, or float scores.

    Returns:
        dict name -> float.

    Raises:
        ValueError: for an unknown metric name, labels and predictions of
            different shapes or not rank 1, or no examples.

    Example:
    >>> from keras_perceiver.metrics.glue import glue_scores
    >>> glue_scores(["accuracy", "f1"], [0, 1, 1, 0], [0, 1, 0, 0])
    {'accuracy': 0.75, 'f1': 0.6666666666666666}
    """
    unknown = [name for name in metrics if name not in METRICS]
    if unknown:
        raise ValueError(
            f"glue_scores: unknown metric. Expected names of {list(METRICS)}. Received: {unknown}"
        )
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.ndim != 1 or labels.shape != predictions.shape or labels.size == 0:
        raise ValueError(
            "glue_scores: labels and predictions must be non-empty (N,) arrays of one shape. "
            f"Received: labels.shape={labels.shape}, predictions.shape={predictions.shape}"
        )
    from scipy import stats
    from sklearn import metrics as sk

    scorers = {
        "matthews_correlation": lambda: sk.matthews_corrcoef(labels, predictions),
        "accuracy": lambda: sk.accuracy_score(labels, predictions),
        "f1": lambda: sk.f1_score(labels, predictions, zero_division=0.0),
        "pearson": lambda: stats.pearsonr(labels, predictions)[0],
        "spearman": lambda: stats.spearmanr(labels, predictions)[0],
    }
    return {name: float(scorers[name]()) for name in metrics}
