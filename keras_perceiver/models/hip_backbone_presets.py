"""The official HiP configurations: `HiPBackbone` presets (VARIANTS of the official `perceiver.py`; data).

Per-block tuples, block 0 to L-1; the processor is the middle block. A preset has no `input_shapes`:
give them to `from_preset(name, input_shapes={...})` (the modality-specific weights depend on them).
HiP-16 and HiP-256 are the paper's configuration table (arXiv 2202.10890); Mini and 16x3 are the
official code's smaller variants. Shared settings as the official test: position-encoding projection on
(512), `"reshape"` regrouping, squared ReLU, no dropout or drop path.
"""

_SHARED = {
    "num_position_encoding_channels": 512,
    "regroup_type": "reshape",
    "activation": "squared_relu",
    "dropout": 0.0,
    "drop_path_rate": 0.0,
}


def _variant(groups, self_attends, latents, channels, self_heads, embedding):
    blocks = len(groups)
    return {
        "num_groups": groups,
        "num_self_attends_per_block": self_attends,
        "num_latents": latents,
        "latent_dim": channels,
        "num_cross_attention_heads": (1,) * blocks,
        "num_self_attention_heads": self_heads,
        "cross_attention_widening_factor": (1,) * blocks,
        "self_attention_widening_factor": (4,) * blocks,
        "num_embedding_channels": embedding,
        **_SHARED,
    }


HIP_BACKBONE_PRESETS = {
    "hip_16": {
        "description": (
            "HiP-16 (arXiv 2202.10890, configuration table; official variant '16'): 7 blocks, groups "
            "16-4-1-1-1-4-16, 32 input channels, 1024-wide processor of 64 latents; ImageNet top-1 81.0 with "
            "MAE-learned positions (paper, not measured here)."
        ),
        "config": _variant(
            (16, 4, 1, 1, 1, 4, 16),
            (2, 2, 18, 2, 1, 1, 1),
            (128, 256, 256, 64, 256, 256, 128),
            (128, 256, 512, 1024, 512, 256, 128),
            (4, 8, 16, 32, 16, 8, 4),
            32,
        ),
    },
    "hip_256": {
        "description": (
            "HiP-256 (arXiv 2202.10890, configuration table; official variant '256'): 11 blocks, groups "
            "256-64-16-4-1-1-1-4-16-64-256, 16 input channels; the only model of the paper's resolution "
            "table that fits 2048x2048 images; ImageNet top-1 79.9 (paper, not measured here)."
        ),
        "config": _variant(
            (256, 64, 16, 4, 1, 1, 1, 4, 16, 64, 256),
            (1, 1, 2, 2, 18, 2, 1, 1, 1, 1, 1),
            (32, 64, 128, 256, 256, 64, 256, 256, 128, 64, 32),
            (64, 96, 128, 256, 512, 1024, 256, 128, 64, 32, 16),
            (1, 2, 4, 8, 16, 32, 16, 8, 4, 2, 1),
            16,
        ),
    },
    "hip_mini": {
        "description": "The official 'Mini' variant: 3 blocks, groups 16-1-16, 32 input channels.",
        "config": _variant((16, 1, 16), (2, 1, 1), (128, 64, 128), (128, 1024, 128), (4, 32, 4), 32),
    },
    "hip_16x3": {
        "description": (
            "The official '16x3' variant: 3 blocks, groups 16-1-16, an 18-layer 1024-wide processor."
        ),
        "config": _variant((16, 1, 16), (2, 18, 2), (128, 256, 128), (128, 1024, 128), (4, 32, 4), 32),
    },
}

# Task presets: the same variants, the head has no arguments of its own.
HIERARCHICAL_PERCEIVER_PRESETS = {
    name: {"description": preset["description"], "backbone": name, "config": {}}
    for name, preset in HIP_BACKBONE_PRESETS.items()
}
