"""Published token classifiers: backbone preset + per-position head (data, not code)."""

PERCEIVER_TOKEN_CLASSIFIER_PRESETS = {
    "language_perceiver_token_classifier": {
        "description": (
            "Token classification on UTF-8 bytes with the language perceiver's encoder (arXiv 2107.14795, "
            "section 4.1; the `language_perceiver` backbone, shared with the masked LM): 2048 bytes, "
            "d_model 768, 256 x 1280 latents, 1 x 26 self-attends, 8/8 heads, qk 256, v 1280; the masked "
            "LM's decoder (2048 x 768 position queries, qk 256) and a Dense layer to num_labels per byte "
            "(4 by default, the b/m/e/s tags of word segmentation; set num_labels). "
            "`PerceiverTokenClassifier.from_masked_lm` starts it from a converted masked LM."
        ),
        "num_parameters": 201_111_044,
        "backbone": "language_perceiver",
        "config": {"num_labels": 4, "decoder_num_cross_attention_heads": 8, "decoder_qk_channels": 256},
    },
}
