"""Published hyperparameters of the text classifier (data, not code)."""

from keras_perceiver.models.perceiver_masked_lm_presets import PERCEIVER_MASKED_LM_PRESETS

# The language perceiver's byte embedding and encoder, without its masked-LM decoder.
_LANGUAGE_PERCEIVER_ENCODER = {
    key: value
    for key, value in PERCEIVER_MASKED_LM_PRESETS["language_perceiver"]["config"].items()
    if not key.startswith("decoder_")
}

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
        "config": {"num_classes": 2, **_LANGUAGE_PERCEIVER_ENCODER},
    },
}
