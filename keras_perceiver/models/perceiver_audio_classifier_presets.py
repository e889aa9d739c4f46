"""Audio classifier presets: backbone preset + classification head (data, not code)."""

PERCEIVER_AUDIO_CLASSIFIER_PRESETS = {
    "audio_perceiver_raw_527": {
        "description": (
            "Raw-audio Perceiver IO classifier for the 527 AudioSet classes, built from published pieces: "
            "the audio front end of the Perceiver IO Kinetics multimodal autoencoder (arXiv 2107.14795, "
            "section 4.3: patches of 16 samples, 192 Fourier bands with max_resolution = the sample count, "
            "30,720 samples = 16 frames x 1,920 samples, transformers `PerceiverConfig` defaults) and its "
            "784 x 512 latent array with 1 x 8 self-attends (8 heads), decoded by one learned query. Not a "
            "published model: the Perceiver paper's own AudioSet configuration (arXiv 2103.03206, section "
            "4.3 and appendix) could not be checked offline, so there is no published parameter count; "
            "`num_parameters` pins what this builder gives for this configuration. No checkpoint."
        ),
        "num_parameters": 16_137_254,
        "backbone": "audio_perceiver_raw_527",
        "config": {"num_classes": 527},
    },
}
