"""Builders of the encoder/processor/decoder stack shared by the task models."""

import keras

from keras_perceiver.layers.cross_attention_encoder import CrossAttentionEncoder
from keras_perceiver.layers.latent_processor import LatentProcessor
from keras_perceiver.layers.query_decoder import QueryDecoder


def initializer(config):
    """Truncated normal with the config's `initializer_range` (transformers' name; default 0.02)."""
    return keras.initializers.TruncatedNormal(stddev=config.get("initializer_range", 0.02))


def build_encoder_and_processor(config, dtype=None):
    """`CrossAttentionEncoder` and `LatentProcessor` from a model's config dict.

    Args:
        config: dict with the keys of `ENCODER_PROCESSOR_KEYS` (a task model's
            constructor arguments of the same names).
        dtype: dtype policy passed to both layers.

    Returns:
        (encoder, processor) layers named `"encoder"` and `"processor"`.
    """
    common = {
        "activation": config["activation"],
        "dropout": config["dropout"],
        "attention_dropout": config["attention_dropout"],
        "kernel_initializer": initializer(config),
        "dtype": dtype,
    }
    encoder = CrossAttentionEncoder(
        num_latents=config["num_latents"],
        latent_dim=config["latent_dim"],
        num_cross_attention_heads=config["num_cross_attention_heads"],
        qk_channels=config["qk_channels"],
        v_channels=config["v_channels"],
        cross_attention_widening_factor=config["cross_attention_widening_factor"],
        use_query_residual=config["use_query_residual"],
        cross_attention_shape_for_attention=config["cross_attention_shape_for_attention"],
        latent_initializer=initializer(config),
        name="encoder",
        **common,
    )
    processor = LatentProcessor(
        num_blocks=config["num_blocks"],
        num_self_attends_per_block=config["num_self_attends_per_block"],
        num_self_attention_heads=config["num_self_attention_heads"],
        qk_channels=config["qk_channels"],
        v_channels=config["v_channels"],
        self_attention_widening_factor=config["self_attention_widening_factor"],
        name="processor",
        **common,
    )
    return encoder, processor


def build_decoder(config, dtype=None):
    """`QueryDecoder` named `"decoder"` from the `decoder_*` keys of a model's config dict."""
    return QueryDecoder(
        num_cross_attention_heads=config["decoder_num_heads"],
        qk_channels=config["decoder_qk_channels"],
        v_channels=config["decoder_v_channels"],
        cross_attention_widening_factor=config["decoder_widening_factor"],
        use_query_residual=config["decoder_use_query_residual"],
        output_channels=config["output_channels"],
        query_mask_mode=config["query_mask_mode"],
        activation=config["activation"],
        dropout=config["dropout"],
        attention_dropout=config["attention_dropout"],
        kernel_initializer=initializer(config),
        dtype=dtype,
        name="decoder",
    )
