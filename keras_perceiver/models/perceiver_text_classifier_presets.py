"""Published text classifiers: backbone preset + classification head (data, not code)."""

PERCEIVER_TEXT_CLASSIFIER_PRESETS = {
    "language_perceiver_classifier": {
        "description": (
            "The GLUE fine-tuning model of Perceiver IO (arXiv 2107.14795, section 4.1): the language "
            "perceiver's encoder on 2048 UTF-8 bytes (d_model 768, 256 x 1280 latents, 1 x 26 self-attends, "
            "8/8 heads, qk 256, v 1280; the `language_perceiver` backbone, shared with the masked LM) with "
            "one learned classification query (2 classes; set num_classes). Parameter count equal to "
            "transformers' PerceiverForSequenceClassification of the `deepmind/language-perceiver` config "
            "with 2 labels; the encoder weights convert from that checkpoint."
        ),
        "num_parameters": 206_098_690,
        "backbone": "language_perceiver",
        "config": {"num_classes": 2},
    },
}
