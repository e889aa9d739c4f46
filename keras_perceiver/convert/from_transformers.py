"""Convert Hugging Face transformers Perceiver checkpoints to keras_perceiver models."""

import contextlib
import contextvars
import os

import numpy as np

from keras_perceiver.convert.transformers_checkpoint import (
    read_transformers_checkpoint,
    transformers_hub_directory,
)
from keras_perceiver.hub import looks_like_repo_id
from keras_perceiver.models.class_names import ClassNamesMixin
from keras_perceiver.models.perceiver_backbone import PerceiverBackbone
from keras_perceiver.models.perceiver_image_classifier import PerceiverImageClassifier
from keras_perceiver.models.perceiver_io import PerceiverIO
from keras_perceiver.models.perceiver_masked_lm import PerceiverMaskedLM
from keras_perceiver.models.perceiver_multimodal_autoencoder import PerceiverMultimodalAutoencoder
from keras_perceiver.models.perceiver_optical_flow import PerceiverOpticalFlow
from keras_perceiver.models.perceiver_text_classifier import PerceiverTextClassifier
from keras_perceiver.models.text_backbone import text_backbone

_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
}
SUPPORTED_ARCHITECTURES = (
    "PerceiverModel",
    "PerceiverForMaskedLM",
    "PerceiverForSequenceClassification",
    "PerceiverForImageClassificationLearned",
    "PerceiverForImageClassificationFourier",
    "PerceiverForImageClassificationConvProcessing",
    "PerceiverForOpticalFlow",
    "PerceiverForMultimodalAutoencoding",
)
# transformers builds these image preprocessors in code, not from config.json (modeling_perceiver.py).
_IMAGE_PREPROCESSING = {
    "PerceiverForImageClassificationLearned": {
        "prep_type": "conv1x1",
        "output_channels": 256,
        "position_encoding_type": "trainable",
        "num_channels": 256,
        "project_pos_dim": 256,
    },
    "PerceiverForImageClassificationFourier": {
        "prep_type": "pixels",
        "num_bands": 64,
        "max_resolution": (224, 224),
    },
    "PerceiverForImageClassificationConvProcessing": {
        "prep_type": "conv",
        "output_channels": 64,
        "conv_padding": "transformers",
        "num_bands": 64,
        "max_resolution": (56, 56),
    },
}


class _WeightReader:
    """Pops transformers tensors by name so that unused ones can be reported.

    `source_name` (optional) maps a transformers name to the name the
    parameter has in the original checkpoint (e.g. DeepMind's Haiku scope),
    for error messages.
    """

    def __init__(self, weights, source_name=None):
        self.weights = dict(weights)
        self.source_name = source_name

    def pop(self, name):
        if name not in self.weights:
            if self.source_name is None:
                raise ValueError(f"The checkpoint has no parameter {name!r}; it does not match the config")
            raise ValueError(
                f"The checkpoint has no {self.source_name(name)!r} (transformers name {name!r}); it does not "
                "match the config"
            )
        return self.weights.pop(name)


# transformers `PerceiverConfig` sizes: positive integers (None allowed where the config allows it).
_CONFIG_SIZES = (
    "num_latents",
    "d_latents",
    "d_model",
    "num_blocks",
    "num_self_attends_per_block",
    "num_self_attention_heads",
    "num_cross_attention_heads",
    "cross_attention_widening_factor",
    "self_attention_widening_factor",
    "vocab_size",
    "max_position_embeddings",
)
_OPTIONAL_CONFIG_SIZES = ("qk_channels", "v_channels")


def _check_config_sizes(config):
    """Raise a ValueError naming the config field whose size is not a positive integer."""
    for field in _CONFIG_SIZES + _OPTIONAL_CONFIG_SIZES:
        if field not in config or (config[field] is None and field in _OPTIONAL_CONFIG_SIZES):
            continue
        value = config[field]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"The checkpoint's config.json field `{field}` must be a positive integer. "
                f"Received: {field}={value!r}"
            )


def _reshape(value, shape, name):
    """`value.reshape(shape)`, or a ValueError naming the checkpoint tensor that does not fit."""
    try:
        return value.reshape(shape)
    except ValueError as error:
        raise ValueError(
            f"Checkpoint tensor {name!r} does not fit the config: cannot reshape {value.shape} to {shape} "
            f"({error})"
        ) from error


# While `recording_assignments` runs: the (Keras variable, checkpoint tensor name) pairs `_assign` made.
_ASSIGNMENTS = contextvars.ContextVar("keras_perceiver_transformers_assignments", default=None)


