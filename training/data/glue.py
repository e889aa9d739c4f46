"""GLUE (tensorflow-datasets `glue/<config>`) behind one example format, single- or multi-task.

Examples: {"text": tf.string, "text_pair": tf.string ("" for single-sentence
tasks), "label": float32 (the class index, or STS-B's similarity in [0, 5]),
"task": int32 (the index of the example's task in `tasks`)}.

Source: GLUE (Wang et al. 2018) through tensorflow-datasets' `glue` builder;
the data must be prepared beforehand (`tfds build glue/<config>` on a machine
with network access, then `data_dir`): nothing is downloaded here. The eight
tasks the Perceiver IO paper reports (arXiv 2107.14795 section 4.1, Table 2).

Splits. GLUE's test labels are hidden, so the published protocol (and the
paper's figures) use GLUE's validation split as the held-out set:
`"test"` here is GLUE's `validation` (MNLI: `validation_matched`; the
`"test_mismatched"` split is `validation_mismatched`). Checkpoints are chosen
on `"validation"`, a `validation_fraction` (default 5%) of GLUE's training
split carved by a hash of the text pair (FarmHash in TensorFlow: stable across
machines); `"train"` is the rest of GLUE's training split.
"""

import dataclasses

import tensorflow as tf

from training.data.splits import check_split

SPLITS = ("train", "validation", "test", "test_mismatched")
HASH_BUCKETS = 1_000_000


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """One GLUE task: its tfds feature names, number of outputs (1: regression) and metrics."""

    text_key: str
    text_pair_key: str | None
    num_classes: int
    metrics: tuple
    eval_split: str = "validation"

    @property
    def is_regression(self):
        return self.num_classes == 1


# The paper's eight tasks; metrics as GLUE reports them (the first one is the task's headline).
TASKS = {
    "cola": GlueTask("sentence", None, 2, ("matthews_correlation", "accuracy")),
    "sst2": GlueTask("sentence", None, 2, ("accuracy",)),
    "mrpc": GlueTask("sentence1", "sentence2", 2, ("f1", "accuracy")),
    "stsb": GlueTask("sentence1", "sentence2", 1, ("pearson", "spearman")),
    "qqp": GlueTask("question1", "question2", 2, ("f1", "accuracy")),
    "mnli": GlueTask("premise", "hypothesis", 3, ("accuracy",), eval_split="validation_matched"),
    "qnli": GlueTask("question", "sentence", 2, ("accuracy",)),
    "rte": GlueTask("sentence1", "sentence2", 2, ("accuracy",)),
}


def parse_tasks(tasks):
    """`"all"`, `"cola,sst2"`, `"mrpc"` or a sequence of names -> tuple of task names, in the given order.

    Raises:
        ValueError: for an empty list, an unknown or a repeated name.
    """
    if isinstance(tasks, str):
        parts = tuple(name.strip() for name in tasks.split(",") if name.strip())
        names = tuple(TASKS) if parts == ("all",) else parts
    else:
        names = tuple(tasks)
    unknown = [name for name in names if name not in TASKS]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(
            f"glue: tasks must be 'all' or distinct names of {list(TASKS)}. Received: tasks={tasks!r}"
        )
    return names


def _tfds_split(name, split):
    if split in ("train", "validation"):
        return "train"
    if split == "test_mismatched":
        if name != "mnli":
            raise ValueError(f"glue: the test_mismatched split is MNLI's. Received: tasks including {name!r}")
        return "validation_mismatched"
    return TASKS[name].eval_split


def _in_validation(text, text_pair, validation_fraction):
    bucket = tf.strings.to_hash_bucket_fast(tf.strings.join([text, text_pair], separator="\0"), HASH_BUCKETS)
    return bucket < int(round(validation_fraction * HASH_BUCKETS))


def load(split, data_dir=None, tasks="sst2", validation_fraction=0.05):
    """The `split` of the GLUE `tasks` as one `tf.data.Dataset` of unbatched examples (tasks concatenated).

    Args:
        split: str, one of `SPLITS` (see the module docstring).
        data_dir: str or None, the tensorflow-datasets data directory (None:
            tfds' default, `~/tensorflow_datasets`).
        tasks: `"all"`, a comma-separated string or a sequence of names of
            `TASKS`. Defaults to `"sst2"`.
        validation_fraction: float in (0, 1), the part of GLUE's training
            split held out as `"validation"`. Defaults to 0.05.

    Returns:
        `tf.data.Dataset` of {"text": tf.string (), "text_pair": tf.string (),
        "label": float32 (), "task": int32 ()}.

    Raises:
        ValueError: for an unknown split or task, or a fraction outside (0, 1).
        ImportError: if tensorflow-datasets does not import.
        FileNotFoundError: if a task's data is not prepared in `data_dir`.

    Example (after `tfds build glue/mrpc`):
    >>> from training.data.glue import load
    >>> dataset = load("test", tasks="mrpc")  # doctest: +SKIP
    """
    from training.data import TfdsReader

    check_split("glue", split, SPLITS)
    if not 0.0 < float(validation_fraction) < 1.0:
        raise ValueError(
            "glue: validation_fraction must be in (0, 1). "
            f"Received: validation_fraction={validation_fraction!r}"
        )
    datasets = []
    for index, name in enumerate(parse_tasks(tasks)):
        task = TASKS[name]
        dataset = TfdsReader(f"glue/{name}").load(_tfds_split(name, split), data_dir=data_dir)

        def to_example(example, task=task, index=index):
            text_pair = example[task.text_pair_key] if task.text_pair_key else tf.constant("")
            return {
                "text": example[task.text_key],
                "text_pair": text_pair,
                "label": tf.cast(example["label"], tf.float32),
                "task": tf.constant(index, tf.int32),
            }

        dataset = dataset.map(to_example)
        if split in ("train", "validation"):
            held_out = split == "validation"

            def keep(example, held_out=held_out):
                in_validation = _in_validation(example["text"], example["text_pair"], validation_fraction)
                return tf.equal(in_validation, held_out)

            dataset = dataset.filter(keep)
        datasets.append(dataset)
    combined = datasets[0]
    for dataset in datasets[1:]:
        combined = combined.concatenate(dataset)
    return combined
