"""Evaluate an exported SavedModel on the held-out split of a data set; print metrics, write plots.

    python -m training.evaluate --model=saved_models/digits [--dataset=digits] [--split=test]

Loads the SavedModel's `serving_default` signature (the client signature
written by `training.export`: it takes what a client has, e.g. uint8 images
or raw UTF-8 strings) and its `metadata.json` (kind of task, data set,
split, reader options, class names), feeds it the examples of the split
through the `training.data` reader, and computes what fits the task:

- `classification`: accuracy, top-5 accuracy, cross-entropy; plots the
  confusion matrix;
- `flow`: end-point error in pixels over the valid pixels
  (`keras_perceiver.metrics.EndPointError`), that of zero flow (the
  baseline) and the 1/3/5-pixel outlier rates; plots the flow colour images of the first example;
- `reconstruction` (metadata `reconstruction_keys`: {output: reader
  feature}): PSNR in dB per output (`PeakSignalToNoiseRatio`, values in
  [0, 1]); plots originals over reconstructions;
- `masked_lm` (a model taking `token_ids` and `padding_mask`; metadata
  `sequence_length`, `mask_rate`): the texts are byte-tokenized, a seeded
  `mask_rate` of the real tokens of each text (at least one) replaced by
  [MASK], and the masked-LM accuracy (`MaskedLMAccuracy`) is the fraction of
  masked bytes predicted exactly;
- `tagging` (word segmentation / POS tagging: a SavedModel whose
  `serving_default` takes raw `text` and returns `words` separated by
  spaces and per-character `tags`): word-level precision, recall and F1
  against the reader's gold `words` (every word, punctuation included;
  `keras_perceiver.metrics.word_segmentation_scores`), and with POS tags the
  tag accuracy over the gold words (a word's tag is that of its first
  character).

`--flow_tiled_sizes=32x48,64x96` (flow models) evaluates at sizes larger
than the model's window instead: each example is resized by the reader,
predicted from overlapping windows of the model's size on the SavedModel's
`serve` endpoint (`keras_perceiver.models.predict_flow_tiled`, neighbours
overlapping by at least `--flow_tiled_min_overlap` pixels) and compared with
the zero-flow baseline; it writes `tiled.json` and one
`flow_tiled_<H>x<W>.png` per size:

    python -m training.evaluate --model=saved_models/optical_flow --dataset=middlebury_flow \
        --flow_tiled_sizes=32x48,48x72,64x96

Next to each metric, the task's simple baseline on the same examples, in
the same run (`training/baselines.py`; `--baselines=false` skips them;
for tagging logistic regression on each character's neighbourhood (word
F1) and each word's most frequent training tag, with every character as its
own word under `trivial` and snownlp's own segmenter and tagger as
optimistic `anchors`: they were trained on the test lines too):
logistic regression fitted on the data set's training split for image
(pixels / 255) and text (character 1-2-gram TF-IDF) classification; for
masked bytes the most frequent byte given its two neighbours, counted on
the training split, on the same masked positions; for video + audio
reconstruction the mean training frame and silence; for flow zero flow.
They are printed as `metric=value [baseline value]` and written to
`evaluation.json` under `baselines`: {metric: {"value": float, "name":
description, ...}} (or {"error": why} when the data set has no training
split to fit one on).

Plots (PNG) and `evaluation.json` go to `--output_dir` (default
`<model>/evaluation`); the training curves are drawn from `--history` (a
Keras `CSVLogger` file or a JSON history), else from the `history.csv` that
`training.train` writes (or a `training_log.csv` / `history.json`) in the
SavedModel directory or in the training run's directory
(`metadata["source"]`, written by `training.export`) when there is one.
"""

import inspect
import json
import os

import keras
import numpy as np
from absl import app, flags, logging

from keras_perceiver.export import (
    ATTENTION_MAPS_ENDPOINT,
    TFLITE_QUANTIZATIONS,
    load_saved_model,
    load_tflite,
    read_metadata,
)
from keras_perceiver.metrics.end_point_error import EndPointError
from keras_perceiver.metrics.glue import glue_scores
from keras_perceiver.metrics.masked_lm_accuracy import MaskedLMAccuracy
from keras_perceiver.metrics.psnr import PeakSignalToNoiseRatio
from keras_perceiver.metrics.word_segmentation import word_segmentation_scores, word_tag_accuracy
from keras_perceiver.validation import check_choice, check_positive_int
from training import baselines as baseline_models
from training import plots
from training.data import get_reader

KINDS = ("classification", "flow", "reconstruction", "masked_lm", "tagging", "glue")
# Groups of extra reference numbers under `baselines`, printed after them: {metric: {"value", "name"}}.
BASELINE_GROUPS = ("trivial", "anchors")
# `history.csv` is what training.train writes (training.callbacks.HISTORY_FILE).
HISTORY_FILES = ("history.csv", "training_log.csv", "history.json")


