"""Published hyperparameters of the multimodal (video + audio + label) autoencoder (data, not code)."""

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
        "config": {
            "num_frames": 16,
            "image_size": (224, 224),
            "audio_samples_per_frame": 1920,
            "samples_per_patch": 16,
            "num_classes": 700,
            "spatial_downsample": 4,
            "video_num_bands": 32,
            "video_max_resolution": (16, 56, 56),
            "audio_num_bands": 192,
            "label_query_channels": 1024,
            "decoder_output_channels": 512,
            "num_latents": 784,
            "latent_dim": 512,
            "num_blocks": 1,
            "num_self_attends_per_block": 8,
            "num_cross_attention_heads": 1,
            "num_self_attention_heads": 8,
        },
    },
}
