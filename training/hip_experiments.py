"""The HiP paper's claims at small scale on offline real data: one command per experiment.

    python -m training.hip_experiments --experiment=positions
    python -m training.hip_experiments --experiment=point_clouds

Experiment `positions` (HiP, arXiv 2202.10890, table on position encodings:
ImageNet top-1 70.1 with learned positions and no MAE, 81.0 with MAE, 78.8
with Fourier features): Fashion-MNIST as an unordered set of 784 pixels (one
fixed permutation, `training/tasks/modality_sets.py`), the same small HiP
(`training/tasks/hip.py` `SMALL_CONFIG`) trained

- `hip_learned`: with learned positions, from scratch;
- `hip_learned_mae`: with learned positions, from the masked auto-encoding
  run (`hip_mae`, `--init_from`);
- `hip_fourier`: with Fourier features of every pixel's original (x, y)
  (HiP-Fourier);
- `perceiver_io_learned`: a Perceiver IO of similar size with learned
  positions, by the same command and budget;

next to scikit-learn logistic regression on the same pixels (pixel order
does not matter to it). Seeds 0, 1, 2 on the one split; the MAE
pretraining is extra, run once (seed 0, on the training split) and shared
by the seeds of `hip_learned_mae`.

Experiment `point_clouds` (paper: ModelNet40 75.9 without MAE, 80.6 with):
the Open Inventor CAD models as clouds of 2,048 points with augmentation
(`inventor_point_clouds` in `modality_sets.py`), the variants
`hip_learned`, `hip_learned_mae` and `perceiver_io_learned`, 5-fold
cross-validation by model (each fold the test split once, the next fold
validation, the other three training; an MAE run per fold on its training
split), next to the majority class and logistic regression on voxel
occupancy on the same folds.

Every classifier of an experiment gets the same budget (its `budget`:
epochs x steps x batch; AdamW with a warm-up over the first 10% of the
steps, then constant and cosine decay). Checkpoints are chosen on the
validation split; the test split is evaluated once per run, at the end.
The table gives the mean and the sample standard deviation of test
accuracy over the repeats (seeds or folds).

Runs are resumable: a run whose `metrics.json` exists is read, not
repeated. Outputs: `<output_dir>/<variant>/<seed_s or fold_k>/` (a
`training.train` model_dir each), `results.json` and `results.md` (the
table).
"""

import json
import os

import keras
import numpy as np
from absl import app, flags

from training import baselines, train
from training.data import get_reader

PRETRAIN = "hip_mae"
HIP_VARIANTS = {
    "hip_learned": {"task": "hip_classification"},
    "hip_learned_mae": {"task": "hip_classification", "init_from": PRETRAIN},
}
PERCEIVER_IO_VARIANT = {"task": "hip_classification", "architecture": "perceiver_io"}
# `repeats`: "seeds" (one split, every variant once per seed, one MAE run shared by the seeds) or "folds"
# (cross-validation: one run of every variant per test fold, seed 0, with an MAE run per fold on that
# fold's training split, so that pretraining never sees the fold's validation or test models).
EXPERIMENTS = {
    "positions": {
        "dataset": "fashion_mnist",
        "repeats": "seeds",
        "budget": {"epochs": 3, "steps_per_epoch": 100, "batch_size": 64},
        "pretrain_budget": {"epochs": 4, "steps_per_epoch": 150, "batch_size": 128},
        "variants": {
            **HIP_VARIANTS,
            "hip_fourier": {
                "task": "hip_classification",
                "overrides": {"position_encoding_type": "fourier"},
            },
            "perceiver_io_learned": PERCEIVER_IO_VARIANT,
        },
    },
    "point_clouds": {
        "dataset": "inventor_point_clouds",
        "repeats": "folds",
        "budget": {"epochs": 8, "steps_per_epoch": 20, "batch_size": 16},
        "pretrain_budget": {"epochs": 8, "steps_per_epoch": 20, "batch_size": 16},
        "variants": {**HIP_VARIANTS, "perceiver_io_learned": PERCEIVER_IO_VARIANT},
    },
    "segmentation": {
        "dataset": "tuxpaint_segmentation",
        "repeats": "seeds",
        "metric": "mean_iou",
        "budget": {"epochs": 4, "steps_per_epoch": 50, "batch_size": 32},
        "pretrain_budget": {},
        "variants": {
            "hip_learned": {"task": "hip_segmentation"},
            "perceiver_io_learned": {"task": "hip_segmentation", "architecture": "perceiver_io"},
        },
    },
}