@contextlib.contextmanager
def recording_assignments():
    """Context manager: yields the list that every `_assign` of a conversion inside appends
    (variable, checkpoint tensor name) to (`export_to_transformers` inverts the conversion with it)."""
    assignments = []
    token = _ASSIGNMENTS.set(assignments)
    try:
        yield assignments
    finally:
        _ASSIGNMENTS.reset(token)


def _assign(variable, value, name):
    recorded = _ASSIGNMENTS.get()
    if recorded is not None:
        recorded.append((variable, name))
    if tuple(variable.shape) != tuple(value.shape):
        raise ValueError(
            f"Shape mismatch converting checkpoint tensor {name!r} to {variable.path}: expected "
            f"{tuple(variable.shape)}, "
            f"received {tuple(value.shape)}"
        )
    variable.assign(value.astype(np.float32))


def _load_layer_norm(layer, reader, prefix):
    _assign(layer.gamma, reader.pop(f"{prefix}.weight"), f"{prefix}.weight")
    _assign(layer.beta, reader.pop(f"{prefix}.bias"), f"{prefix}.bias")


def _load_dense(layer, reader, prefix):
    _assign(layer.kernel, reader.pop(f"{prefix}.weight").T, f"{prefix}.weight")
    _assign(layer.bias, reader.pop(f"{prefix}.bias"), f"{prefix}.bias")


def _load_attention(attention, reader, prefix):
    """torch Linear [out, in] -> per-head EinsumDense kernels [in, heads, head_dim]."""
    heads = attention.num_heads
    for ours, theirs in (
        (attention.query_dense, "query"),
        (attention.key_dense, "key"),
        (attention.value_dense, "value"),
    ):
        w = reader.pop(f"{prefix}.self.{theirs}.weight")
        b = reader.pop(f"{prefix}.self.{theirs}.bias")
        w_name, b_name = f"{prefix}.self.{theirs}.weight", f"{prefix}.self.{theirs}.bias"
        _assign(ours.kernel, _reshape(w.T, (w.shape[1], heads, -1), w_name), w_name)
        _assign(ours.bias, _reshape(b, (heads, -1), b_name), b_name)
    w = reader.pop(f"{prefix}.output.dense.weight")
    name = f"{prefix}.output.dense.weight"
    _assign(attention.output_dense.kernel, _reshape(w.T, (heads, -1, w.shape[0]), name), name)
    name = f"{prefix}.output.dense.bias"
    _assign(attention.output_dense.bias, reader.pop(name), name)


def _load_mlp(mlp, reader, prefix):
    _load_layer_norm(mlp.layer_norm, reader, f"{prefix}.layernorm")
    _load_dense(mlp.dense_1, reader, f"{prefix}.mlp.dense1")
    _load_dense(mlp.dense_2, reader, f"{prefix}.mlp.dense2")


def _load_cross_attention(block, reader, prefix):
    _load_layer_norm(block.query_norm, reader, f"{prefix}.attention.self.layernorm1")
    _load_layer_norm(block.inputs_norm, reader, f"{prefix}.attention.self.layernorm2")
    _load_attention(block.attention, reader, f"{prefix}.attention")
    _load_mlp(block.mlp, reader, prefix)


def _load_self_attention(block, reader, prefix):
    _load_layer_norm(block.layer_norm, reader, f"{prefix}.attention.self.layernorm1")
    _load_attention(block.attention, reader, f"{prefix}.attention")
    _load_mlp(block.mlp, reader, prefix)


def _load_encoder_and_processor(model, reader, prefix):
    encoder = model.get_layer("encoder")
    _assign(encoder.latents, reader.pop(f"{prefix}embeddings.latents"), f"{prefix}embeddings.latents")
    _load_cross_attention(encoder.cross_attention, reader, f"{prefix}encoder.cross_attention")
    for i, block in enumerate(model.get_layer("processor").self_attends):
        _load_self_attention(block, reader, f"{prefix}encoder.self_attends.{i}")


