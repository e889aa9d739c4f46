"""transformers reference configs for configs of ours, and parameter counts (meta device: no memory)."""


def preset_hyperparameters(task_class, preset):
    """One flat dict of a task preset: its backbone's stack and input, the preprocessor's config, the head's.

    Keys: the latent-stack arguments, `input_shape`, the input preprocessor's
    arguments (of the first preprocessor layer; nested modality configs as
    they are) and the head's arguments.
    """
    from keras_perceiver.models.perceiver_backbone_presets import PERCEIVER_BACKBONE_PRESETS

    entry = task_class.presets[preset]
    backbone = dict(PERCEIVER_BACKBONE_PRESETS[entry["backbone"]]["config"])
    preprocessor = backbone.pop("input_preprocessor", None)
    if isinstance(preprocessor, list):
        preprocessor = preprocessor[-1]
    flat = {**(preprocessor or {}).get("config", {}), **backbone, **entry["config"]}
    flat.pop("name", None)
    return flat


def transformers_config(config, d_model, **extra):
    """`transformers.PerceiverConfig` with the encoder/processor values of a full config dict of ours."""
    import transformers

    return transformers.PerceiverConfig(
        d_model=d_model,
        num_latents=config["num_latents"],
        d_latents=config["latent_dim"],
        num_blocks=config["num_blocks"],
        num_self_attends_per_block=config["num_self_attends_per_block"],
        num_self_attention_heads=config["num_self_attention_heads"],
        num_cross_attention_heads=config["num_cross_attention_heads"],
        qk_channels=config["qk_channels"],
        v_channels=config["v_channels"],
        cross_attention_widening_factor=config["cross_attention_widening_factor"],
        self_attention_widening_factor=config["self_attention_widening_factor"],
        **extra,
    )


def transformers_text_parameter_count(reference_class_name, config, **extra):
    """Parameters of `transformers.<reference_class_name>` built from a text-model `config` of ours."""
    reference_config = transformers_config(
        config,
        d_model=config["embedding_dim"],
        vocab_size=config["vocab_size"],
        max_position_embeddings=config["max_sequence_length"],
        **extra,
    )
    return _count_on_meta_device(reference_class_name, reference_config)


# transformers builds the image and flow preprocessors in code; d_model is their output width.
IMAGE_REFERENCES = {
    # prep_type: (transformers class, d_model at the preset's resolution)
    "conv1x1": ("PerceiverForImageClassificationLearned", 256 + 256),
    "pixels": ("PerceiverForImageClassificationFourier", 3 + 2 + 2 * 2 * 64),
    "conv": ("PerceiverForImageClassificationConvProcessing", 64 + 2 + 2 * 2 * 64),
}


def _count_on_meta_device(reference_class_name, reference_config):
    import torch
    import transformers

    with torch.device("meta"):  # shapes only, no memory
        reference = getattr(transformers, reference_class_name)(reference_config)
    return sum(p.numel() for p in reference.parameters())  # BatchNorm statistics are buffers, not parameters


def transformers_image_parameter_count(config):
    """Parameters of transformers' ImageNet classifier of `config`'s preprocessing (learned/Fourier/conv)."""
    reference_class_name, d_model = IMAGE_REFERENCES[config.get("prep_type", "pixels")]
    reference_config = transformers_config(
        config, d_model=d_model, image_size=config["input_shape"][0], num_labels=config["num_classes"]
    )
    return _count_on_meta_device(reference_class_name, reference_config)


def transformers_flow_parameter_count(config):
    """Parameters of transformers' `PerceiverForOpticalFlow` for an optical-flow config of ours."""
    d_model = config["output_channels"] + 2 + 2 * 2 * config["num_bands"]
    full = {
        "qk_channels": None,
        "v_channels": None,
        "cross_attention_widening_factor": 1,
        "self_attention_widening_factor": 1,
        **config,
    }
    reference_config = transformers_config(full, d_model=d_model, train_size=list(config["train_size"]))
    return _count_on_meta_device("PerceiverForOpticalFlow", reference_config)
