"""transformers reference configs for configs of ours, and parameter counts (meta device: no memory)."""


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
    import torch
    import transformers

    reference_config = transformers_config(
        config,
        d_model=config["embedding_dim"],
        vocab_size=config["vocab_size"],
        max_position_embeddings=config["max_sequence_length"],
        **extra,
    )
    with torch.device("meta"):  # shapes only, no memory
        reference = getattr(transformers, reference_class_name)(reference_config)
    return sum(p.numel() for p in reference.parameters())
