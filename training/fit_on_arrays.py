"""Train an image-classification model on arrays with any Keras backend (a lent GPU without TensorFlow).

TensorFlow's GPU wheels do not fit on a lent accelerator machine, but the
Keras JAX backend runs there. This job splits a run into three steps:

1. `prepare` (here, TensorFlow): the task's reader writes the train and
   validation splits as arrays (`arrays.npz`, uint8 images and int labels,
   the same split as `training.train` uses) and `recipe.json` holds the
   task's model config (`model.get_config()` of the task's model with the
   `--override`s), its pixel normalization and the recipe (optimizer,
   schedule, epochs, batch size, label smoothing, augmentation).
2. `fit` (there, e.g. `KERAS_BACKEND=jax`): for each seed, the model from
   that config trained with `keras.Model.fit` on the arrays (random crops
   after zero padding and horizontal flips drawn per batch with NumPy),
   validated after every epoch; the weights of the epoch with the best
   validation accuracy are kept (`<run>/seed<k>/best.weights.h5`, one row per
   epoch in `history.csv`).
3. `adopt` (here): writes the `model.keras` and `metrics.json` of such a
   directory, so that `training.export` and `training.evaluate` treat it as a
   `training.train` run of the task (the test split is evaluated there, once).

    python -m training.fit_on_arrays prepare --task=fashion_mnist --out=runs/fm_gpu --epochs=30 \\
        --override=num_latents=128 ...
    KERAS_BACKEND=jax python -m training.fit_on_arrays fit --run=runs/fm_gpu --seeds=0,1,2
    python -m training.fit_on_arrays adopt --run=runs/fm_gpu --seed=0
"""

import argparse
import json
import math
import os
import time

import numpy as np

# Tasks whose images are normalized as (x / 255 - PIXEL_MEAN) / PIXEL_STD (what `fit` reproduces).
SUPPORTED_TASKS = ("fashion_mnist",)
RECIPE_FILE = "recipe.json"
ARRAYS_FILE = "arrays.npz"
# The recipe keys `prepare` takes from the command line, with their defaults (`training.train`'s flag names).
RECIPE_DEFAULTS = {
    "epochs": 30,
    "batch_size": 128,
    "learning_rate": 2e-3,
    "optimizer": "lamb",
    "schedule": "constant_cosine",
    "warmup_steps": 500,
    "weight_decay": 1e-2,
    "clip_norm": 1.0,
    "label_smoothing": 0.1,
    "crop_padding": 2,
    "flip": True,
}


def prepare(task_name, out, overrides, recipe):
    """Write `arrays.npz` and `recipe.json` for `task_name` under `out` (needs TensorFlow)."""
    from training.tasks import get_task
    from training.train import resolve_params

    if task_name not in SUPPORTED_TASKS:
        raise ValueError(f"prepare: `task` must be one of {SUPPORTED_TASKS}. Received: task={task_name!r}")
    task = get_task(task_name)
    params = resolve_params(task=task_name, overrides=overrides)
    model = task.build_model(params)
    module = __import__(f"training.tasks.{task_name}", fromlist=["PIXEL_MEAN"])
    reader = __import__(f"training.data.{task.dataset}", fromlist=["load_arrays"])
    options = task.reader_options(params) if task.reader_options else {}
    arrays = {}
    for split in ("train", "validation"):
        images, labels = reader.load_arrays(split, **options)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    os.makedirs(out, exist_ok=True)
    np.savez_compressed(os.path.join(out, ARRAYS_FILE), **arrays)
    description = {
        "task": task_name,
        "dataset": task.dataset,
        "reader_options": options,
        "overrides": overrides,
        "model_config": model.get_config(),
        "model_class": type(model).__name__,
        "input_name": model.inputs[0].name,
        "pixel_mean": module.PIXEL_MEAN,
        "pixel_std": module.PIXEL_STD,
        "num_classes": module.NUM_CLASSES,
        "recipe": recipe,
    }
    with open(os.path.join(out, RECIPE_FILE), "w") as f:
        json.dump(description, f, indent=1)
    sizes = {key: value.shape for key, value in arrays.items()}
    print(f"prepare: {task_name} arrays {sizes}, {model.count_params():,} parameters -> {out}")


def augment(images, crop_padding, flip, rng):
    """Random crops after zero padding by `crop_padding` pixels, and random horizontal flips (B, H, W, C)."""
    batch, height, width = images.shape[:3]
    if crop_padding:
        padded = np.pad(images, ((0, 0), (crop_padding,) * 2, (crop_padding,) * 2, (0, 0)))
        rows = rng.integers(0, 2 * crop_padding + 1, size=batch)
        cols = rng.integers(0, 2 * crop_padding + 1, size=batch)
        crops = [padded[i, r : r + height, c : c + width] for i, (r, c) in enumerate(zip(rows, cols))]
        images = np.stack(crops)
    if flip:
        flipped = rng.random(batch) < 0.5
        images = np.where(flipped[:, None, None, None], images[:, :, ::-1], images)
    return images