def _core_config(config):
    activation = config.get("hidden_act", "gelu")
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"Unsupported hidden_act {activation!r} in config.json. Expected one of {sorted(_ACTIVATIONS)}"
        )
    return {
        "num_latents": config["num_latents"],
        "latent_dim": config["d_latents"],
        "num_blocks": config["num_blocks"],
        "num_self_attends_per_block": config["num_self_attends_per_block"],
        "num_cross_attention_heads": config["num_cross_attention_heads"],
        "num_self_attention_heads": config["num_self_attention_heads"],
        "qk_channels": config.get("qk_channels"),
        "v_channels": config.get("v_channels"),
        "cross_attention_shape_for_attention": config.get("cross_attention_shape_for_attention", "kv"),
        "cross_attention_widening_factor": config["cross_attention_widening_factor"],
        "self_attention_widening_factor": config["self_attention_widening_factor"],
        "use_query_residual": config.get("use_query_residual", True),
        "activation": _ACTIVATIONS[activation],
        "attention_dropout": config.get("attention_probs_dropout_prob", 0.0),
    }


def _build_perceiver_model(config, reader, dtype):
    backbone = PerceiverBackbone(input_shape=(None, config["d_model"]), dtype=dtype, **_core_config(config))
    model = PerceiverIO(backbone, dtype=dtype)
    _load_encoder_and_processor(model, reader, "")
    return model


def _text_backbone(config, dtype):
    """The `PerceiverBackbone` of transformers' text models: `PerceiverTextPreprocessor` + encoder."""
    return text_backbone(
        vocab_size=config["vocab_size"],
        max_sequence_length=config["max_position_embeddings"],
        embedding_dim=config["d_model"],
        dtype=dtype,
        **_core_config(config),
    )


def _build_masked_lm(config, reader, dtype):
    # transformers' PerceiverForMaskedLM fixes its decoder: 8 heads of 32 query/key channels, v = d_model.
    model = PerceiverMaskedLM(
        _text_backbone(config, dtype),
        decoder_num_cross_attention_heads=8,
        decoder_qk_channels=8 * 32,
        decoder_v_channels=config["d_model"],
        dtype=dtype,
    )
    _load_text_encoder(model, reader)
    name = "embedding_decoder.bias"
    _assign(model.get_layer("output_bias").bias, reader.pop(name), name)
    _assign(
        model.get_layer("decoder_queries").position_embeddings,
        reader.pop("perceiver.decoder.output_position_encodings.position_embeddings"),
        "perceiver.decoder.output_position_encodings.position_embeddings",
    )
    _load_cross_attention(
        model.get_layer("decoder").cross_attention, reader, "perceiver.decoder.decoding_cross_attention"
    )
    return model


def _load_text_encoder(model, reader):
    text = model.get_layer("text_preprocessor")
    name = "perceiver.input_preprocessor.embeddings.weight"
    _assign(text.token_embeddings, reader.pop(name), name)
    _assign(
        text.position_embeddings,
        reader.pop("perceiver.input_preprocessor.position_embeddings.weight"),
        "perceiver.input_preprocessor.position_embeddings.weight",
    )
    _load_encoder_and_processor(model, reader, "perceiver.")


def _load_classification_decoder(model, reader, prefix):
    """transformers `PerceiverClassificationDecoder`: one trainable query, cross-attention, final layer."""
    _assign(
        model.get_layer("decoder_queries").position_embeddings,
        reader.pop(f"{prefix}.output_position_encodings.position_embeddings"),
        f"{prefix}.output_position_encodings.position_embeddings",
    )
    decoder = model.get_layer("decoder")
    _load_cross_attention(decoder.cross_attention, reader, f"{prefix}.decoding_cross_attention")
    _load_dense(decoder.output_projection, reader, f"{prefix}.final_layer")


def _task_preprocessor(model, config):
    """The raw-input preprocessor of a converted model, as transformers' processors (None for the others).

    Text: `PerceiverTokenizer` (bytes in [CLS] ... [SEP], padded to
    `max_position_embeddings`); images: `PerceiverImageProcessor` (crop,
    bicubic resize to `image_size`, ImageNet normalization).
    """
    # (Imported here: the task preprocessors run TensorFlow ops, which the JAX and PyTorch backends of the
    # models do not import.)
    from keras_perceiver.task_preprocessors import ImageTaskPreprocessor, TextTaskPreprocessor
    from keras_perceiver.tokenizers.byte_tokenizer import ByteTokenizer

    if isinstance(model, (PerceiverMaskedLM, PerceiverTextClassifier)):
        tokenizer = ByteTokenizer(sequence_length=config["max_position_embeddings"], add_special_tokens=True)
        return TextTaskPreprocessor(tokenizer)
    if isinstance(model, PerceiverImageClassifier):
        size = config.get("image_size", 224)
        return ImageTaskPreprocessor(image_size=(size, size))
    return None


