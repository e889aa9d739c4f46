"""Entity-encoder preset: backbone preset + per-entity decoder head (data, not code)."""

PERCEIVER_ENTITY_ENCODER_PRESETS = {
    "starcraft_entity_perceiver": {
        "description": (
            "Perceiver IO in place of AlphaStar's entity Transformer (arXiv 2107.14795 appendix B, tables "
            "5, 6 and 9). Published: a set of 512 entities of 256 features (table 5), entity features of 128 "
            "channels as the encoder inputs and as the decoder queries (table 6), 512 x 128 outputs (table "
            "5), "
            "a latent index dimension of 32 (swept over 32 and 64), a '3-layer Perceiver IO' (read here as "
            "3 latent self-attention layers, as the Transformer it replaces had 3 attention layers), and "
            "'otherwise the same hyperparameters as ImageNet' (1 cross-attention head, 8 self-attention "
            "heads, MLP widening 1, one decoder head with the query residual). NOT published: the latent "
            "width D. D = 640 is derived: with everything above fixed it is the width whose cost, 0.937 "
            "GFLOPs for 512 entities (multiplies and adds counted separately, as in appendix D; TensorFlow's "
            "profiler), matches the 0.93B FLOPs of table 9 (D = 512 gives 0.683, D = 768 gives 1.237). "
            "The AlphaStar heads around it (ReLU + Conv1D 256 per entity; masked mean -> Linear 256 + ReLU) "
            "are not part of the preset. No checkpoint was released."
        ),
        "num_parameters": 9_502_720,
        "backbone": "starcraft_entity_perceiver",
        "config": {
            "output_channels": 128,
            "decoder_num_cross_attention_heads": 1,
            "decoder_cross_attention_widening_factor": 1,
            "decoder_use_query_residual": True,
        },
    },
}
