"""The published multimodal (video + audio + label) autoencoder: backbone preset + head (data, not code)."""

PERCEIVER_MULTIMODAL_AUTOENCODER_PRESETS = {
    "multimodal_perceiver": {
        "description": (
            "Perceiver IO multimodal autoencoder on Kinetics-700 (arXiv 2107.14795, section 4.3): 16 frames "
            "of 224x224 in 4x4 patches + 32-band Fourier features of the (16, 56, 56) patch grid, audio "
            "(16 x 1920 samples) in patches of 16 + 192 bands, a 700-way label (masked with probability 1), "
            "padded to 704 channels; 784 x 512 latents, 1 x 8 self-attends with 8 heads; per-modality "
            "Fourier / learned (1024) decoder queries padded to 1026, decoded to 512 channels, then to RGB, "
            "audio patches and label logits. transformers checkpoint `deepmind/multimodal-perceiver`."
        ),
        "num_parameters": 19_858_855,
        "backbone": "multimodal_perceiver",
        "config": {
            "label_query_channels": 1024,
            "query_min_padding_size": 2,
            "decoder_output_channels": 512,
        },
    },
}