def _num_labels(config):
    return len(config["id2label"]) if config.get("id2label") else config.get("num_labels", 2)


def _build_sequence_classifier(config, reader, dtype):
    model = PerceiverTextClassifier(
        _text_backbone(config, dtype),
        num_classes=_num_labels(config),
        problem_type=config.get("problem_type") or "single_label_classification",
        dtype=dtype,
    )
    _load_text_encoder(model, reader)
    _load_classification_decoder(model, reader, "perceiver.decoder.decoder")
    return model


def _load_image_preprocessor(layer, reader, prefix):
    if layer.prep_type == "conv1x1":
        w = reader.pop(f"{prefix}.convnet_1x1.weight")
        _assign(layer.stem.kernel, w.transpose(2, 3, 1, 0), f"{prefix}.convnet_1x1.weight")
        _assign(layer.stem.bias, reader.pop(f"{prefix}.convnet_1x1.bias"), f"{prefix}.convnet_1x1.bias")
    elif layer.prep_type == "conv":
        conv = layer.stem
        name = f"{prefix}.convnet.conv.weight"
        _assign(conv.conv.kernel, reader.pop(name).transpose(2, 3, 1, 0), name)
        if conv.batchnorm is not None:
            bn = f"{prefix}.convnet.batchnorm"
            _assign(conv.batchnorm.gamma, reader.pop(f"{bn}.weight"), f"{bn}.weight")
            _assign(conv.batchnorm.beta, reader.pop(f"{bn}.bias"), f"{bn}.bias")
            _assign(conv.batchnorm.moving_mean, reader.pop(f"{bn}.running_mean"), f"{bn}.running_mean")
            _assign(conv.batchnorm.moving_variance, reader.pop(f"{bn}.running_var"), f"{bn}.running_var")
            reader.weights.pop(f"{bn}.num_batches_tracked", None)  # a step counter, not a weight
    if layer.position_encoding_type == "trainable":
        _assign(
            layer.position_encoding.position_embeddings,
            reader.pop(f"{prefix}.position_embeddings.position_embeddings"),
            f"{prefix}.position_embeddings.position_embeddings",
        )
    if layer.project_pos_dim is not None:
        _load_dense(layer.position_combiner.projection, reader, f"{prefix}.positions_projection")


def _build_image_classifier(config, reader, dtype, architecture):
    image_size = config.get("image_size", 224)
    model = PerceiverImageClassifier.from_hyperparameters(
        image_shape=(image_size, image_size, 3),
        num_classes=_num_labels(config),
        dtype=dtype,
        **_IMAGE_PREPROCESSING[architecture],
        **_core_config(config),
    )
    _load_image_preprocessor(model.get_layer("image_preprocessor"), reader, "perceiver.input_preprocessor")
    _load_encoder_and_processor(model, reader, "perceiver.")
    _load_classification_decoder(model, reader, "perceiver.decoder.decoder")
    return model


def _build_optical_flow(config, reader, dtype):
    train_size = tuple(config.get("train_size", (368, 496)))
    model = PerceiverOpticalFlow.from_hyperparameters(
        image_size=train_size, train_size=train_size, dtype=dtype, **_core_config(config)
    )
    _load_dense(
        model.get_layer("flow_preprocessor").projection,
        reader,
        "perceiver.input_preprocessor.conv_after_patches",
    )
    _load_encoder_and_processor(model, reader, "perceiver.")
    decoder = model.get_layer("decoder")
    prefix = "perceiver.decoder.decoder"
    _load_cross_attention(decoder.cross_attention, reader, f"{prefix}.decoding_cross_attention")
    _load_dense(decoder.output_projection, reader, f"{prefix}.final_layer")
    return model


# transformers' modality names -> ours (the video modality is "image" there).
_MULTIMODAL_NAMES = {"audio": "audio", "image": "video", "label": "label"}


