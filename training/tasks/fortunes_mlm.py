"""Task `fortunes_mlm`: byte-level masked language modelling on multilingual fortune quotes.

Data: `training.data.fortunes` (~94k quotes in 8 languages from the Debian
`fortunes*` packages; content-hash split: 5% test, 5% validation for
checkpoint selection). Each quote is tokenized to UTF-8
bytes and corrupted in the tf.data pipeline (15% of the real tokens scored;
80% MASK / 10% random byte / 10% kept), with random numbers that depend only
on (seed, epoch, example), so resumed runs mask identically. Model:
`PerceiverMaskedLM`, a small configuration of the language perceiver
(`SMALL_CONFIG`, the flat form of `PerceiverMaskedLM.from_hyperparameters`)
or `--preset=language_perceiver`. Loss `MaskedLMLoss` and metric
`MaskedLMAccuracy` on the scored positions (the sample weights). The small
configuration adds two options of the library that the published model does not
have: query patches (`decoder_query_patch_size`) and hashed byte n-gram embeddings.
"""

from keras_perceiver.losses.masked_lm_loss import MaskedLMLoss
from keras_perceiver.metrics.masked_lm_accuracy import MaskedLMAccuracy
from keras_perceiver.models.perceiver_masked_lm import PerceiverMaskedLM
from training.tasks import Task, register
from training.tasks.model_config import build_model as build_from_config
from training.tasks.text import mask_tokens, tokenize

# Flat form (`PerceiverMaskedLM.from_hyperparameters`): text, latent-stack and head arguments.
SMALL_CONFIG = {
    "max_sequence_length": 128,
    "embedding_dim": 64,
    "num_latents": 32,
    "latent_dim": 64,
    "num_blocks": 1,
    "num_self_attends_per_block": 2,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 4,
    "qk_channels": 64,
    "v_channels": 64,
    "self_attention_widening_factor": 2,
    "decoder_num_cross_attention_heads": 4,
    "decoder_qk_channels": 64,
    # Each output position sees the 17 bytes around it (`QueryPatches`) and every input position carries its
    # hashed byte 2/3/6-grams (`HashedNGramEmbedding`): without them the latents alone must carry each
    # byte's neighbours, and the model sat at the byte-frequency plateau for ~1,500 steps (README of
    # saved_models/fortunes_mlm for the measurements).
    "decoder_query_patch_size": 17,
    "ngram_sizes": (2, 3, 6),
    "num_ngram_buckets": 4096,
    "ngram_embedding_dim": 32,
    "initializer_range": 0.2,
}
MASK_RATE = 0.15
VALIDATION_FRACTION = 0.05


def build_model(params):
    return build_from_config(PerceiverMaskedLM, SMALL_CONFIG, params)


def make_inputs(params):
    overrides = params.get("overrides") or {}
    length = int(overrides.get("max_sequence_length", SMALL_CONFIG["max_sequence_length"]))

    def preprocess(example):
        return tokenize(example["text"], length)

    def to_inputs(example, training, seed):
        del training
        corrupted, scored = mask_tokens(example["token_ids"], example["padding_mask"], seed, MASK_RATE)
        features = {"token_ids": corrupted, "padding_mask": example["padding_mask"]}
        return features, example["token_ids"], scored

    return preprocess, to_inputs, None


TASK = register(
    Task(
        name="fortunes_mlm",
        description="PerceiverMaskedLM (small) on UTF-8 bytes of fortune quotes in 8 languages.",
        dataset="fortunes",
        build_model=build_model,
        make_inputs=make_inputs,
        loss=lambda params: MaskedLMLoss(),
        metrics=lambda params: [],
        weighted_metrics=lambda params: [MaskedLMAccuracy(name="accuracy")],
        reader_options=lambda params: {"validation_fraction": VALIDATION_FRACTION},
        defaults={
            "epochs": 4,
            "batch_size": 64,
            "learning_rate": 3e-3,
            "optimizer": "adamw",
            "schedule": "constant_cosine",
            "warmup_steps": 200,
            "weight_decay": 0.05,
            "clip_norm": 1.0,
            "jit_compile": True,
            # Logits of 262 classes at 128 positions: float32 rounding differs by more than 1e-5.
            "export_tolerance": 1e-4,
        },
        monitor="val_accuracy",
        monitor_mode="max",
        output_name="logits",
        inputs="token_ids: (B, 128) int32 UTF-8 bytes + 6 (PAD 0, MASK 3); padding_mask: (B, 128) bool",
    )
)
