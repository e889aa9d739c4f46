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

FLOW_STACK = {
    "num_latents": 2048,
    "latent_dim": 512,
    "num_blocks": 1,
    "num_self_attends_per_block": 24,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 16,
    "qk_channels": None,
    "v_channels": None,
    "cross_attention_shape_for_attention": "kv",
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 1,
}

MULTIMODAL_STACK = {
    "num_latents": 784,
    "latent_dim": 512,
    "num_blocks": 1,
    "num_self_attends_per_block": 8,
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
        "num_parameters": 196_249_088,
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
        "num_parameters": 219_444_224,
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
    "audio_perceiver_raw_527": {
        "description": (
            "Raw-audio encoder of the `audio_perceiver_raw_527` classifier: the audio front end of the "
            "Perceiver IO Kinetics multimodal autoencoder (arXiv 2107.14795, section 4.3: patches of 16 "
            "samples, 192 Fourier bands with max_resolution = the sample count, 30,720 samples) and its "
            "784 x 512 latent array with 1 x 8 self-attends (8 heads, 1 cross-attention head). Not a "
            "published model (see the classifier preset). No checkpoint."
        ),
        "num_parameters": 14_287_383,
        "config": {
            "input_shape": (30_720,),
            "input_name": "audio",
            "input_preprocessor": _layer(
                "AudioPreprocessor",
                samples_per_patch=16,
                num_bands=192,
                name="audio_preprocessor",
            ),
            **MULTIMODAL_STACK,  # the Kinetics autoencoder's latent array (see the task preset)
        },
    },
    "starcraft_entity_perceiver": {
        "description": (
            "Perceiver IO encoder in place of AlphaStar's entity Transformer (arXiv 2107.14795 appendix B, "
            "tables 5, 6 and 9): entities of 256 features projected to 128 channels (a Dense named "
            "`entity_projection`, no position encodings), 32 x 640 latents (the width derived from the "
            "paper's FLOPs: see the `starcraft_entity_perceiver` entity-encoder preset), 1 x 3 "
            "self-attends, 1 cross-attention / 8 self-attention heads, MLP widening 1. No checkpoint."
        ),
        "num_parameters": 8_466_304,
        "config": {
            "input_shape": (None, 256),
            "input_name": "entities",
            "input_preprocessor": {
                "module": "keras.layers",
                "class_name": "Dense",
                "config": {
                    "units": 128,
                    "kernel_initializer": {
                        "module": "keras.initializers",
                        "class_name": "TruncatedNormal",
                        "config": {"stddev": 0.02},
                    },
                    "name": "entity_projection",
                },
            },
            "num_latents": 32,
            "latent_dim": 640,
            "num_blocks": 1,
            "num_self_attends_per_block": 3,
            "num_cross_attention_heads": 1,
            "num_self_attention_heads": 8,
            "cross_attention_widening_factor": 1,
            "self_attention_widening_factor": 1,
        },
    },
    "optical_flow_perceiver": {
        "description": (
            "The optical-flow perceiver's encoder (Perceiver IO, arXiv 2107.14795, section 4.2): 3x3 "
            "patches of two 368x496 frames (54 channels) -> Dense 64 + 64-band Fourier features at the "
            "368x496 training size, 2048 x 512 latents, 1 x 24 self-attends with 16 heads. transformers "
            "checkpoint `deepmind/optical-flow-perceiver` (its `perceiver` part)."
        ),
        "num_parameters": 39_990_290,
        "config": {
            "input_shape": (2, 368, 496, 3),
            "input_name": "frames",
            "input_preprocessor": _layer(
                "OpticalFlowPreprocessor",
                train_size=(368, 496),
                num_bands=64,
                output_channels=64,
                name="flow_preprocessor",
            ),
            **FLOW_STACK,
        },
    },
    "multimodal_perceiver": {
        "description": (
            "The Kinetics-700 multimodal autoencoder's encoder (Perceiver IO, arXiv 2107.14795, section "
            "4.3): 16 frames of 224x224 in 4x4 patches + 32-band Fourier features of the (16, 56, 56) patch "
            "grid, audio (16 x 1920 samples) in patches of 16 + 192 bands, a 700-way label masked with "
            "probability 1 on every call, padded to 704 channels; 784 x 512 latents, 1 x 8 self-attends "
            "with 8 heads. transformers checkpoint `deepmind/multimodal-perceiver` (its `perceiver` part)."
        ),
        "num_parameters": 15_271_680,
        "config": {
            "input_shape": {"audio": (30_7215_271_680,), "label": (700,), "video": (16, 224, 224, 3)},
            "input_preprocessor": _layer(
                "MultimodalPreprocessor",
                modalities={
                    "audio": _layer(
                        "AudioPreprocessor", samples_per_patch=16, num_bands=192, name="audio_preprocessor"
                    ),
                    "label": _layer("OneHotPreprocessor", num_classes=700, name="label_preprocessor"),
                    "video": _layer(
                        "ImagePreprocessor",
                        prep_type="patches",
                        spatial_downsample=4,
                        temporal_downsample=1,
                        num_bands=32,
                        max_resolution=(16, 56, 56),
                        name="video_preprocessor",
                    ),
                },
                mask_probs={"audio": 0.0, "label": 1.0, "video": 0.0},
                min_padding_size=4,
                mask_mode="always",
                name="multimodal_preprocessor",
            ),
            **MULTIMODAL_STACK,
        },
    },
}
