"""Published hyperparameters of the optical-flow perceiver (data, not code)."""

PERCEIVER_OPTICAL_FLOW_PRESETS = {
    "optical_flow_perceiver": {
        "description": (
            "Perceiver IO optical flow (arXiv 2107.14795, section 4.2): 3x3 patches of two frames (54 "
            "channels) -> Dense 64 + 64-band Fourier features at the 368x496 training size, 2048 x 512 "
            "latents, 1 x 24 self-attends with 16 heads, the preprocessed inputs as decoder queries, flow / "
            "100. transformers checkpoint `deepmind/optical-flow-perceiver`."
        ),
        "num_parameters": 41_057_134,
        "config": {
            "image_size": (368, 496),
            "train_size": (368, 496),
            "num_bands": 64,
            "out_channels": 64,
            "num_latents": 2048,
            "latent_dim": 512,
            "num_blocks": 1,
            "num_self_attends_per_block": 24,
            "num_cross_attention_heads": 1,
            "num_self_attention_heads": 16,
        },
    },
}