def _multimodal_config(config):
    """Flat `PerceiverMultimodalAutoencoder` arguments (`from_hyperparameters`) of a transformers config.

    transformers builds the modality processors in code (modeling_perceiver.py): Fourier features with 192
    bands for audio (max_resolution = the number of samples) and 32 for video (max_resolution =
    (num_frames, image_size, image_size)), patches of 4x4 pixels, mask probabilities 0 / 0 / 1 for audio /
    video / label, input padding 4, query padding 2.
    """
    output_shape = config.get("output_shape", (1, 16, 224, 224))
    image_size = config.get("image_size", 56)
    return {
        "num_frames": config.get("num_frames", 16),
        "image_size": tuple(output_shape[2:4]),
        "audio_samples_per_frame": config.get("audio_samples_per_frame", 1920),
        "samples_per_patch": config.get("samples_per_patch", 16),
        "num_classes": _num_labels(config),
        "spatial_downsample": 4,
        "temporal_downsample": 1,
        "video_num_bands": 32,
        "video_max_resolution": (config.get("num_frames", 16), image_size, image_size),
        "audio_num_bands": 192,
        "label_query_channels": config.get("_label_trainable_num_channels", 1024),
        "mask_probs": {"audio": 0.0, "label": 1.0, "video": 0.0},
        "mask_mode": "always",
        "input_min_padding_size": 4,
        "query_min_padding_size": 2,
        "decoder_output_channels": config.get("output_num_channels", 512),
        **_core_config(config),
    }


def _load_multimodal_preprocessor(layer, reader, prefix):
    for theirs, ours in _MULTIMODAL_NAMES.items():
        _assign(layer.paddings[ours], reader.pop(f"{prefix}.padding.{theirs}"), f"{prefix}.padding.{theirs}")
        _assign(layer.mask_tokens[ours], reader.pop(f"{prefix}.mask.{theirs}"), f"{prefix}.mask.{theirs}")


def _build_multimodal_autoencoder(config, reader, dtype):
    model = PerceiverMultimodalAutoencoder.from_hyperparameters(dtype=dtype, **_multimodal_config(config))
    _load_multimodal_preprocessor(
        model.get_layer("multimodal_preprocessor"), reader, "perceiver.input_preprocessor"
    )
    _load_encoder_and_processor(model, reader, "perceiver.")
    queries = model.get_layer("decoder_queries")
    prefix = "perceiver.decoder"
    _assign(
        queries.query_layers["label"].position_embeddings,
        reader.pop(f"{prefix}.modalities.label.decoder.output_position_encodings.position_embeddings"),
        f"{prefix}.modalities.label.decoder.output_position_encodings.position_embeddings",
    )
    for theirs, ours in _MULTIMODAL_NAMES.items():
        padding = reader.pop(f"{prefix}.padding.{theirs}")[0]
        _assign(queries.paddings[ours], padding, f"{prefix}.padding.{theirs}")
    decoder = model.get_layer("decoder")
    _load_cross_attention(decoder.cross_attention, reader, f"{prefix}.decoder.decoding_cross_attention")
    _load_dense(decoder.output_projection, reader, f"{prefix}.decoder.final_layer")
    postprocessors = model.get_layer("multimodal_postprocessor").modalities
    for theirs, ours in _MULTIMODAL_NAMES.items():
        _load_dense(
            postprocessors[ours].classifier,
            reader,
            f"perceiver.output_postprocessor.modalities.{theirs}.classifier",
        )
    return model


_BUILDERS = {
    "PerceiverForMultimodalAutoencoding": _build_multimodal_autoencoder,
    "PerceiverForOpticalFlow": _build_optical_flow,
    **{
        name: (lambda c, r, d, name=name: _build_image_classifier(c, r, d, name))
        for name in _IMAGE_PREPROCESSING
    },
    "PerceiverModel": _build_perceiver_model,
    "PerceiverForMaskedLM": _build_masked_lm,
    "PerceiverForSequenceClassification": _build_sequence_classifier,
}


