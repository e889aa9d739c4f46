"""The published optical-flow perceiver: backbone preset + flow head (data, not code)."""

PERCEIVER_OPTICAL_FLOW_PRESETS = {
    "optical_flow_perceiver": {
        "description": (
            "Perceiver IO optical flow (arXiv 2107.14795, section 4.2): 3x3 patches of two frames (54 "
            "channels) -> Dense 64 + 64-band Fourier features at the 368x496 training size, 2048 x 512 "
            "latents, 1 x 24 self-attends with 16 heads, the preprocessed inputs as decoder queries, flow / "
            "100. transformers checkpoint `deepmind/optical-flow-perceiver`."
        ),
        "num_parameters": 41_057_134,
        "backbone": "optical_flow_perceiver",
        "config": {"rescale_factor": 100.0},
    },
}