def run_once(model_dir, **arguments):
    """`training.train.run` into `model_dir` unless it finished before; its metrics dict."""
    path = os.path.join(model_dir, "metrics.json")
    if not os.path.isfile(path):
        keras.backend.clear_session()
        train.run(verbose=2, model_dir=model_dir, export=False, tensorboard=False, **arguments)
    with open(path) as f:
        return json.load(f)


def warmup_steps(total_steps):
    """Linear warm-up over the first 10% of a run's steps (at least 1)."""
    return max(1, total_steps // 10)


def baseline(dataset, data_options):
    """The simple baselines of `dataset` on the test split of `data_options`: a list of result dicts.

    Fashion-MNIST: logistic regression on the pixels (their order does not
    matter to it). Point clouds: the majority class of the training split
    and logistic regression on voxel occupancy (`baselines.point_cloud_baselines`).
    Segmentation: the mean IoU of predicting background everywhere.
    """
    from training.tasks.modality_sets import get_modality_set

    reader = get_reader(dataset)
    options = {**get_modality_set(dataset).reader_options, **data_options}
    if dataset == "tuxpaint_segmentation":
        from training.tasks.hip import SEGMENTATION_TASK

        masks = [example["mask"] for example in reader.load(
            "test", **options, **SEGMENTATION_TASK.split_options["test"]).as_numpy_iterator()]
        return [baselines.all_background_mean_iou(np.stack(masks))]
    train_split = reader.load_arrays("train", **options)
    test_split = reader.load_arrays("test", **options)
    if dataset == "inventor_point_clouds":
        return baselines.point_cloud_baselines(*train_split[:2], *test_split[:2])
    return [baselines.image_logistic_regression(*train_split[:2], *test_split[:2])]


def summarize(accuracies):
    """{"mean", "std" (sample, 0 for one run), "runs"} of a list of accuracies."""
    values = np.asarray(accuracies, dtype=np.float64)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "runs": [float(v) for v in values]}


def markdown_table(results):
    """The results as a Markdown table: one row per variant and per baseline."""
    lines = [
        f"| model | test {results['metric']}, mean ± std over {results['repeats']} | runs | parameters |",
        "|---|---|---|---|",
    ]
    for name, row in results["variants"].items():
        runs = ", ".join(f"{v:.4f}" for v in row["runs"])
        accuracy = f"{row['mean']:.4f} ± {row['std']:.4f}"
        lines.append(f"| {name} | {accuracy} | {runs} | {row['num_parameters']:,} |")
    for name, row in results["baselines"].items():
        runs = ", ".join(f"{v:.4f}" for v in row["runs"])
        lines.append(f"| {name} | {row['mean']:.4f} ± {row['std']:.4f} | {runs} | |")
    return "\n".join(lines)


