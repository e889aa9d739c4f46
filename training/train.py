"""Train a Perceiver IO task model on real data, evaluate it, export a SavedModel and check the export.

The main job of the project (README "Main job"):

    python -m training.train --task=digits --model_dir=runs/digits

Task `digits`: scikit-learn's `load_digits()` (1,797 real handwritten 8x8
digits, 10 classes, bundled with scikit-learn: no download) with a seeded,
stratified 80/20 train/test split; a small Perceiver IO image classifier
(pixels + 2-D Fourier positions -> latents -> one learned query -> 10
logits) trained with AdamW on sparse categorical cross-entropy.

Outputs under `--model_dir`: `saved_model/` (TF SavedModel with `serve` and
`serving_default` endpoints), `model.keras`, and `metrics.json` (test
accuracy, losses, export check, timings, the model config). The job fails
(non-zero exit) if the reloaded SavedModel's logits differ from the Keras
model's by more than `--export_tolerance`.
"""

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from keras_perceiver.export import export_saved_model, load_saved_model
from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.perceiver_io import PerceiverIO
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor

# Published-style hyperparameters scaled down to 8x8 images and 2 CPU cores.
DIGITS_MODEL_CONFIG = {
    "input_shape": (8, 8, 1),
    "num_latents": 32,
    "latent_dim": 64,
    "num_blocks": 1,
    "num_self_attends_per_block": 2,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 4,
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 2,
    "decoder_num_heads": 1,
    "output_channels": 10,
    "dropout": 0.1,
}
DIGITS_PREPROCESSOR_CONFIG = {"prep_type": "pixels", "position_encoding_type": "fourier", "num_bands": 8}
DIGITS_QUERY_CHANNELS = 64
# Pixels (ink levels 0..16) are standardized with these fixed constants (the data set's mean and std,
# rounded); a served model expects `(pixels - DIGITS_PIXEL_MEAN) / DIGITS_PIXEL_STD`.
DIGITS_PIXEL_MEAN = 4.9
DIGITS_PIXEL_STD = 6.0
# Std of the weight initialization (transformers' `initializer_range`). The library default 0.02
# (the reference's) suits widths of ~1000; at width 64 the logits vary across examples by only ~4e-5
# at initialization and AdamW stayed at chance (loss ln 10) for 40 epochs. With 0.2 (and unit-scale
# pixels, batch 16) training leaves chance within about 2 epochs.
DIGITS_INITIALIZER_RANGE = 0.2


