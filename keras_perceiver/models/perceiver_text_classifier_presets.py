"""Published hyperparameters of the text classifier (data, not code)."""

PERCEIVER_TEXT_CLASSIFIER_PRESETS = {
    "language_perceiver_classifier": {
        "description": (
            "The GLUE fine-tuning model of Perceiver IO (arXiv 2107.14795, section 4.1): the language "
            "perceiver's encoder on 2048 UTF-8 bytes (d_model 768, 256 x 1280 latents, 1 x 26 self-attends, "
            "8/8 heads, qk 256, v 1280) with one learned classification query (2 classes; set num_classes). "
            "Parameter count equal to transformers' PerceiverForSequenceClassification of the "
            "`deepmind/language-perceiver` config with 2 labels; the encoder weights convert from that "
            "checkpoint."
        ),
        "num_parameters": 206_098_690,
        "config": {
            "num_classes": 2,
            "vocab_size": 262,
            "max_sequence_length": 2048,
            "embedding_dim": 768,
            "num_latents": 256,
            "latent_dim": 1280,
            "num_blocks": 1,
            "num_self_attends_per_block": 26,
            "num_cross_attention_heads": 8,
            "num_self_attention_heads": 8,
            "qk_channels": 256,
            "v_channels": 1280,
            "cross_attention_widening_factor": 1,
            "self_attention_widening_factor": 1,
        },
    },
}
