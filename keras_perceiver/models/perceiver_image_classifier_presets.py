"""Published ImageNet vision perceivers: backbone preset + classification head (data, not code)."""

PERCEIVER_IMAGE_CLASSIFIER_PRESETS = {
    "vision_perceiver_learned": {
        "description": (
            "ImageNet vision perceiver with a 1x1 conv to 256 channels and learned 2-D positions "
            "(256, projected to 256) concatenated (Perceiver IO, arXiv 2107.14795, section 4.5). "
            "transformers checkpoint `deepmind/vision-perceiver-learned`."
        ),
        "num_parameters": 62_255_848,
        "backbone": "vision_perceiver_learned",
        "config": {"num_classes": 1000},
    },
    "vision_perceiver_fourier": {
        "description": (
            "ImageNet vision perceiver on raw pixels with 64-band Fourier features of the 224x224 "
            "grid concatenated (Perceiver IO, arXiv 2107.14795, section 4.5). transformers checkpoint "
            "`deepmind/vision-perceiver-fourier`."
        ),
        "num_parameters": 48_440_627,
        "backbone": "vision_perceiver_fourier",
        "config": {"num_classes": 1000},
    },
    "vision_perceiver_conv": {
        "description": (
            "ImageNet vision perceiver with the conv stem (7x7/2 conv, BatchNorm, ReLU, 3x3/2 max-pool "
            "to 64 channels at 55x55, transformers padding) and 64-band Fourier features at resolution "
            "56 (Perceiver IO, arXiv 2107.14795, section 4.5). transformers checkpoint "
            "`deepmind/vision-perceiver-conv`."
        ),
        "num_parameters": 48_646_522,  # trainable; plus 128 BatchNorm statistics
        "backbone": "vision_perceiver_conv",
        "config": {"num_classes": 1000},
    },
}