def frames_to_uint8(frames):
    """Reader frames float in [-1, 1] -> uint8 0..255 (what a client's decoded images hold)."""
    return np.clip(np.round((np.asarray(frames, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def client_inputs_from_examples(metadata, examples):
    """A batch of reader examples (dict of numpy arrays) -> the inputs of the client signature.

    Raises:
        ValueError: for a kind of task this module does not know.
    """
    kind = metadata.get("kind")
    if kind == "classification":
        key = metadata.get("input_key", "image")
        return {key: examples[key]}
    if kind == "flow":
        frames = frames_to_uint8(examples["frames"])
        return {"frame0": frames[:, 0], "frame1": frames[:, 1]}
    if kind == "tagging":
        return {"text": examples["text"]}
    if kind == "glue":
        keys = ["text"] + ([metadata["text_pair_key"]] if metadata.get("text_pair_key") else [])
        return {key: examples[key] for key in keys}
    if kind in ("reconstruction", "audio"):
        names = metadata.get("client_inputs", {}).get("inputs", {})
        return {name: examples[name] for name in names}
    raise ValueError(
        f"training.evaluate: unknown kind of task. Expected one of {KINDS}. Received: kind={kind!r}"
    )


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def evaluate_classification(serve, batches, metadata, output_dir):
    output_key, label_key = metadata.get("output_key", "logits"), metadata.get("label_key", "label")
    labels, logits = [], []
    for examples in batches:
        outputs = serve(client_inputs_from_examples(metadata, examples))
        logits.append(np.asarray(outputs[output_key], np.float64))
        labels.append(np.asarray(examples[label_key]).astype(np.int64))
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    num_classes = logits.shape[-1]
    probabilities = _softmax(logits)
    ranks = np.argsort(-logits, axis=-1)
    k = min(5, num_classes)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, ranks[:, 0]), 1)
    metrics = {
        "accuracy": float(np.mean(ranks[:, 0] == labels)),
        f"top{k}_accuracy": float(np.mean((ranks[:, :k] == labels[:, None]).any(axis=1))),
        "cross_entropy": float(
            -np.mean(np.log(np.maximum(probabilities[np.arange(len(labels)), labels], 1e-12)))
        ),
        "num_examples": int(len(labels)),
    }
    names = metadata.get("class_names")
    path = os.path.join(output_dir, "confusion_matrix.png")
    title = f"{metadata.get('dataset')} {metadata.get('split', 'test')}: accuracy {metrics['accuracy']:.3f}"
    metrics["plots"] = [plots.plot_confusion_matrix(matrix, path, names, title=title)]
    metrics["confusion_matrix"] = matrix.tolist()
    return metrics


def flow_metrics(batches, predict, path, title):
    """End-point error of `predict` over flow examples, the zero-flow baseline, outlier rates, a plot.

    Args:
        batches: iterable of reader batches {"frames": (B, 2, H, W, 3),
            "flow": (B, H, W, 2), optional "valid": (B, H, W)} (numpy).
        predict: function batch -> predicted flow (B, H, W, 2) in pixels.
        path: str, the PNG of the first example's flow (`plots.plot_flow`).
        title: str, the plot title's prefix.

    Returns:
        dict: `epe` and `zero_flow_epe` (px, valid pixels only), the 1/3/5
        pixel outlier rates, `num_examples` and `plots` ([path]).
    """
    epe, zero_flow_epe = EndPointError(), EndPointError()
    thresholds = (1.0, 3.0, 5.0)
    outliers, valid_total, first = np.zeros(len(thresholds)), 0.0, None
    num_examples = 0
    for examples in batches:
        predicted = np.asarray(predict(examples), np.float32)
        valid = np.asarray(examples.get("valid", np.ones(predicted.shape[:3], np.float32)), np.float32)
        epe.update_state(examples["flow"], predicted, sample_weight=valid)
        zero_flow_epe.update_state(examples["flow"], np.zeros_like(predicted), sample_weight=valid)
        errors = np.hypot(*(predicted - examples["flow"]).transpose(3, 0, 1, 2))
        outliers += [float(((errors > t) * valid).sum()) for t in thresholds]
        valid_total += float(valid.sum())
        num_examples += len(predicted)
        if first is None:
            first = (examples["frames"][0], examples["flow"][0], predicted[0], valid[0])
    metrics = {
        "epe": float(epe.result()),
        "zero_flow_epe": float(zero_flow_epe.result()),
        "num_examples": num_examples,
    }
    metrics["baselines"] = {"epe": {"value": metrics["zero_flow_epe"], "name": "zero flow"}}
    for threshold, count in zip(thresholds, outliers):
        metrics[f"outliers_{int(threshold)}px"] = count / max(valid_total, 1.0)
    frames, flow_true, flow_pred, valid = first
    title = f"{title}: EPE {metrics['epe']:.2f} px (zero flow {metrics['zero_flow_epe']:.2f})"
    metrics["plots"] = [plots.plot_flow(frames, flow_true, flow_pred, path, valid=valid, title=title)]
    return metrics


def evaluate_flow(serve, batches, metadata, output_dir):
    output_key = metadata.get("output_key", "flow")

    def predict(examples):
        return serve(client_inputs_from_examples(metadata, examples))[output_key]

    return flow_metrics(batches, predict, os.path.join(output_dir, "flow.png"), metadata.get("dataset"))


def parse_sizes(sizes):
    """["64x96", ...] or [(64, 96), ...] -> [(64, 96), ...].

    Raises:
        ValueError: for an item that is not two positive integers HxW.
    """
    parsed = []
    for size in sizes:
        parts = size.lower().split("x") if isinstance(size, str) else list(size)
        try:
            height, width = (int(part) for part in parts)
        except (TypeError, ValueError):
            height = width = 0
        if height < 1 or width < 1:
            raise ValueError(
                f"training.evaluate: a tiled size must be HxW with positive integers, e.g. 64x96. "
                f"Received: {size!r}"
            )
        parsed.append((height, width))
    return parsed


def _size_option(reader, dataset):
    """The name of the reader option that sets the examples' (H, W): `size` or `crop_size`."""
    parameters = inspect.signature(reader.load).parameters
    for name in ("size", "crop_size"):
        if name in parameters:
            return name
    raise ValueError(
        f"training.evaluate: tiled flow evaluation needs a reader that resizes its examples (a `size` or "
        f"`crop_size` option, e.g. middlebury_flow). Received: dataset={dataset!r}"
    )


def evaluate_flow_tiled(model, sizes, dataset, split, options, output_dir, min_overlap=8, max_examples=None):
    """Flow of a SavedModel at sizes larger than its window, from overlapping windows; EPE per size.

    The examples of the split are resized to each (H, W) of `sizes` by the
    reader, cut into overlapping windows of the model's size, predicted by
    the SavedModel's `serve` endpoint (frames in [-1, 1], as the reader
    gives them) and blended (`keras_perceiver.models.predict_flow_tiled`).

    Args:
        model: str, the SavedModel directory (a flow export with a `serve`
            endpoint taking {"frames": (B, 2, h, w, 3)}).
        sizes: list of "HxW" strings or (H, W) tuples, each at least (h, w).
        dataset, split: the `training.data` reader and its split.
        options: dict, the reader's options (its `size` or `crop_size` is
            replaced by each size).
        output_dir: str, where the PNGs go.
        min_overlap: int, least overlap of neighbouring windows in pixels.
            Defaults to 8.
        max_examples: optional int, at most this many examples per size.

    Returns:
        {"window_size": [h, w], "min_overlap": int, "sizes": {"<H>x<W>": the
        metrics of `flow_metrics`}}; the plot of each size is
        `flow_tiled_<H>x<W>.png` in `output_dir`.

    Raises:
        ValueError: for a reader without a size option, a `serve` endpoint
            without a static frames window, a bad size, or sizes smaller
            than the model's window.

    Example:
    >>> from training.evaluate import evaluate_flow_tiled
    >>> tiled = evaluate_flow_tiled("saved_models/optical_flow", ["64x96"], "middlebury_flow", "test",
    ...                             {}, "/tmp/tiled")
    >>> round(tiled["sizes"]["64x96"]["epe"], 3)
    2.083
    """
    from keras_perceiver.models.optical_flow_tiling import predict_flow_tiled

    reader = get_reader(dataset)
    size_option = _size_option(reader, dataset)
    serve = load_saved_model(model, endpoint="serve")
    spec = serve.input_signature
    spec = spec.get("frames") if isinstance(spec, dict) else spec
    if spec is None or len(spec.shape) != 5 or None in spec.shape[2:4]:
        raise ValueError(
            "training.evaluate: tiled flow evaluation needs a `serve` endpoint taking frames "
            f"(B, 2, h, w, 3) of a static window size. Received: input_signature={serve.input_signature}"
        )
    window_size = tuple(int(n) for n in spec.shape[2:4])
    os.makedirs(output_dir, exist_ok=True)

    def endpoint(inputs, training=False):
        del training
        return serve(inputs)

    results = {}
    for height, width in parse_sizes(sizes):
        examples = reader.load(split, **{**options, size_option: (height, width)})
        if max_examples:
            examples = examples.take(max_examples)

        def predict(batch):
            frames = batch["frames"]
            return predict_flow_tiled(endpoint, frames, min_overlap=min_overlap, window_size=window_size)

        name = f"{height}x{width}"
        path = os.path.join(output_dir, f"flow_tiled_{name}.png")
        title = f"{dataset} at {name} ({window_size[0]}x{window_size[1]} windows)"
        results[name] = flow_metrics(examples.batch(1).as_numpy_iterator(), predict, path, title)
    return {"window_size": list(window_size), "min_overlap": min_overlap, "sizes": results}


def evaluate_reconstruction(serve, batches, metadata, output_dir):
    keys = metadata.get("reconstruction_keys") or {name: name for name in metadata["client_inputs"]["inputs"]}
    psnr = {name: PeakSignalToNoiseRatio(max_value=1.0) for name in keys}
    num_examples, first = 0, {}
    for examples in batches:
        outputs = serve(client_inputs_from_examples(metadata, examples))
        for output_name, feature in keys.items():
            predicted = np.asarray(outputs[output_name], np.float32).reshape(examples[feature].shape)
            psnr[output_name].update_state(examples[feature], predicted)
            first.setdefault(output_name, (examples[feature], predicted))
        num_examples += len(next(iter(examples.values())))
    metrics = {f"psnr_{name}": float(metric.result()) for name, metric in psnr.items()}
    metrics["num_examples"] = num_examples
    metrics["plots"] = []
    for name, (original, predicted) in first.items():
        if original.ndim == 5:  # video (B, T, H, W, C): the frames of the first clip
            original, predicted = original[0], predicted[0]
        path = os.path.join(output_dir, f"reconstruction_{name}.png")
        title = f"{name}: PSNR {metrics[f'psnr_{name}']:.2f} dB"
        metrics["plots"].append(plots.plot_reconstructions(original, predicted, path, title=title))
    return metrics


def masked_lm_inputs(texts, sequence_length, mask_rate=0.15, seed=0):
    """Byte-tokenize `texts` and mask a seeded `mask_rate` of each text's real tokens (at least one).

    Args:
        texts: sequence of str or bytes (UTF-8).
        sequence_length: int, L (pad / truncate).
        mask_rate: float in (0, 1]. Defaults to 0.15.
        seed: int; text i of a call is masked with `default_rng([seed, i])`.

    Returns:
        (inputs {"token_ids": int32 (B, L) with [MASK] ids, "padding_mask":
        bool (B, L)}, targets int32 (B, L) the original ids, weights float32
        (B, L): 1 at the masked positions).
    """
    from keras_perceiver.tokenizers.byte_tokenizer import MASK_ID, ByteTokenizer

    tokens = ByteTokenizer(sequence_length=sequence_length)(list(texts))
    targets = tokens["token_ids"].numpy()
    padding_mask = tokens["padding_mask"].numpy()
    weights = np.zeros(targets.shape, np.float32)
    for i, row in enumerate(padding_mask):
        real = np.flatnonzero(row)
        if len(real) == 0:
            continue
        count = max(1, int(round(mask_rate * len(real))))
        chosen = np.random.default_rng([seed, i]).choice(real, size=count, replace=False)
        weights[i, chosen] = 1.0
    token_ids = np.where(weights > 0, MASK_ID, targets).astype(np.int32)
    return {"token_ids": token_ids, "padding_mask": padding_mask}, targets, weights


def evaluate_masked_lm(serve, batches, metadata, output_dir):
    del output_dir
    output_key = metadata.get("output_key", "outputs")
    accuracy = MaskedLMAccuracy()
    num_examples = 0
    for index, examples in enumerate(batches):
        inputs, targets, weights = masked_lm_inputs(
            examples["text"], metadata["sequence_length"], metadata.get("mask_rate", 0.15), seed=index
        )
        logits = np.asarray(serve(inputs)[output_key], np.float32)
        accuracy.update_state(targets, logits, sample_weight=weights)
        num_examples += len(targets)
    return {"masked_lm_accuracy": float(accuracy.result()), "num_examples": num_examples, "plots": []}


def _strings(values):
    return [value.decode("utf-8") if isinstance(value, bytes) else str(value) for value in values]


def tagging_references(examples):
    """(gold words per text, gold tags per text or None) of a batch of `people_daily` examples."""
    words = [line.split(" ") if line else [] for line in _strings(examples["words"])]
    tags = [line.split(" ") if line else [] for line in _strings(examples.get("pos", []))]
    return words, (tags if any(tags) else None)


def evaluate_tagging(serve, batches, metadata, output_dir):
    """Word segmentation (and POS tagging): served `words` and `tags` of raw texts against the gold words."""
    del output_dir
    gold_words, gold_tags, predicted_words, predicted_tags = [], [], [], []
    for examples in batches:
        outputs = serve(client_inputs_from_examples(metadata, examples))
        words, tags = tagging_references(examples)
        gold_words += words
        gold_tags += tags or [None] * len(words)
        predicted_words += [line.split(" ") if line else [] for line in _strings(outputs["words"].numpy())]
        predicted_tags += [
            [label.split("-", 1)[-1] for label in line.split(" ")] if line else []
            for line in _strings(outputs["tags"].numpy())
        ]
    scores = word_segmentation_scores(gold_words, predicted_words)
    metrics = {
        "word_f1": scores["f1"],
        "word_precision": scores["precision"],
        "word_recall": scores["recall"],
        "num_examples": len(gold_words),
        "num_words": scores["num_gold_words"],
        "plots": [],
    }
    if all(tags is not None for tags in gold_tags) and "-" in metadata.get("label_names", ["b"])[0]:
        metrics["tag_accuracy"] = word_tag_accuracy(gold_words, gold_tags, predicted_tags)
    return metrics


def glue_task_names(metadata):
    """The GLUE tasks of an export (its reader options; `training.data.glue`'s default otherwise)."""
    from training.data.glue import parse_tasks

    return parse_tasks(metadata.get("reader_options", {}).get("tasks", "sst2"))


def glue_metrics(names, tasks, labels, predictions):
    """Each task's GLUE metrics (`{task}_{metric}`) and, over several tasks, `glue_score` (the mean over
    tasks of each task's mean metric, GLUE's average)."""
    from training.data.glue import TASKS

    metrics, averages = {}, []
    for index, name in enumerate(names):
        mine = tasks == index
        if not mine.any():
            continue
        task = TASKS[name]
        gold = labels[mine] if task.is_regression else labels[mine].astype(np.int64)
        scores = glue_scores(task.metrics, gold, predictions[mine])
        metrics.update({f"{name}_{metric}": value for metric, value in scores.items()})
        metrics[f"{name}_num_examples"] = int(mine.sum())
        averages.append(float(np.mean(list(scores.values()))))
    if len(names) > 1 and averages:
        metrics["glue_score"] = float(np.mean(averages))
    return metrics


def evaluate_glue(serve, batches, metadata, output_dir):
    """GLUE: served logits of raw texts (and pairs); each task's metric (`glue_metrics`)."""
    del output_dir
    from training.data.glue import TASKS

    names = glue_task_names(metadata)
    labels, tasks, predictions = [], [], []
    for examples in batches:
        outputs = serve(client_inputs_from_examples(metadata, examples))
        task_ids = np.asarray(examples["task"])
        for row, index in enumerate(task_ids):
            name = names[index]
            logits = outputs[name] if len(names) > 1 else outputs[metadata.get("output_key", "outputs")]
            values = np.asarray(logits[row])
            predictions.append(float(values[0]) if TASKS[name].is_regression else int(values.argmax()))
        labels.append(np.asarray(examples["label"], np.float64))
        tasks.append(task_ids)
    labels, tasks = np.concatenate(labels), np.concatenate(tasks)
    metrics = glue_metrics(names, tasks, labels, np.asarray(predictions, np.float64))
    return {**metrics, "num_examples": int(len(labels)), "plots": []}


def glue_baselines(reader, options, examples, batch_size):
    """Per task, word 1-2-gram TF-IDF + logistic regression (ridge regression for STS-B) fitted on the
    training split (`baselines.glue_tfidf_predictions`), scored like the model (`glue_metrics`)."""
    names = glue_task_names({"reader_options": options})
    evaluated = {"text": [], "text_pair": [], "label": [], "task": []}
    for batch in examples.batch(batch_size).as_numpy_iterator():
        for key in evaluated:
            evaluated[key].extend(batch[key])
    train = _training_arrays(reader, options, ("text", "text_pair", "label", "task"))
    predictions = baseline_models.glue_tfidf_predictions(names, train, evaluated)
    metrics = glue_metrics(
        names, np.asarray(evaluated["task"]), np.asarray(evaluated["label"], np.float64), predictions
    )
    name = "word 1-2-gram TF-IDF + logistic (STS-B: ridge) regression on the training split"
    return {key: {"value": value, "name": name} for key, value in metrics.items() if isinstance(value, float)}


EVALUATORS = {
    "classification": evaluate_classification,
    "flow": evaluate_flow,
    "reconstruction": evaluate_reconstruction,
    "masked_lm": evaluate_masked_lm,
    "tagging": evaluate_tagging,
    "glue": evaluate_glue,
}


def _training_arrays(reader, options, keys):
    """The training split of a reader as {key: array or list} (`load_arrays` when the reader has one)."""
    if hasattr(reader, "load_arrays") and len(keys) == 2:
        first, second = reader.load_arrays("train", **options)
        return dict(zip(keys, (first, second)))
    columns = {key: [] for key in keys}
    for example in reader.load("train", **options).as_numpy_iterator():
        for key in keys:
            columns[key].append(example[key])
    return {
        key: np.stack(values) if not isinstance(values[0], bytes) else values
        for key, values in columns.items()
    }


def compute_baselines(kind, metadata, dataset, options, examples, batch_size=64):
    """The task's simple baseline next to each metric, on the evaluated `examples` (see the module docstring).

    Args:
        kind: str, one of `KINDS` (flow baselines come with `flow_metrics`).
        metadata: the SavedModel's metadata (keys, sequence length, mask rate).
        dataset: str, the `training.data` reader; its `"train"` split (with
            `options`) is what the baselines are fitted on.
        options: dict, the reader options of the evaluation.
        examples: `tf.data.Dataset` of the evaluated (unbatched) examples.
        batch_size: int, the evaluation's batch size (masked-LM batches are
            masked with seed = batch index, as `evaluate_masked_lm` does).

    Returns:
        {metric name: {"value": float, "name": str, ...}}, or {"error": str}
        when no baseline can be fitted (no training split, e.g. a test-only
        reader or a tfds set without one), or {} for a kind without one.
    """
    try:
        reader = get_reader(dataset)
        if kind == "classification":
            input_key, label_key = metadata.get("input_key", "image"), metadata.get("label_key", "label")
            train = _training_arrays(reader, options, (input_key, label_key))
            inputs, labels = [], []
            for batch in examples.batch(batch_size).as_numpy_iterator():
                inputs.extend(batch[input_key])
                labels.extend(batch[label_key])
            if isinstance(inputs[0], bytes | str):
                result = baseline_models.text_logistic_regression(
                    train[input_key], train[label_key], inputs, np.array(labels)
                )
            else:
                result = baseline_models.image_logistic_regression(
                    train[input_key], train[label_key], np.stack(inputs), np.array(labels)
                )
            return {
                "accuracy": {
                    "value": result["accuracy"],
                    "name": result["name"],
                    "num_train": result["num_train"],
                }
            }
        if kind == "masked_lm":
            train = _training_arrays(reader, options, ("text", "label"))
            model = baseline_models.ContextCountModel(train["text"])
            correct = scored = 0.0
            for index, batch in enumerate(examples.batch(batch_size).as_numpy_iterator()):
                inputs, targets, weights = masked_lm_inputs(
                    batch["text"], metadata["sequence_length"], metadata.get("mask_rate", 0.15), seed=index
                )
                batch_correct, batch_scored = baseline_models.masked_byte_accuracy(
                    model, inputs["token_ids"], inputs["padding_mask"], targets, weights
                )
                correct, scored = correct + batch_correct, scored + batch_scored
            name = "most frequent byte given its two neighbours (counted on the training split)"
            value = correct / max(scored, 1.0)
            return {
                "masked_lm_accuracy": {
                    "value": value,
                    "name": name,
                    "num_train_tokens": model.num_train_tokens,
                }
            }
        if kind == "tagging":
            return tagging_baselines(reader, options, examples, batch_size)
        if kind == "glue":
            return glue_baselines(reader, options, examples, batch_size)
        if kind == "reconstruction":
            keys = metadata.get("reconstruction_keys") or {}
            video = next((output for output, feature in keys.items() if feature == "video"), None)
            audio = next((output for output, feature in keys.items() if feature == "audio"), None)
            if video is None or audio is None:
                return {}
            train_videos = np.stack([e["video"] for e in reader.load("train", **options).as_numpy_iterator()])
            evaluated = list(examples.as_numpy_iterator())
            result = baseline_models.mean_frame_and_silence_psnr(
                train_videos,
                np.stack([e["video"] for e in evaluated]),
                np.stack([e["audio"] for e in evaluated]),
            )
            return {
                f"psnr_{video}": {"value": result["psnr_video"], "name": "mean training frame"},
                f"psnr_{audio}": {"value": result["psnr_audio"], "name": "silence"},
            }
    except (ValueError, FileNotFoundError, KeyError, ImportError) as error:
        return {"error": f"no baseline for {dataset!r}: {type(error).__name__}: {error}"}
    return {}


def tagging_baselines(reader, options, examples, batch_size):
    """Word F1 of logistic regression on each character's neighbourhood (`CharacterWindowTagger`, b/m/e/s
    fitted on the training lines) and, with POS tags, each word's most frequent training tag (tag accuracy
    over the gold words); every character a word under `"trivial"`; snownlp's own segmenter/tagger under
    `"anchors"` (trained on the whole corpus, test lines included: optimistic)."""
    from training.data.people_daily import positions_to_words, words_to_positions

    texts, gold_words, gold_tags = [], [], []
    for batch in examples.batch(batch_size).as_numpy_iterator():
        words, tags = tagging_references(batch)
        texts += _strings(batch["text"])
        gold_words += words
        gold_tags += tags or []
    train_texts, train_words, train_tags = reader.load_lines("train", **options)
    tagger = baseline_models.CharacterWindowTagger(
        train_texts, [words_to_positions(words) for words in train_words]
    )
    segmented = [positions_to_words(text, labels) for text, labels in zip(texts, tagger.predict(texts))]
    result = {
        "word_f1": {
            "value": word_segmentation_scores(gold_words, segmented)["f1"],
            "name": "logistic regression on the characters and character pairs around each one (b/m/e/s)",
            "num_train_characters": tagger.num_train_characters,
        }
    }
    single = word_segmentation_scores(gold_words, baseline_models.single_character_words(texts))
    trivial = {"word_f1": {"value": single["f1"], "name": "every character its own word"}}
    anchor = word_segmentation_scores(gold_words, baseline_models.snownlp_words(texts))
    anchors = {"word_f1": {"value": anchor["f1"], "name": "snownlp.seg (trained on all lines, test too)"}}
    if gold_tags:
        predicted = baseline_models.MostFrequentTag(train_words, train_tags).predict(gold_words)
        result["tag_accuracy"] = {
            "value": _word_tags_accuracy(gold_words, gold_tags, predicted),
            "name": "each gold word's most frequent training tag",
        }
        tagged = baseline_models.snownlp_tags(gold_words)
        anchors["tag_accuracy"] = {
            "value": _word_tags_accuracy(gold_words, gold_tags, tagged),
            "name": "snownlp.tag on the gold words (trained on all lines, test too)",
        }
    result["trivial"] = trivial
    result["anchors"] = anchors
    return result


def _word_tags_accuracy(gold_words, gold_tags, predicted_word_tags):
    """Tag accuracy of per-word predictions (spread to their characters for `word_tag_accuracy`)."""
    per_character = [
        [tag for word, tag in zip(words, tags) for _ in word]
        for words, tags in zip(gold_words, predicted_word_tags)
    ]
    return word_tag_accuracy(gold_words, gold_tags, per_character)


def _summary(metrics):
    """`name=value [baseline value]` for each float metric (the baseline when there is one)."""
    baselines = metrics.get("baselines") or {}
    parts = []
    for name, value in metrics.items():
        if isinstance(value, float):
            baseline = baselines.get(name)
            suffix = f" [baseline {baseline['value']:.4f}]" if isinstance(baseline, dict) else ""
            parts.append(f"{name}={value:.4f}{suffix}")
    return " ".join(parts)


def find_history(metadata, history=None, model=None):
    """The training-history file to plot, or None.

    `history` when given; else the first of `HISTORY_FILES` in the SavedModel
    directory `model`, then in the training run's directory
    (`metadata["source"]`, relative to `model` unless absolute, or the
    directory of that file).
    """
    if history:
        return history
    directories = [model] if model else []
    source = metadata.get("source")
    if source:
        if model and not os.path.isabs(source):  # `training.export` writes it relative to the export
            source = os.path.join(model, source)
        directories.append(source if os.path.isdir(source) else os.path.dirname(source))
    for directory in directories:
        for name in HISTORY_FILES:
            if os.path.isfile(os.path.join(directory, name)):
                return os.path.join(directory, name)
    return None


def check_run_arguments(batch_size, max_examples, tflite, flow_tiled_min_overlap):
    """Raise a ValueError naming the argument and its value unless every one is in range.

    `batch_size` must be a positive int, `max_examples` None or a positive
    int, `tflite` None or one of `TFLITE_QUANTIZATIONS`, and
    `flow_tiled_min_overlap` a non-negative int.
    """
    check_positive_int("batch_size", batch_size)
    check_positive_int("max_examples", max_examples, allow_none=True)
    if tflite is not None:
        check_choice("tflite", tflite, TFLITE_QUANTIZATIONS)
    overlap = flow_tiled_min_overlap
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ValueError(
            "`flow_tiled_min_overlap` must be a non-negative integer (pixels). "
            f"Received: flow_tiled_min_overlap={overlap!r}"
        )


def run(
    model,
    dataset=None,
    split=None,
    batch_size=64,
    max_examples=None,
    output_dir=None,
    history=None,
    tflite=None,
    flow_tiled_sizes=None,
    flow_tiled_min_overlap=8,
    baselines=True,
    attention_maps=False,
):
    """Evaluate the SavedModel `model` (see the module docstring); return the metrics dict.

    With `attention_maps` (an image classifier exported with
    `training.export --attention_maps`), the latents' attention over the
    first test image is drawn to `attention_maps.png`.

    With `baselines` (default True) the task's baseline is computed on the
    same examples (`compute_baselines`) and reported next to each metric
    (`metrics["baselines"]`).

    With `tflite` (a quantization: `"float32"`, `"float16"`,
    `"dynamic_int8"`), the TFLite file `model/tflite/model_<tflite>.tflite`
    written by `training.export` is evaluated instead of the SavedModel (the
    metadata still comes from the SavedModel directory).

    With `flow_tiled_sizes` (a flow model; sizes "HxW" or (H, W) at least
    the model's window), the examples are resized to each size and
    predicted from overlapping windows (`evaluate_flow_tiled`, neighbours
    overlapping by at least `flow_tiled_min_overlap` pixels) instead; the
    result goes to `tiled.json` and `flow_tiled_<H>x<W>.png`.

    Raises:
        ValueError: for arguments out of range (`check_run_arguments`) or an
            unknown data set, if the SavedModel's metadata names no kind of
            task or no data set (pass `dataset`), for an unknown kind, or for
            `flow_tiled_sizes` with a model that is not a flow model, with
            `tflite`, or with a bad size.
            `attention_maps` for a model that is not an image classifier or
            has no `attention_maps` signature.
        FileNotFoundError: if `model` is not a directory, or with `tflite`
            if its TFLite file is missing.
    """
    check_run_arguments(batch_size, max_examples, tflite, flow_tiled_min_overlap)
    if not os.path.isdir(model):
        raise FileNotFoundError(f"training.evaluate: no SavedModel. Expected a directory at {model!r}")
    metadata = read_metadata(model)
    kind = metadata.get("kind")
    if kind not in EVALUATORS:
        raise ValueError(
            f"training.evaluate: {model!r} has no known kind of task in its metadata.json (written by "
            f"training.export). Expected one of {KINDS}. Received: kind={kind!r}"
        )
    dataset = dataset or metadata.get("dataset")
    if not dataset:
        raise ValueError(f"training.evaluate: no data set. Pass --dataset. Received: dataset={dataset!r}")
    reader = get_reader(dataset)  # raises for an unknown data set before anything is written
    split = split or metadata.get("split", "test")
    options = metadata.get("reader_options", {}) if dataset == metadata.get("dataset") else {}
    metadata = {**metadata, "dataset": dataset, "split": split}
    output_dir = output_dir or os.path.join(
        model, "evaluation" if not tflite else f"evaluation_tflite_{tflite}"
    )
    if flow_tiled_sizes:
        if kind != "flow" or tflite:
            raise ValueError(
                "training.evaluate: tiled evaluation is for flow SavedModels (their `serve` endpoint). "
                f"Received: kind={kind!r}, tflite={tflite!r}"
            )
        flow_tiled_sizes = parse_sizes(flow_tiled_sizes)
        os.makedirs(output_dir, exist_ok=True)
        return _run_flow_tiled(
            model, flow_tiled_sizes, dataset, split, options, output_dir, flow_tiled_min_overlap, max_examples
        )

    attention = _attention_endpoint(model, metadata) if attention_maps else None
    if tflite:
        path = os.path.join(model, "tflite", f"model_{tflite}.tflite")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"training.evaluate: no TFLite file. Expected a file at {path!r}")
        serve = load_tflite(path)
    else:
        serve = load_saved_model(model)
    examples = reader.load(split, **options)
    if max_examples:
        examples = examples.take(max_examples)
    os.makedirs(output_dir, exist_ok=True)
    batches = examples.batch(batch_size).as_numpy_iterator()
    metrics = {
        "model": model,
        "tflite": tflite,
        "dataset": dataset,
        "split": split,
        **EVALUATORS[kind](serve, batches, metadata, output_dir),
    }
    if baselines and kind != "flow":  # flow_metrics adds zero flow itself
        metrics["baselines"] = compute_baselines(kind, metadata, dataset, options, examples, batch_size)
    elif not baselines:
        metrics.pop("baselines", None)

    if attention is not None:
        metrics["plots"].append(_draw_attention_maps(attention, metadata, examples, output_dir))
    history_file = find_history(metadata, history, model)
    if history_file:
        metrics["plots"].append(
            plots.plot_training_curves(history_file, os.path.join(output_dir, "training_curves.png"))
        )
    with open(os.path.join(output_dir, "evaluation.json"), "w") as f:
        json.dump(portable_report(metrics, output_dir), f, indent=2)
    summary = _summary(metrics)
    print(
        f"{os.path.basename(os.path.normpath(model))} on {dataset}/{split}: {summary} "
        f"(n={metrics['num_examples']})"
    )
    if isinstance(metrics.get("baselines"), dict) and "error" in metrics["baselines"]:
        print(f"baselines: {metrics['baselines']['error']}")
    elif metrics.get("baselines"):
        baselines = dict(metrics["baselines"])
        groups = {group: baselines.pop(group) for group in BASELINE_GROUPS if group in baselines}
        by_name = {}
        for key, value in baselines.items():
            by_name.setdefault(value["name"], []).append(key)
        print("baselines: " + "; ".join(f"{', '.join(keys)}: {name}" for name, keys in by_name.items()))
        for group, entries in groups.items():
            print(
                f"{group}: "
                + "; ".join(f"{key}={value['value']:.4f} ({value['name']})" for key, value in entries.items())
            )
    if metrics["plots"]:
        print(f"plots: {', '.join(metrics['plots'])}")
    return metrics


def _attention_endpoint(model, metadata):
    """The `attention_maps` signature of an image classifier's SavedModel (checked before any writing)."""
    inputs = metadata.get("client_inputs", {}).get("inputs", {})
    image = inputs.get(metadata.get("input_key", "image"), {})
    if metadata.get("kind") != "classification" or len(image.get("shape", ())) != 4:
        raise ValueError(
            "training.evaluate: attention maps are drawn over input images. Expected an image classifier "
            f"(client input (B, H, W, C)). Received: kind={metadata.get('kind')!r}, inputs={inputs}"
        )
    return load_saved_model(model, endpoint=ATTENTION_MAPS_ENDPOINT)


def _draw_attention_maps(attention, metadata, examples, output_dir):
    first = next(examples.take(1).batch(1).as_numpy_iterator())
    maps = attention(client_inputs_from_examples(metadata, first))
    image = first[metadata.get("input_key", "image")][0]
    title = f"{metadata.get('dataset')} {metadata.get('split', 'test')}[0]: latent attention (mean of heads)"
    path = os.path.join(output_dir, "attention_maps.png")
    return plots.plot_attention_maps(image, np.asarray(maps["encoder_attention"])[0], path, title=title)


def portable_report(metrics, output_dir):
    """`metrics` with the model and plot paths relative to `output_dir` (no machine path in the JSON)."""

    def relative(path):
        return os.path.relpath(os.path.abspath(path), os.path.abspath(output_dir))

    report = dict(metrics)
    if report.get("model"):
        report["model"] = relative(report["model"])
    if report.get("plots"):
        report["plots"] = [relative(path) for path in report["plots"]]
    if isinstance(report.get("sizes"), dict):
        report["sizes"] = {
            name: {**values, "plots": [relative(path) for path in values.get("plots", [])]}
            for name, values in report["sizes"].items()
        }
    return report


def _run_flow_tiled(model, sizes, dataset, split, options, output_dir, min_overlap, max_examples):
    tiled = evaluate_flow_tiled(model, sizes, dataset, split, options, output_dir, min_overlap, max_examples)
    metrics = {"model": model, "dataset": dataset, "split": split, **tiled}
    with open(os.path.join(output_dir, "tiled.json"), "w") as f:
        json.dump(portable_report(metrics, output_dir), f, indent=2)
    height, width = tiled["window_size"]
    for name, values in tiled["sizes"].items():
        summary = _summary(values)
        print(
            f"{os.path.basename(os.path.normpath(model))} on {dataset}/{split} at {name} "
            f"({height}x{width} windows, min overlap {min_overlap}): {summary} (n={values['num_examples']})"
        )
    print(f"plots: {', '.join(p for values in tiled['sizes'].values() for p in values['plots'])}")
    return metrics


FLAGS = flags.FLAGS


def define_flags():
    """Define the command-line flags (only when run as a program: importing the module defines none)."""
    flags.DEFINE_string(
        "model", None, "Exported SavedModel directory (training.export), e.g. saved_models/digits."
    )
    flags.DEFINE_string(
        "dataset", None, "training.data reader or tfds:<name> (default: the model's metadata)."
    )
    flags.DEFINE_string("split", None, "Split to evaluate (default: the metadata's, usually test).")
    flags.DEFINE_integer("batch_size", 64, "Batch size.")
    flags.DEFINE_integer("max_examples", None, "Evaluate at most this many examples.")
    flags.DEFINE_string(
        "output_dir", None, "Where to write the plots and evaluation.json (default: <model>/evaluation)."
    )
    flags.DEFINE_string("history", None, "Training history (Keras CSVLogger CSV or JSON) to plot.")
    flags.DEFINE_enum(
        "tflite", None, ["float32", "float16", "dynamic_int8"], "Evaluate <model>/tflite/model_<this>.tflite."
    )
    flags.DEFINE_list(
        "flow_tiled_sizes",
        None,
        "Flow models: evaluate at these sizes HxW (e.g. 32x48,64x96) from overlapping windows of the "
        "model's size (predict_flow_tiled on the serve endpoint); writes tiled.json.",
    )
    flags.DEFINE_integer(
        "flow_tiled_min_overlap", 8, "Least overlap in pixels of neighbouring windows (--flow_tiled_sizes)."
    )
    flags.DEFINE_bool(
        "attention_maps",
        False,
        "Image classifiers exported with --attention_maps: draw the latents' attention over the first "
        "image (attention_maps.png).",
    )
    flags.DEFINE_bool(
        "baselines", True, "Report the task's simple baseline (training/baselines.py) next to each metric."
    )


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    if not FLAGS.model:
        raise app.UsageError("--model is required.")
    keras.config.disable_interactive_logging()
    run(
        FLAGS.model,
        FLAGS.dataset,
        FLAGS.split,
        FLAGS.batch_size,
        FLAGS.max_examples,
        FLAGS.output_dir,
        FLAGS.history,
        FLAGS.tflite,
        FLAGS.flow_tiled_sizes,
        FLAGS.flow_tiled_min_overlap,
        FLAGS.baselines,
        FLAGS.attention_maps,
    )


def console_main():
    """Entry point of the `keras-perceiver-evaluate` console script (= `python -m training.evaluate`)."""
    define_flags()
    app.run(main)


if __name__ == "__main__":
    console_main()