def fit(run, seeds, arrays=None):
    """Train one model per seed from `run`'s recipe and arrays (or the `arrays` file: recipes can share one);
    keep each seed's best validation epoch."""
    import keras

    from keras_perceiver import models
    from training.optimization import build_optimizer, build_schedule

    with open(os.path.join(run, RECIPE_FILE)) as f:
        description = json.load(f)
    recipe = description["recipe"]
    data = np.load(arrays or os.path.join(run, ARRAYS_FILE))

    def normalize(images):
        return ((images.astype("float32") / 255.0) - description["pixel_mean"]) / description["pixel_std"]

    num_classes = description["num_classes"]
    train_images, train_labels = data["train_images"], data["train_labels"]
    validation = (
        {description["input_name"]: normalize(data["validation_images"])},
        np.eye(num_classes, dtype="float32")[data["validation_labels"]],
    )

    class Batches(keras.utils.PyDataset):
        def __init__(self, seed):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(train_labels))

        def __len__(self):
            return math.ceil(len(train_labels) / recipe["batch_size"])

        def __getitem__(self, index):
            chosen = self.order[index * recipe["batch_size"] : (index + 1) * recipe["batch_size"]]
            images = augment(train_images[chosen], recipe["crop_padding"], recipe["flip"], self.rng)
            labels = np.eye(num_classes, dtype="float32")[train_labels[chosen]]
            return {description["input_name"]: normalize(images)}, labels

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(train_labels))

    model_class = getattr(models, description["model_class"])
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        model = model_class.from_config(description["model_config"])
        steps = len(Batches(seed)) * recipe["epochs"]
        schedule = build_schedule(recipe["schedule"], recipe["learning_rate"], steps, recipe["warmup_steps"])
        model.compile(
            optimizer=build_optimizer(
                recipe["optimizer"], schedule, recipe["weight_decay"], recipe["clip_norm"] or None
            ),
            loss=keras.losses.CategoricalCrossentropy(
                from_logits=True, label_smoothing=recipe["label_smoothing"]
            ),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
        out = os.path.join(run, f"seed{seed}")
        os.makedirs(out, exist_ok=True)
        best = os.path.join(out, "best.weights.h5")
        checkpoint = keras.callbacks.ModelCheckpoint(
            best, monitor="val_accuracy", mode="max", save_best_only=True, save_weights_only=True
        )
        # One row per finished epoch: a run stopped early still leaves its history and best weights.
        logger = keras.callbacks.CSVLogger(os.path.join(out, "history.csv"))
        start = time.time()
        history = model.fit(
            Batches(seed),
            validation_data=validation,
            epochs=recipe["epochs"],
            callbacks=[checkpoint, logger],
            verbose=2,
        )
        accuracies = history.history["val_accuracy"]
        summary = {"train_seconds": round(time.time() - start, 1), "backend": keras.backend.backend()}
        with open(os.path.join(out, "fit.json"), "w") as f:
            json.dump(summary, f, indent=1)
        best_epoch = int(np.argmax(accuracies)) + 1
        print(f"fit: seed {seed}: best epoch {best_epoch}, val accuracy {max(accuracies):.4f}")


def adopt(run, seed):
    """Make `<run>/seed<seed>` a `training.train` run directory: `model.keras` (the recipe's model with the
    best validation epoch's weights) and `metrics.json` (task, params, the validation selection)."""
    import keras

    from keras_perceiver import models
    from training.plots import read_history
    from training.tasks import get_task
    from training.train import resolve_params, split_reader_options

    with open(os.path.join(run, RECIPE_FILE)) as f:
        description = json.load(f)
    out = os.path.join(run, f"seed{seed}")
    history = read_history(os.path.join(out, "history.csv"))
    summary = {"train_seconds": None, "backend": None}
    if os.path.isfile(os.path.join(out, "fit.json")):
        with open(os.path.join(out, "fit.json")) as f:
            summary = json.load(f)
    best_epoch = int(np.argmax(history["val_accuracy"]))
    model = getattr(models, description["model_class"]).from_config(description["model_config"])
    model.load_weights(os.path.join(out, "best.weights.h5"))
    model.save(os.path.join(out, "model.keras"))
    keras.backend.clear_session()
    task = get_task(description["task"])
    params = resolve_params(task=description["task"], overrides=description["overrides"], seed=seed)
    params.update({key: value for key, value in description["recipe"].items() if key in params})
    metrics = {
        "task": task.name,
        "inputs": task.inputs,
        "validation_accuracy": float(history["val_accuracy"][best_epoch]),
        "best_epoch": best_epoch + 1,
        "epochs_run": len(history["val_accuracy"]),
        "train_seconds": summary["train_seconds"],
        "backend": summary["backend"],
        "trained_by": "training.fit_on_arrays",
        "params": params,
        "test_reader_options": split_reader_options(params, task, "test"),
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2, default=str)
    print(f"adopt: {out}/metrics.json")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser("prepare")
    prepare_parser.add_argument("--task", required=True)
    prepare_parser.add_argument("--out", required=True)
    prepare_parser.add_argument("--override", action="append", default=[], help="key=value (repeatable)")
    for key, value in RECIPE_DEFAULTS.items():
        kind = (lambda text: text.lower() in ("1", "true", "yes")) if isinstance(value, bool) else type(value)
        prepare_parser.add_argument(f"--{key}", type=kind, default=value)
    fit_parser = commands.add_parser("fit")
    fit_parser.add_argument("--run", required=True)
    fit_parser.add_argument("--seeds", default="0,1,2")
    fit_parser.add_argument("--arrays", help="arrays.npz of another run (default: the run's own)")
    adopt_parser = commands.add_parser("adopt")
    adopt_parser.add_argument("--run", required=True)
    adopt_parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        from training.train import parse_key_values

        recipe = {key: getattr(args, key) for key in RECIPE_DEFAULTS}
        prepare(args.task, args.out, parse_key_values(args.override, "override"), recipe)
    elif args.command == "fit":
        fit(args.run, [int(seed) for seed in args.seeds.split(",")], args.arrays)
    else:
        adopt(args.run, args.seed)


if __name__ == "__main__":
    main()
