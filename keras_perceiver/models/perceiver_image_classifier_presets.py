"""Published hyperparameters of the ImageNet vision perceivers (data, not code)."""

_VISION_CORE = {
    "image_shape": (224, 224, 3),
    "num_classes": 1000,
    "num_latents": 512,
    "latent_dim": 1024,
    "num_blocks": 8,
    "num_self_attends_per_block": 6,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 8,
    "qk_channels": None,
    "v_channels": None,
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 1,
}

PERCEIVER_IMAGE_CLASSIFIER_PRESETS = {
    "vision_perceiver_learned": {
        "description": (
            "ImageNet vision perceiver with a 1x1 conv to 256 channels and learned 2-D positions "
            "(256, projected to 256) concatenated (Perceiver IO, arXiv 2107.14795, section 4.5). "
            "transformers checkpoint `deepmind/vision-perceiver-learned`."
        ),
        "num_parameters": 62_255_848,
        "config": {
            **_VISION_CORE,
            "prep_type": "conv1x1",
            "out_channels": 256,
            "position_encoding_type": "trainable",
            "num_channels": 256,
            "project_pos_dim": 256,
        },
    },
    "vision_perceiver_fourier": {
        "description": (
            "ImageNet vision perceiver on raw pixels with 64-band Fourier features of the 224x224 "
            "grid concatenated (Perceiver IO, arXiv 2107.14795, section 4.5). transformers checkpoint "
            "`deepmind/vision-perceiver-fourier`."
        ),
        "num_parameters": 48_440_627,
        "config": {
            **_VISION_CORE,
            "prep_type": "pixels",
            "position_encoding_type": "fourier",
            "num_bands": 64,
            "max_resolution": (224, 224),
        },
    },
    "vision_perceiver_conv": {
        "description": (
            "ImageNet vision perceiver with the conv stem (7x7/2 conv, BatchNorm, ReLU, 3x3/2 max-pool "
            "to 64 channels at 55x55, transformers padding) and 64-band Fourier features at resolution "
            "56 (Perceiver IO, arXiv 2107.14795, section 4.5). transformers checkpoint "
            "`deepmind/vision-perceiver-conv`."
        ),
        "num_parameters": 48_646_522,  # trainable; plus 128 BatchNorm statistics
        "config": {
            **_VISION_CORE,
            "prep_type": "conv",
            "out_channels": 64,
            "conv_padding": "transformers",
            "position_encoding_type": "fourier",
            "num_bands": 64,
            "max_resolution": (56, 56),
        },
    },
}
