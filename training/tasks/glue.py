"""Task `glue`: GLUE fine-tuning on UTF-8 bytes, one task or several with one decoder query per task.

Data: `training.data.glue` (tensorflow-datasets `glue/<config>`, prepared
beforehand; `--data_option=tasks=mrpc`, `tasks=cola,sst2` or `tasks=all`,
default `sst2`). Held-out figures are GLUE's validation split (its test labels
are hidden), checkpoints are chosen on 5% of GLUE's training split.

Model: `PerceiverTextClassifier`. One task: a single query, `num_classes`
outputs (1 and mean squared error for STS-B). Several: the paper's multi-task
decoder (Perceiver IO section 4.1: one learned query per task, each decoded
to its own head); every example trains its own task's output only (the
others get sample weight 0). Inputs: `[CLS] text [SEP]`, or `[CLS] text
[SEP] text_pair [SEP]` as transformers' `PerceiverTokenizer(text,
text_pair)` joins pairs (truncated longest-first to `SEQUENCE_LENGTH`
bytes). A model trained on any pair task joins every input as a pair (a
single sentence with an empty `text_pair`), in training and in its serving
signature alike.

Defaults are the fine-tuning recipe of TF Model Garden's Perceiver GLUE
experiments (`official/projects/perceiver/configs/experiments/glue_*.yaml`,
which follow the paper's Table 10): batch 32, 10 epochs, peak learning rate
3e-5 decayed linearly to 0, AdamW with weight decay 0.01. They fine-tune a
pretrained masked LM: `--preset=language_perceiver_classifier
--init_from=<a run directory holding a PerceiverMaskedLM's model.keras>`.
The task's small configuration (`SMALL_CONFIG`, trained from scratch on CPU)
needs a larger rate (e.g. `--learning_rate=1e-3`).
"""

import keras
import tensorflow as tf

from keras_perceiver.models.perceiver_text_classifier import PerceiverTextClassifier
from keras_perceiver.task_preprocessors.text_task_preprocessor import TextTaskPreprocessor
from keras_perceiver.tokenizers.byte_tokenizer import ByteTokenizer
from training.data.glue import TASKS as GLUE_TASKS
from training.data.glue import parse_tasks
from training.tasks import Task, register
from training.tasks.model_config import build_model as build_from_config
from training.tasks.snownlp_sentiment import SMALL_CONFIG as SENTIMENT_CONFIG

SEQUENCE_LENGTH = 512
DEFAULT_TASKS = "sst2"
VALIDATION_FRACTION = 0.05
# Flat form (`PerceiverTextClassifier.from_hyperparameters`): `snownlp_sentiment`'s small byte-level
# classifier, at 512 bytes and the language perceiver's initializer range.
SMALL_CONFIG = {**SENTIMENT_CONFIG, "max_sequence_length": SEQUENCE_LENGTH, "initializer_range": 0.02}


def glue_tasks(params):
    """The run's GLUE task names (`--data_option=tasks=...`, else `DEFAULT_TASKS`)."""
    return parse_tasks((params.get("data_options") or {}).get("tasks", DEFAULT_TASKS))


def sequence_length(params):
    return int((params.get("overrides") or {}).get("max_sequence_length", SEQUENCE_LENGTH))


def uses_pairs(names):
    """Whether a model of the tasks `names` joins its inputs as sentence pairs (any pair task)."""
    return any(GLUE_TASKS[name].text_pair_key for name in names)


def text_preprocessor(names, length):
    """The raw-text side of a model of the tasks `names`: `text` (and `text_pair`) -> token ids."""
    return TextTaskPreprocessor(
        ByteTokenizer(sequence_length=length, add_special_tokens=True),
        text_pair_key="text_pair" if uses_pairs(names) else None,
    )


def build_model(params):
    names = glue_tasks(params)
    if len(names) == 1:
        task = GLUE_TASKS[names[0]]
        problem_type = "regression" if task.is_regression else "single_label_classification"
        required = {"num_classes": task.num_classes, "problem_type": problem_type}
    else:
        required = {"tasks": {name: GLUE_TASKS[name].num_classes for name in names}}
    model = build_from_config(PerceiverTextClassifier, SMALL_CONFIG, params, **required)
    model.preprocessor = text_preprocessor(names, sequence_length(params))
    return model