def run_experiment(experiment, output_dir, repeats=None, variants=None, budget=None, pretrain_budget=None):
    """Run (or read back) every run of `experiment`; write and return the results.

    Args:
        experiment: str, a key of `EXPERIMENTS`.
        output_dir: str, the directory of the runs and results.
        repeats: ints, the seeds (`"repeats": "seeds"`) or the test folds
            (`"folds"`) to run. Defaults to (0, 1, 2) seeds or all 5 folds.
        variants: names of the variants to run (default: all).
        budget: dict overriding the experiment's classifier budget
            (`epochs`, `steps_per_epoch`, `batch_size`).
        pretrain_budget: dict overriding the MAE pretraining's (`epochs`,
            `steps_per_epoch`, `batch_size`).

    Returns:
        dict: `"variants"` {name: summary and parameter count}, `"baselines"`
        {name: summary}, `"pretrain"` (the MAE runs' validation and test
        loss), `"budget"`, `"pretrain_budget"` and `"repeats"`.

    Raises:
        ValueError: for an unknown experiment or variant.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(
            f"Unknown experiment. Expected one of {sorted(EXPERIMENTS)}. Received: {experiment!r}"
        )
    spec = EXPERIMENTS[experiment]
    chosen = list(spec["variants"]) if not variants else list(variants)
    unknown = [name for name in chosen if name not in spec["variants"]]
    if unknown:
        raise ValueError(f"Unknown variants {unknown}. Expected names among {list(spec['variants'])}")
    by_fold = spec["repeats"] == "folds"
    repeats = list(repeats if repeats is not None else (range(5) if by_fold else (0, 1, 2)))
    budget = {**spec["budget"], **(budget or {})}
    pretrain_budget = {**spec["pretrain_budget"], **(pretrain_budget or {})}
    common = {"dataset": spec["dataset"]}

    def repeat_arguments(r):
        """The seed and data options of repeat `r`, and the name of its directory."""
        if by_fold:
            return {"seed": 0, "data_options": {"fold": r}}, f"fold_{r}"
        return {"seed": r}, f"seed_{r}"

    def pretrain_dir(r):
        return os.path.join(output_dir, PRETRAIN, repeat_arguments(r)[1]) if by_fold else (
            os.path.join(output_dir, PRETRAIN))

    metric = spec.get("metric", "accuracy")
    results = {
        "experiment": experiment,
        "metric": metric,
        "repeats": "folds" if by_fold else "seeds",
        "budget": budget,
        "pretrain_budget": pretrain_budget,
        "variants": {},
        "pretrain": {},
    }
    if any(spec["variants"][name].get("init_from") == PRETRAIN for name in chosen):
        steps = pretrain_budget["epochs"] * pretrain_budget["steps_per_epoch"]
        for r in repeats if by_fold else [0]:
            arguments, _ = repeat_arguments(r)
            metrics = run_once(
                pretrain_dir(r), task=PRETRAIN, **common, **pretrain_budget, warmup_steps=warmup_steps(steps),
                **arguments,
            )  # fmt: skip
            results["pretrain"][str(r)] = {key: metrics.get(key) for key in ("validation_loss", "test_loss")}
    steps = budget["epochs"] * budget["steps_per_epoch"]
    for name in chosen:
        runs = []
        for r in repeats:
            arguments, directory = repeat_arguments(r)
            variant = dict(spec["variants"][name])
            if variant.get("init_from") == PRETRAIN:
                variant["init_from"] = pretrain_dir(r)
            runs.append(run_once(
                os.path.join(output_dir, name, directory), **variant, **common, **arguments,
                **budget, warmup_steps=warmup_steps(steps),
            ))  # fmt: skip
        results["variants"][name] = {
            **summarize([m[f"test_{metric}"] for m in runs]),
            "num_parameters": runs[0]["num_parameters"],
        }
    baseline_runs = {}
    for r in repeats if by_fold else [repeats[0]]:
        for row in baseline(spec["dataset"], repeat_arguments(r)[0].get("data_options", {})):
            baseline_runs.setdefault(row["name"], []).append(row[metric])
    results["baselines"] = {name: summarize(values) for name, values in baseline_runs.items()}
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    table = markdown_table(results)
    with open(os.path.join(output_dir, "results.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    return results


FLAGS = flags.FLAGS


def define_flags():
    """Define the command-line flags (only when run as a program).

    `--epochs`, `--steps_per_epoch` and `--batch_size` are `training.train`'s
    flags (defined on import): here they override every classifier's budget
    (the experiment's `budget` when unset).
    """
    flags.DEFINE_enum("experiment", "positions", sorted(EXPERIMENTS), "Which experiment.")
    flags.DEFINE_string("output_dir", None, "Runs and results (default runs/hip_<experiment>).")
    flags.DEFINE_list("repeats", None, "Seeds (positions: 0,1,2) or test folds (point_clouds: 0..4) to run.")
    flags.DEFINE_list("variants", None, "Variants to run (default: all).")
    flags.DEFINE_integer("pretrain_epochs", None, "Epochs of the MAE pretraining (default: experiment's).")
    flags.DEFINE_integer("pretrain_steps_per_epoch", None, "Steps per epoch of the MAE pretraining.")


def main(argv):
    del argv
    budget = {
        "epochs": FLAGS.epochs,
        "steps_per_epoch": FLAGS.steps_per_epoch,
        "batch_size": FLAGS.batch_size,
    }
    pretrain = {"epochs": FLAGS.pretrain_epochs, "steps_per_epoch": FLAGS.pretrain_steps_per_epoch}
    run_experiment(
        FLAGS.experiment,
        FLAGS.output_dir or f"runs/hip_{FLAGS.experiment}",
        repeats=None if FLAGS.repeats is None else [int(r) for r in FLAGS.repeats],
        variants=FLAGS.variants,
        budget={k: v for k, v in budget.items() if v is not None},
        pretrain_budget={k: v for k, v in pretrain.items() if v is not None},
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