def from_transformers(path, allow_pickle=False, dtype=None):
    """Build the keras_perceiver model of a transformers Perceiver checkpoint, weights converted.

    The task model is picked from `config.json` (`architectures`):
    - `PerceiverModel` (no decoder) -> `PerceiverIO` taking
      `{"inputs": (B, M, d_model), "padding_mask": (B, M)}` and returning the
      latents (B, N, d_latents).
    - `PerceiverForMaskedLM` -> `PerceiverMaskedLM` taking
      `{"token_ids": (B, L), "padding_mask": (B, L)}` and returning logits
      (B, L, vocab_size). transformers always decodes
      `max_position_embeddings` queries; ours decodes the first L, which
      are the same values.
    - `PerceiverForSequenceClassification` -> `PerceiverTextClassifier`
      with the same inputs, returning (B, num_labels) logits.
    - `PerceiverForImageClassificationLearned` / `...Fourier` /
      `...ConvProcessing` -> `PerceiverImageClassifier` taking
      `{"images": (B, H, W, 3)}` (channels last; transformers takes
      channels first) and returning (B, num_labels) logits.
    - `PerceiverForOpticalFlow` -> `PerceiverOpticalFlow` at `train_size`,
      taking `{"frames": (B, 2, H, W, 3)}` (raw frames: the 3x3 patches that
      transformers expects as input are extracted inside) and returning
      (B, H, W, 2) flow.
    - `PerceiverForMultimodalAutoencoding` -> `PerceiverMultimodalAutoencoder`
      taking `{"video": (B, T, H, W, 3), "audio": (B, S), "label": (B, K)}`
      (channels-last video; transformers' modality "image" is "video" here)
      and returning the reconstructions `{"video", "audio", "label"}`. It
      decodes every query point at the positions transformers uses for
      subsampled decoding, i.e. it equals transformers' outputs with
      `subsampled_output_points` covering all points (or the concatenation
      of its chunks); rebuild it with `subsample_outputs=True` (same
      weights) to decode chosen points.

    Torch is not needed for `model.safetensors`.

    Args:
        path: str, a directory written by `save_pretrained`, or the id of a
            Hugging Face Hub model repository, `"owner/name"` (optionally
            `"owner/name@revision"`), read through `huggingface_hub` (its
            cache; `HF_HUB_OFFLINE=1` reads only the cache). An existing
            local directory of that name wins.
        allow_pickle: bool, also read a `pytorch_model.bin` (a pickle: only
            for trusted files). Defaults to False.
        dtype: dtype policy of the built model. Defaults to Keras' global one.

    Returns:
        A `keras.Model` with the checkpoint's weights.

    Raises:
        FileNotFoundError: for a missing directory, hub repository, config
            or weights file.
        ValueError: for an unsupported architecture or activation, weights
            whose shapes do not match the config, or parameters left
            unconverted.
    """
    if not os.path.isdir(os.fspath(path)) and looks_like_repo_id(path):
        path = transformers_hub_directory(path, allow_pickle)
    config, weights = read_transformers_checkpoint(path, allow_pickle=allow_pickle)
    return from_state_dict(config, weights, dtype=dtype)


def from_state_dict(config, weights, dtype=None, source_name=None, unused=None):
    """Build the keras_perceiver model of an in-memory transformers config and state dict.

    The loading step of `from_transformers`, for callers that already hold
    the weights (e.g. `from_deepmind`, which renames DeepMind's Haiku
    parameters to transformers' names).

    Args:
        config: dict, the contents of a transformers `config.json`
            (`model_type` "perceiver", `architectures`, sizes).
        weights: dict of transformers parameter name -> numpy array in torch
            layout (Linear weights (out, in)).
        dtype: dtype policy of the built model. Defaults to Keras' global one.
        source_name: callable or None, maps a transformers parameter name to
            its name in the original checkpoint, used in error messages.
            Defaults to None (transformers names).
        unused: None (default: parameters left unconverted are an error) or
            a list that receives their names instead (tied duplicates and
            buffers of a full `state_dict()`).

    Returns:
        A `keras.Model` with the weights (see `from_transformers`).

    Raises:
        ValueError: as `from_transformers`.
    """
    if config.get("model_type") != "perceiver":
        raise ValueError(
            f"Expected a Perceiver checkpoint (model_type 'perceiver'). Received: model_type="
            f"{config.get('model_type')!r}"
        )
    _check_config_sizes(config)
    architectures = config.get("architectures") or ["PerceiverModel"]
    architecture = architectures[0] if isinstance(architectures, list) and architectures else architectures
    if not isinstance(architecture, str) or architecture not in _BUILDERS:
        raise ValueError(
            f"Unsupported transformers architecture {architecture!r}. Expected one of "
            f"{list(SUPPORTED_ARCHITECTURES)}"
        )
    reader = _WeightReader(weights, source_name=source_name)
    model = _BUILDERS[architecture](config, reader, dtype)
    model.preprocessor = _task_preprocessor(model, config)
    if isinstance(model, ClassNamesMixin) and isinstance(config.get("id2label"), dict):
        labels = config["id2label"]  # {"0": "tabby cat", ...} (JSON keys are strings)
        model.id2label = [str(labels.get(str(i), labels.get(i, i))) for i in range(len(labels))]
    if reader.weights and unused is not None:
        unused.extend(sorted(reader.weights))
    elif reader.weights:
        names = sorted(reader.weights)[:5]
        if source_name is not None:
            names = [source_name(name) for name in names]
        raise ValueError(f"{len(reader.weights)} checkpoint parameters were not converted: {names}")
    return model