def load_digits_data(seed, test_fraction):
    """scikit-learn digits as ((x_train, y_train), (x_test, y_test)).

    Images are float32 (N, 8, 8, 1): ink levels 0..16 standardized as
    `(x - DIGITS_PIXEL_MEAN) / DIGITS_PIXEL_STD` (unit scale speeds up the
    start of training); labels int32 (N,). The split is stratified by class
    and fixed by `seed`.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = ((digits.images - DIGITS_PIXEL_MEAN) / DIGITS_PIXEL_STD).astype("float32")[..., None]
    labels = digits.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return (x_train, y_train), (x_test, y_test)


def build_digits_model(seed=0):
    """The small Perceiver IO classifier of the `digits` task: (B, 8, 8, 1) -> (B, 10) logits."""
    keras.utils.set_random_seed(seed)
    return PerceiverIO(
        **DIGITS_MODEL_CONFIG,
        initializer_range=DIGITS_INITIALIZER_RANGE,
        preprocessor=ImagePreprocessor(**DIGITS_PREPROCESSOR_CONFIG, name="image_preprocessor"),
        query_builder=TrainableQueries(
            num_queries=1,
            num_channels=DIGITS_QUERY_CHANNELS,
            initializer=keras.initializers.TruncatedNormal(stddev=DIGITS_INITIALIZER_RANGE),
            name="queries",
        ),
        postprocessor=ClassificationPostprocessor(name="logits"),
        name="perceiver_io_digits",
    )


# Task name -> how to load its data and build its model. A task's data loader
# takes (seed, test_fraction) and returns ((x_train, y_train), (x_test, y_test))
# with x the model's "inputs" tensor and y integer class labels; its model
# builder takes the seed and returns an uncompiled keras.Model; `inputs` says
# what the exported model expects (written to metrics.json).
TASKS = {
    "digits": {
        "load_data": load_digits_data,
        "build_model": build_digits_model,
        "inputs": f"(B, 8, 8, 1) float32 = (ink level 0..16 - {DIGITS_PIXEL_MEAN}) / {DIGITS_PIXEL_STD}",
    },
}

# Defaults of `run` and of the command-line flags.
DEFAULTS = {
    "task": "digits",
    "model_dir": "runs/digits",
    "epochs": 40,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "weight_decay": 1e-4,
    "seed": 0,
    "test_fraction": 0.2,
    "max_train_steps": None,
    "export_tolerance": 1e-5,
    "jit_compile": True,
}

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", DEFAULTS["task"], sorted(TASKS), "Task to train.")
flags.DEFINE_string("model_dir", DEFAULTS["model_dir"], "Output: saved_model/, model.keras, metrics.json.")
flags.DEFINE_integer("epochs", DEFAULTS["epochs"], "Training epochs.")
flags.DEFINE_integer("batch_size", DEFAULTS["batch_size"], "Batch size.")
flags.DEFINE_float("learning_rate", DEFAULTS["learning_rate"], "Peak AdamW learning rate (cosine decay).")
flags.DEFINE_float("weight_decay", DEFAULTS["weight_decay"], "AdamW weight decay.")
flags.DEFINE_integer("seed", DEFAULTS["seed"], "Seed of the split, the initialization and the shuffling.")
flags.DEFINE_float("test_fraction", DEFAULTS["test_fraction"], "Held-out fraction of the data (stratified).")
flags.DEFINE_integer(
    "max_train_steps", DEFAULTS["max_train_steps"], "If set, at most this many steps per epoch (smoke runs)."
)
flags.DEFINE_float(
    "export_tolerance", DEFAULTS["export_tolerance"], "Max allowed |SavedModel - Keras| logit difference."
)
flags.DEFINE_bool("jit_compile", DEFAULTS["jit_compile"], "Compile the train/eval steps with XLA.")


def make_dataset(x, y, batch_size, training, seed):
    """tf.data pipeline of ({"inputs": x}, y) batches: cache, then for training shuffle, batch, prefetch.

    Training batches are full (the remainder of each reshuffled epoch is
    dropped, so XLA compiles one batch shape); evaluation keeps every example.
    """
    dataset = tf.data.Dataset.from_tensor_slices(({"inputs": x}, y)).cache()
    if training:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def run(verbose=2, **overrides):
    """Train, evaluate, export and check one task; return the metrics dict (also written as JSON).

    Args:
        verbose: `model.fit` verbosity (2: one line per epoch).
        **overrides: any key of `DEFAULTS` (the flags of the same names).

    Raises:
        ValueError: for an unknown task.
        RuntimeError: if the reloaded SavedModel's outputs differ from the
            Keras model's by more than `export_tolerance`.
    """
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown arguments {unknown}. Expected keys of {sorted(DEFAULTS)}")
    args = {**DEFAULTS, **overrides}
    task, model_dir, epochs, batch_size = args["task"], args["model_dir"], args["epochs"], args["batch_size"]
    seed, max_train_steps = args["seed"], args["max_train_steps"]
    if task not in TASKS:
        raise ValueError(f"Unknown task. Expected one of {sorted(TASKS)}. Received: task={task!r}")
    keras.utils.set_random_seed(seed)
    os.makedirs(model_dir, exist_ok=True)

    (x_train, y_train), (x_test, y_test) = TASKS[task]["load_data"](seed, args["test_fraction"])
    train_data = make_dataset(x_train, y_train, batch_size, training=True, seed=seed)
    test_data = make_dataset(x_test, y_test, batch_size, training=False, seed=seed)
    steps_per_epoch = len(x_train) // batch_size
    if max_train_steps is not None:
        steps_per_epoch = min(steps_per_epoch, max_train_steps)
        train_data = train_data.repeat()

    model = TASKS[task]["build_model"](seed)
    schedule = keras.optimizers.schedules.CosineDecay(
        args["learning_rate"], decay_steps=epochs * steps_per_epoch
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=args["weight_decay"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=args["jit_compile"],
    )

    start = time.perf_counter()
    history = model.fit(  # shuffle=False: the tf.data pipeline reshuffles every epoch itself
        train_data, epochs=epochs, steps_per_epoch=steps_per_epoch, shuffle=False, verbose=verbose
    )
    train_seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(test_data, verbose=0)
    print(f"{task}: test_accuracy={test_accuracy:.4f} test_loss={test_loss:.4f} (n_test={len(x_test)})")

    saved_model_dir = os.path.join(model_dir, "saved_model")
    export_saved_model(model, saved_model_dir, output_name="logits")
    model.save(os.path.join(model_dir, "model.keras"))
    # The Keras model in a (non-XLA) graph, as exported: eager or XLA execution rounds differently
    # (~1e-5 on logits of size ~10), which would hide nothing but fail the 1e-5 check.
    keras_graph = tf.function(lambda features: model(features, training=False), jit_compile=False)
    reloaded = load_saved_model(saved_model_dir)
    export_max_abs_diff = max(
        float(np.max(np.abs(reloaded(features)["logits"].numpy() - keras_graph(features).numpy())))
        for features, _ in test_data
    )
    print(f"{task}: SavedModel vs Keras logits max_abs_diff={export_max_abs_diff:.3g} ({saved_model_dir})")

    metrics = {
        "task": task,
        "inputs": TASKS[task]["inputs"],
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "train_accuracy": float(history.history["accuracy"][-1]),
        "train_loss": float(history.history["loss"][-1]),
        "num_train": int(len(x_train)),
        "num_test": int(len(x_test)),
        **{key: args[key] for key in ("epochs", "batch_size", "learning_rate", "weight_decay", "seed")},
        "steps_per_epoch": steps_per_epoch,
        "num_parameters": int(model.count_params()),
        "train_seconds": round(train_seconds, 1),
        "export_max_abs_diff": export_max_abs_diff,
        "saved_model": saved_model_dir,
        "backend": keras.backend.backend(),
        "model_config": model.get_config(),
    }
    with open(os.path.join(model_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2, default=str)
    if not export_max_abs_diff <= args["export_tolerance"]:
        raise RuntimeError(
            f"The reloaded SavedModel disagrees with the Keras model: max_abs_diff={export_max_abs_diff} "
            f"> export_tolerance={args['export_tolerance']} ({saved_model_dir})"
        )
    return metrics


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    run(**{key: FLAGS[key].value for key in DEFAULTS})


if __name__ == "__main__":
    app.run(main)
