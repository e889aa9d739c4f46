"""Published backbones: input preprocessor + latent stack hyperparameters (data, not code).

Each is shared by the task presets that use it (e.g. `language_perceiver` by
`PerceiverMaskedLM` and `PerceiverTextClassifier`). `input_preprocessor`
holds a serialized Keras layer (class name and config).
"""


def _layer(class_name, **config):
    """A serialized keras_perceiver layer: what `keras.saving.deserialize_keras_object` reads."""
    return {"class_name": f"keras_perceiver>{class_name}", "config": config}


LANGUAGE_STACK = {
    "num_latents": 256,
    "latent_dim": 1280,
    "num_blocks": 1,
    "num_self_attends_per_block": 26,
    "num_cross_attention_heads": 8,
    "num_self_attention_heads": 8,
    "qk_channels": 256,
    "v_channels": 1280,
    "cross_attention_shape_for_attention": "kv",
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 1,
}

VISION_STACK = {
    "num_latents": 512,
    "latent_dim": 1024,
    "num_blocks": 8,
    "num_self_attends_per_block": 6,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 8,
    "qk_channels": None,
    "v_channels": None,
    "cross_attention_shape_for_attention": "kv",
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 1,
}

_IMAGE_INPUT = {"input_shape": (224, 224, 3), "input_name": "images"}

PERCEIVER_BACKBONE_PRESETS = {
    "language_perceiver": {
        "description": (
            "The Perceiver IO language model's encoder on UTF-8 bytes (arXiv 2107.14795, section 4.1): "
            "byte + position embeddings (262 ids, 2048 positions, d_model 768), 256 x 1280 latents, "
            "1 x 26 self-attends, 8/8 heads, qk 256, v 1280. Backbone of the `language_perceiver` masked "
            "LM and of `language_perceiver_classifier`; transformers checkpoint "
            "`deepmind/language-perceiver` (its `perceiver` part)."
        ),
        "num_parameters": 199_531_776,
        "config": {
            "input_shape": (None,),
            "input_name": "token_ids",
            "input_dtype": "int32",
            "input_preprocessor": _layer(
                "TextPreprocessor",
                vocab_size=262,
                max_sequence_length=2048,
                embedding_dim=768,
                name="text_preprocessor",
            ),
            **LANGUAGE_STACK,
        },
    },
    "language_perceiver_sentencepiece": {
        "description": (
            "The language perceiver's encoder on SentencePiece tokens (arXiv 2107.14795, section 4.1, the "
            "SentencePiece baseline of the bytes model): 512 tokens and a 32,000-piece vocabulary (the "
            "T5-style vocabulary size; set the preprocessor's `vocab_size` to your tokenizer's). Widths as "
            "TF Model Garden's perceiver project (official/projects/perceiver/configs/perceiver.py). No "
            "public checkpoint."
        ),
        "num_parameters": 221_578_240,
        "config": {
            "input_shape": (None,),
            "input_name": "token_ids",
            "input_dtype": "int32",
            "input_preprocessor": _layer(
                "TextPreprocessor",
                vocab_size=32_000,
                max_sequence_length=512,
                embedding_dim=768,
                name="text_preprocessor",
            ),
            **LANGUAGE_STACK,
        },
    },
    "vision_perceiver_learned": {
        "description": (
            "ImageNet vision perceiver's encoder with a 1x1 conv to 256 channels and learned 2-D positions "
            "(256, projected to 256) concatenated (Perceiver IO, arXiv 2107.14795, section 4.5); 512 x 1024 "
            "latents, 8 x 6 self-attends with shared weights. transformers checkpoint "
            "`deepmind/vision-perceiver-learned`."
        ),
        "num_parameters": 54_926_080,
        "config": {
            **_IMAGE_INPUT,
            "input_preprocessor": _layer(
                "ImagePreprocessor",
                prep_type="conv1x1",
                output_channels=256,
                position_encoding_type="trainable",
                num_channels=256,
                project_pos_dim=256,
                name="image_preprocessor",
            ),
            **VISION_STACK,
        },
    },
    "vision_perceiver_fourier": {
        "description": (
            "ImageNet vision perceiver's encoder on raw pixels with 64-band Fourier features of the "
            "224x224 grid concatenated (Perceiver IO, arXiv 2107.14795, section 4.5). transformers "
            "checkpoint `deepmind/vision-perceiver-fourier`."
        ),
        "num_parameters": 41_110_859,
        "config": {
            **_IMAGE_INPUT,
            "input_preprocessor": _layer(
                "ImagePreprocessor",
                prep_type="pixels",
                position_encoding_type="fourier",
                num_bands=64,
                max_resolution=(224, 224),
                name="image_preprocessor",
            ),
            **VISION_STACK,
        },
    },
    "vision_perceiver_conv": {
        "description": (
            "ImageNet vision perceiver's encoder with the conv stem (7x7/2 conv, BatchNorm, ReLU, 3x3/2 "
            "max-pool to 64 channels at 55x55, transformers padding) and 64-band Fourier features at "
            "resolution 56 (Perceiver IO, arXiv 2107.14795, section 4.5). transformers checkpoint "
            "`deepmind/vision-perceiver-conv`."
        ),
        "num_parameters": 41_316_754,  # trainable; plus 128 BatchNorm statistics
        "config": {
            **_IMAGE_INPUT,
            "input_preprocessor": _layer(
                "ImagePreprocessor",
                prep_type="conv",
                output_channels=64,
                conv_padding="transformers",
                position_encoding_type="fourier",
                num_bands=64,
                max_resolution=(56, 56),
                name="image_preprocessor",
            ),
            **VISION_STACK,
        },
    },
}