def make_inputs(params):
    names = glue_tasks(params)
    preprocessor = text_preprocessor(names, sequence_length(params))

    def preprocess(example):
        raw = {"text": example["text"][None]}
        if preprocessor.text_pair_key:
            raw["text_pair"] = example["text_pair"][None]
        tokens = preprocessor.convert(raw)
        return {
            "token_ids": tokens["token_ids"][0],
            "padding_mask": tf.cast(tokens["padding_mask"][0], tf.int32),
            "label": example["label"],
            "task": example["task"],
        }

    def target(name, label):
        return label if GLUE_TASKS[name].is_regression else tf.cast(label, tf.int32)

    def to_inputs(example, training, seed):
        del training, seed
        features = {"token_ids": example["token_ids"], "padding_mask": example["padding_mask"]}
        if len(names) == 1:
            return features, target(names[0], example["label"])
        mine = [tf.equal(example["task"], index) for index in range(len(names))]
        labels = {
            name: target(name, tf.where(is_mine, example["label"], 0.0)) for name, is_mine in zip(names, mine)
        }
        weights = {name: tf.cast(is_mine, tf.float32) for name, is_mine in zip(names, mine)}
        return features, labels, weights

    return preprocess, to_inputs, None


def _loss_of(name):
    if GLUE_TASKS[name].is_regression:
        return keras.losses.MeanSquaredError()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _metrics_of(name):
    if GLUE_TASKS[name].is_regression:
        return [keras.metrics.PearsonCorrelation(name="pearson")]
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


def loss(params):
    names = glue_tasks(params)
    if len(names) == 1:
        return _loss_of(names[0])
    return {name: _loss_of(name) for name in names}


def metrics(params):
    names = glue_tasks(params)
    return _metrics_of(names[0]) if len(names) == 1 else None


def weighted_metrics(params):
    """Multi-task: each output's metric over its own task's examples (the sample weights)."""
    names = glue_tasks(params)
    return None if len(names) == 1 else {name: _metrics_of(name) for name in names}


def glue_serving(model, dataset=None):
    """Client signature: raw strings `text` (and `text_pair`) (B,) -> the logits (a dict per task when
    several), with the GLUE tasks in the metadata for `training.evaluate` (kind `glue`)."""
    from keras_perceiver.export import ClientInputs

    preprocessor = model.preprocessor
    tasks = model.get_config().get("tasks")
    names = list(tasks) if tasks else None
    metadata = {
        "kind": "glue",
        "dataset": dataset or "glue",
        "split": "test",
        "input_key": "text",
        "text_pair_key": preprocessor.text_pair_key,
        "output_key": "outputs",  # a single-task model's output (`training.export` names it so)
        "sequence_length": preprocessor.tokenizer.sequence_length,
    }
    if names:
        metadata["tasks"] = names
    return ClientInputs.from_preprocessor(preprocessor), None, metadata


TASK = register(
    Task(
        name="glue",
        description=(
            "PerceiverTextClassifier on UTF-8 bytes: GLUE fine-tuning (tfds glue/<config>), single-task "
            "or multi-task queries."
        ),
        dataset="glue",
        build_model=build_model,
        make_inputs=make_inputs,
        loss=loss,
        metrics=metrics,
        weighted_metrics=weighted_metrics,
        reader_options=lambda params: {"tasks": DEFAULT_TASKS, "validation_fraction": VALIDATION_FRACTION},
        defaults={
            "epochs": 10,
            "batch_size": 32,
            "learning_rate": 3e-5,
            "optimizer": "adamw",
            "schedule": "linear",
            "warmup_steps": 0,
            "weight_decay": 1e-2,
            "clip_norm": 1.0,
            "jit_compile": True,
        },
        monitor="val_loss",
        output_name="logits",
        inputs=(
            f"token_ids: (B, {SEQUENCE_LENGTH}) int32 UTF-8 bytes + 6 ([CLS] a [SEP] (b [SEP]), PAD 0); "
            f"padding_mask: (B, {SEQUENCE_LENGTH}) bool"
        ),
        serving=lambda model, dataset=None: glue_serving(model, dataset),
    )
)
