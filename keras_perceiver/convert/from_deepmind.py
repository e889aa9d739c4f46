"""Convert DeepMind's Haiku Perceiver IO parameters (the official release) to keras_perceiver models.

DeepMind released Perceiver IO as Haiku parameter pickles: a mapping of
module scopes to parameter arrays, e.g.
`params["perceiver_encoder/~/cross_attention/attention/linear"]["w"]`
(the ImageNet models wrap it as `{"params": ..., "state": ...}`, the state
holding the conv stem's BatchNorm moving averages).

`from_deepmind` renames the Haiku parameters to the state-dict names of
transformers' port, with the names of transformers'
`convert_perceiver_haiku_to_pytorch.py` (the script that made the
transformers checkpoints from the same pickles), and converts the layouts
to torch's: `hk.Linear` `w` (in, out) -> (out, in); `hk.Conv2D` `w`
(kh, kw, in, out) -> (out, in, kh, kw); BatchNorm (1, 1, 1, C) -> (C,).
(That script reverses all axes of conv kernels, (out, in, kw, kh), which
swaps the 7x7 stem kernel's spatial axes; this converter keeps DeepMind's
orientation.) It infers a
transformers-style config from the parameter shapes (and the published
values of our presets for what shapes cannot tell) and loads both with
`from_transformers.from_state_dict`, so the weight loading is shared with
the transformers converter.

Haiku scopes, per architecture (`~` separates a module from its submodules):

- encoder: `perceiver_encoder/~/` (`encoder/~/` in the multimodal model)
  `trainable_position_encoding` (`pos_embs`, the latents),
  `cross_attention`, `self_attention`, `self_attention_1`, ... (one per
  self-attend of a block; blocks share them);
- in a cross-attention: `layer_norm` (queries), `layer_norm_1`
  (keys/values), `attention/linear`, `linear_1`, `linear_2`, `linear_3`
  (query, key, value, output), `layer_norm_2` and `mlp/linear`,
  `mlp/linear_1`; in a self-attention: `layer_norm`, `attention/...`,
  `layer_norm_1`, `mlp/...`; layer norms have `scale` and `offset`;
- language model: `embed` (`embeddings`), `trainable_position_encoding`
  (`pos_embs`, input positions), `basic_decoder/~/trainable_position_encoding`
  (decoder queries), `basic_decoder/cross_attention`, `embedding_decoder`
  (`bias`);
- ImageNet models: `image_preprocessor/~/conv2_d` (learned: the 1x1 conv),
  `image_preprocessor/~_build_network_inputs/trainable_position_encoding`
  and `.../position_encoding_projector/linear` (learned positions),
  `image_preprocessor/~/conv2_d_downsample/~/conv` and `.../batchnorm`
  (`scale`, `offset`; state `~/mean_ema/average`, `~/var_ema/average`),
  `classification_decoder/~/basic_decoder/~/trainable_position_encoding`
  (the query), `.../basic_decoder/cross_attention`, `.../basic_decoder/output`;
- optical flow: `image_preprocessor/patches_linear`,
  `flow_decoder/~/basic_decoder/cross_attention`, `.../output`;
- multimodal: `multimodal_preprocessor/{audio,image,label}_padding` and
  `..._mask_token` (`pos_embs`), `multimodal_decoder/~decoder_query/
  {audio,image,label}_padding`, `multimodal_decoder/~/basic_decoder/
  cross_attention`, `.../output`, the label query
  `classification_decoder/~/basic_decoder/~/trainable_position_encoding`,
  and `projection_postprocessor/linear` (video), `audio_postprocessor/linear`,
  `classification_postprocessor/linear`.

Pickles can execute arbitrary code when they are read. `from_deepmind`
refuses them unless `allow_pickle=True`, which is only for files from a
source you trust. A `.npz` archive of the same parameters (keys
`"scope/name"`) is read safely without it.
"""

import copy
import math
import os
import pickle
import re
import zipfile
from collections.abc import Mapping

import numpy as np

from keras_perceiver.convert.from_transformers import from_state_dict
from keras_perceiver.models.perceiver_backbone_presets import PERCEIVER_BACKBONE_PRESETS
from keras_perceiver.models.perceiver_image_classifier_presets import PERCEIVER_IMAGE_CLASSIFIER_PRESETS
from keras_perceiver.models.perceiver_masked_lm_presets import PERCEIVER_MASKED_LM_PRESETS
from keras_perceiver.models.perceiver_multimodal_autoencoder_presets import (
    PERCEIVER_MULTIMODAL_AUTOENCODER_PRESETS,
)
from keras_perceiver.models.perceiver_optical_flow_presets import PERCEIVER_OPTICAL_FLOW_PRESETS

SUPPORTED_ARCHITECTURES = (
    "language_perceiver",
    "vision_perceiver_learned",
    "vision_perceiver_fourier",
    "vision_perceiver_conv",
    "optical_flow_perceiver",
    "multimodal_perceiver",
)


def _flatten(params, prefix=""):
    """{scope: {name: array}} (or deeper, or already flat) -> {"scope/name": array}."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def read_haiku_params(path, allow_pickle=False):
    """Read Haiku parameters as {"scope/name": float32 array}.

    Args:
        path: str, a pickle of the parameters (a mapping of scopes to
            mappings of arrays, optionally wrapped as `{"params": ...,
            "state": ...}`), or a `.npz` archive with `"scope/name"` keys.
        allow_pickle: bool, read a pickle. Pickles can execute arbitrary code
            when read: only for trusted files. Defaults to False.

    Returns:
        dict of parameter name -> float32 numpy array.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: for a pickle without `allow_pickle=True`, or a file that
            does not hold a mapping of arrays.
        ImportError: if the pickle refers to a module that is not installed
            (e.g. `haiku` for old `FlatMapping` pickles).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Expected a DeepMind Haiku parameter file. Received: path={path!r}")
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {name: np.asarray(archive[name], np.float32) for name in archive.files}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as error:  # numpy's verdict
            raise ValueError(
                f"{path!r} is not a readable .npz archive of numeric arrays (truncated, or another format). "
                f"Received: {os.path.getsize(path)} bytes; numpy says: {error}"
            ) from error
    if not allow_pickle:
        raise ValueError(
            f"{path!r} is a pickle: reading it can execute arbitrary code hidden in the file. Pass "
            "allow_pickle=True only if you trust its source (e.g. DeepMind's own release), or convert it "
            "once to a .npz archive with 'scope/name' keys, which is read safely."
        )
    try:
        with open(path, "rb") as f:
            checkpoint = pickle.load(f)  # noqa: S301 - opt-in above, documented as unsafe
    except ModuleNotFoundError as error:
        raise ImportError(
            f"The pickle {path!r} refers to the module {error.name!r}, which is not installed (old Haiku "
            "pickles store `haiku` FlatMappings): install it, or re-save the parameters as nested dicts "
            "of numpy arrays."
        ) from error
    if isinstance(checkpoint, Mapping) and "params" in checkpoint:
        params = _flatten(checkpoint["params"])
        params.update(_flatten(checkpoint.get("state") or {}))
    elif isinstance(checkpoint, Mapping):
        params = _flatten(checkpoint)
    else:
        raise ValueError(
            f"{path!r} does not hold Haiku parameters: expected a mapping of module scopes to arrays. "
            f"Received: {type(checkpoint).__name__}"
        )
    try:
        return {name: np.asarray(value, np.float32) for name, value in params.items()}
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path!r}: a parameter is not a numeric array ({error})") from error


# ---------------------------------------------------------------------------------------------------------
# Haiku names <-> transformers names. A rule pairs one Haiku name with one transformers name; `{sa}` in a
# Haiku name is a self-attention scope (`self_attention`, `self_attention_1`, ...), `{i}` its index.


def _transpose(w):
    """hk.Linear (in, out) -> torch Linear (out, in)."""
    return w.T


def _conv_kernel(w):
    """hk.Conv2D (kh, kw, in, out) -> torch Conv2d (out, in, kh, kw)."""
    return w.transpose(3, 2, 0, 1) if w.ndim == 4 else w


def _squeeze(w):
    """hk.BatchNorm parameters and statistics (1, 1, 1, C) -> (C,)."""
    return w.reshape(-1)


def _pattern(template, placeholder, regex):
    return re.compile(regex.join(re.escape(part) for part in template.split(placeholder)))


class _Rule:
    def __init__(self, haiku, theirs, transform=None):
        self.haiku, self.theirs, self.transform = haiku, theirs, transform
        self._haiku = _pattern(haiku, "{sa}", r"self_attention(?:_(?P<i>[1-9]\d*))?")
        self._theirs = _pattern(theirs, "{i}", r"(?P<i>\d+)")

    def rename(self, name):
        match = self._haiku.fullmatch(name)
        if match is None:
            return None
        return self.theirs.replace("{i}", str(int(match.groupdict().get("i") or 0)))

    def source(self, name):
        match = self._theirs.fullmatch(name)
        if match is None:
            return None
        index = int(match.groupdict().get("i") or 0)
        return self.haiku.replace("{sa}", "self_attention" + (f"_{index}" if index else ""))


def _linear(haiku, theirs):
    return [_Rule(f"{haiku}/w", f"{theirs}.weight", _transpose), _Rule(f"{haiku}/b", f"{theirs}.bias")]


def _norm(haiku, theirs, transform=None):
    return [
        _Rule(f"{haiku}/scale", f"{theirs}.weight", transform),
        _Rule(f"{haiku}/offset", f"{theirs}.bias", transform),
    ]


_ATTENTION_LINEARS = (
    ("attention/linear", "attention.self.query"),
    ("attention/linear_1", "attention.self.key"),
    ("attention/linear_2", "attention.self.value"),
    ("attention/linear_3", "attention.output.dense"),
    ("mlp/linear", "mlp.dense1"),
    ("mlp/linear_1", "mlp.dense2"),
)
_CROSS_ATTENTION_NORMS = (
    ("layer_norm", "attention.self.layernorm1"),
    ("layer_norm_1", "attention.self.layernorm2"),
    ("layer_norm_2", "layernorm"),
)
_SELF_ATTENTION_NORMS = (("layer_norm", "attention.self.layernorm1"), ("layer_norm_1", "layernorm"))


def _attention_block(haiku, theirs, norms):
    rules = [rule for ours, name in norms for rule in _norm(f"{haiku}/{ours}", f"{theirs}.{name}")]
    for ours, name in _ATTENTION_LINEARS:
        rules += _linear(f"{haiku}/{ours}", f"{theirs}.{name}")
    return rules


def _encoder(scope):
    return [
        _Rule(f"{scope}/~/trainable_position_encoding/pos_embs", "perceiver.embeddings.latents"),
        *_attention_block(
            f"{scope}/~/cross_attention", "perceiver.encoder.cross_attention", _CROSS_ATTENTION_NORMS
        ),
        *_attention_block(f"{scope}/~/{{sa}}", "perceiver.encoder.self_attends.{i}", _SELF_ATTENTION_NORMS),
    ]


def _basic_decoder(scope):
    """A `BasicDecoder` with an output projection, as transformers' `decoder.decoder`."""
    return [
        *_attention_block(
            f"{scope}/~/basic_decoder/cross_attention",
            "perceiver.decoder.decoder.decoding_cross_attention",
            _CROSS_ATTENTION_NORMS,
        ),
        *_linear(f"{scope}/~/basic_decoder/output", "perceiver.decoder.decoder.final_layer"),
    ]


_LABEL_QUERY = "classification_decoder/~/basic_decoder/~/trainable_position_encoding/pos_embs"
_CLASSIFIER = [
    *_encoder("perceiver_encoder"),
    _Rule(_LABEL_QUERY, "perceiver.decoder.decoder.output_position_encodings.position_embeddings"),
    *_basic_decoder("classification_decoder"),
]
_IMAGE_INPUTS = "image_preprocessor/~_build_network_inputs"
_CONV_STEM = "image_preprocessor/~/conv2_d_downsample/~"
_MODALITIES = ("audio", "image", "label")  # DeepMind's and transformers' names ("image" is our "video")

_RULES = {
    "language_perceiver": [
        _Rule("embed/embeddings", "perceiver.input_preprocessor.embeddings.weight"),
        _Rule(
            "trainable_position_encoding/pos_embs", "perceiver.input_preprocessor.position_embeddings.weight"
        ),
        *_encoder("perceiver_encoder"),
        _Rule(
            "basic_decoder/~/trainable_position_encoding/pos_embs",
            "perceiver.decoder.output_position_encodings.position_embeddings",
        ),
        *_attention_block(
            "basic_decoder/cross_attention",
            "perceiver.decoder.decoding_cross_attention",
            _CROSS_ATTENTION_NORMS,
        ),
        _Rule("embedding_decoder/bias", "embedding_decoder.bias"),
    ],
    "vision_perceiver_learned": [
        _Rule(
            "image_preprocessor/~/conv2_d/w", "perceiver.input_preprocessor.convnet_1x1.weight", _conv_kernel
        ),
        _Rule("image_preprocessor/~/conv2_d/b", "perceiver.input_preprocessor.convnet_1x1.bias"),
        _Rule(
            f"{_IMAGE_INPUTS}/trainable_position_encoding/pos_embs",
            "perceiver.input_preprocessor.position_embeddings.position_embeddings",
        ),
        *_linear(
            f"{_IMAGE_INPUTS}/position_encoding_projector/linear",
            "perceiver.input_preprocessor.positions_projection",
        ),
        *_CLASSIFIER,
    ],
    "vision_perceiver_fourier": _CLASSIFIER,
    "vision_perceiver_conv": [
        _Rule(f"{_CONV_STEM}/conv/w", "perceiver.input_preprocessor.convnet.conv.weight", _conv_kernel),
        *_norm(f"{_CONV_STEM}/batchnorm", "perceiver.input_preprocessor.convnet.batchnorm", _squeeze),
        _Rule(
            f"{_CONV_STEM}/batchnorm/~/mean_ema/average",
            "perceiver.input_preprocessor.convnet.batchnorm.running_mean",
            _squeeze,
        ),
        _Rule(
            f"{_CONV_STEM}/batchnorm/~/var_ema/average",
            "perceiver.input_preprocessor.convnet.batchnorm.running_var",
            _squeeze,
        ),
        *_CLASSIFIER,
    ],
    "optical_flow_perceiver": [
        *_linear("image_preprocessor/patches_linear", "perceiver.input_preprocessor.conv_after_patches"),
        *_encoder("perceiver_encoder"),
        *_basic_decoder("flow_decoder"),
    ],
    "multimodal_perceiver": [
        *[
            _Rule(
                f"multimodal_preprocessor/{modality}_{kind}/pos_embs",
                f"perceiver.input_preprocessor.{name}.{modality}",
            )
            for modality in _MODALITIES
            for kind, name in (("padding", "padding"), ("mask_token", "mask"))
        ],
        *_encoder("encoder"),
        _Rule(
            _LABEL_QUERY,
            "perceiver.decoder.modalities.label.decoder.output_position_encodings.position_embeddings",
        ),
        *[
            _Rule(
                f"multimodal_decoder/~decoder_query/{modality}_padding/pos_embs",
                f"perceiver.decoder.padding.{modality}",
            )
            for modality in _MODALITIES
        ],
        *_basic_decoder("multimodal_decoder"),
        *[
            rule
            for haiku, modality in (
                ("projection_postprocessor", "image"),
                ("audio_postprocessor", "audio"),
                ("classification_postprocessor", "label"),
            )
            for rule in _linear(
                f"{haiku}/linear", f"perceiver.output_postprocessor.modalities.{modality}.classifier"
            )
        ],
    ],
}
# Haiku state that is not a weight: the EMA step counters and un-debiased accumulators of the BatchNorm
# statistics (`average` is the debiased statistic that inference uses).
_IGNORED = {
    "vision_perceiver_conv": re.compile(
        rf"{re.escape(_CONV_STEM)}/batchnorm/~/(mean|var)_ema/(counter|hidden)"
    )
}


def _rename(params, architecture):
    """{"scope/name": Haiku array} -> {transformers name: array in torch layout}."""
    rules, ignored = _RULES[architecture], _IGNORED.get(architecture)
    weights, unknown = {}, []
    for name, value in params.items():
        if ignored is not None and ignored.fullmatch(name):
            continue
        for rule in rules:
            theirs = rule.rename(name)
            if theirs is not None:
                weights[theirs] = rule.transform(value) if rule.transform else value
                break
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(
            f"{len(unknown)} Haiku parameters were not converted (architecture {architecture!r} does not use "
            f"them): {sorted(unknown)[:5]}"
        )
    return weights


def _source_namer(architecture):
    """transformers name -> Haiku "scope/name" (for error messages)."""
    rules = _RULES[architecture]

    def source_name(name):
        return next((haiku for haiku in (rule.source(name) for rule in rules) if haiku), name)

    return source_name


# ---------------------------------------------------------------------------------------------------------
# The transformers-style config: sizes from the parameter shapes, the rest from the published presets.

_SELF_ATTEND = re.compile(r"perceiver\.encoder\.self_attends\.(\d+)\.")


class _Shapes:
    def __init__(self, weights, source_name):
        self.weights, self.source_name = weights, source_name

    def __call__(self, name):
        if name not in self.weights:
            raise ValueError(
                f"The Haiku parameters have no {self.source_name(name)!r}, needed to infer the model's "
                "configuration"
            )
        return self.weights[name].shape


def _count_self_attends(weights):
    indices = {int(m.group(1)) for m in map(_SELF_ATTEND.match, weights) if m}
    if indices != set(range(len(indices))):
        raise ValueError(
            f"The Haiku self-attention scopes are not numbered 0..n-1. Received: {sorted(indices)}"
        )
    return len(indices)


def _shared_width(kind, cross, self_, cross_default, self_default):
    """The encoder's one `qk_channels`/`v_channels` setting that gives these cross/self-attention widths."""
    if cross == self_:
        return cross
    if (cross, self_) == (cross_default, self_default):
        return None
    raise ValueError(
        f"The encoder's cross-attention ({cross}) and self-attention ({self_}) {kind} widths differ and are "
        f"not the defaults ({cross_default}, {self_default}): keras_perceiver sets one width for both."
    )


def _encoder_config(shape, weights):
    num_latents, d_latents = shape("perceiver.embeddings.latents")
    cross, self_ = "perceiver.encoder.cross_attention.", "perceiver.encoder.self_attends.0."
    d_model = shape(f"{cross}attention.self.layernorm2.weight")[0]
    cross_qk = shape(f"{cross}attention.self.query.weight")[0]
    cross_v = shape(f"{cross}attention.self.value.weight")[0]
    self_qk = shape(f"{self_}attention.self.query.weight")[0]
    self_v = shape(f"{self_}attention.self.value.weight")[0]
    return {
        "model_type": "perceiver",
        "num_latents": num_latents,
        "d_latents": d_latents,
        "d_model": d_model,
        "num_self_attends_per_block": _count_self_attends(weights),
        # One setting for the encoder's cross- and self-attention, as in DeepMind's PerceiverEncoder;
        # None when both use their defaults (cross: the input width, self: the latent width; v = qk).
        "qk_channels": _shared_width("qk", cross_qk, self_qk, d_model, d_latents),
        "v_channels": _shared_width("v", cross_v, self_v, cross_qk, self_qk),
        "cross_attention_widening_factor": shape(f"{cross}mlp.dense1.weight")[0] // d_latents,
        "self_attention_widening_factor": shape(f"{self_}mlp.dense1.weight")[0] // d_latents,
    }


def _language_config(shape, settings):
    return {
        "architectures": ["PerceiverForMaskedLM"],
        "vocab_size": shape("perceiver.input_preprocessor.embeddings.weight")[0],
        "max_position_embeddings": shape("perceiver.input_preprocessor.position_embeddings.weight")[0],
    }


def _square_size(name, size):
    """An int or an (H, W) pair with H == W (transformers' image models are square) -> the int."""
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height != width:
        raise ValueError(
            f"Expected a square {name} (transformers' image models are square). Received: {size!r}"
        )
    return int(height)


def _image_config(architecture):
    def config(shape, settings):
        values = {
            "architectures": [architecture],
            "num_labels": shape("perceiver.decoder.decoder.final_layer.weight")[0],
        }
        if "image_size" in settings:
            values["image_size"] = _square_size("image_size", settings["image_size"])
        else:  # learned positions: one row per pixel of the (square) image
            positions = shape("perceiver.input_preprocessor.position_embeddings.position_embeddings")[0]
            values["image_size"] = math.isqrt(positions)
            if values["image_size"] ** 2 != positions:
                raise ValueError(
                    f"The learned image positions ({positions} rows) are not a square grid of pixels"
                )
        return values

    return config


def _flow_config(shape, settings):
    return {"architectures": ["PerceiverForOpticalFlow"], "train_size": list(settings["train_size"])}


def _multimodal_config(shape, settings):
    num_frames = settings["num_frames"]
    height, width = settings["image_size"]
    resolution = settings.get("video_max_resolution") or (num_frames, height // 4, width // 4)
    if len(resolution) != 3 or resolution[0] != num_frames or resolution[1] != resolution[2]:
        raise ValueError(
            "Expected video_max_resolution = (num_frames, R, R) (transformers' multimodal config has one "
            f"`image_size` R for both axes). Received: video_max_resolution={resolution!r}, "
            f"num_frames={num_frames}"
        )
    label_query = "perceiver.decoder.modalities.label.decoder.output_position_encodings.position_embeddings"
    postprocessor = "perceiver.output_postprocessor.modalities"
    return {
        "architectures": ["PerceiverForMultimodalAutoencoding"],
        "num_frames": num_frames,
        "output_shape": [1, num_frames, height, width],
        "image_size": resolution[1],
        "audio_samples_per_frame": settings["audio_samples_per_frame"],
        "samples_per_patch": shape(f"{postprocessor}.audio.classifier.weight")[0],
        "num_labels": shape(f"{postprocessor}.label.classifier.weight")[0],
        "output_num_channels": shape("perceiver.decoder.decoder.final_layer.weight")[0],
        "_label_trainable_num_channels": shape(label_query)[1],
    }


def _preset(presets, name, *keys):
    """Published settings of a task preset: its head's config over its backbone preset's config."""
    entry = presets[name]
    config = entry["config"]
    if "backbone" in entry:
        config = {**PERCEIVER_BACKBONE_PRESETS[entry["backbone"]]["config"], **config}
    return {key: config[key] for key in keys}


def _preprocessor_config(presets, name):
    """The config of the input preprocessor of a task preset's backbone preset."""
    backbone = PERCEIVER_BACKBONE_PRESETS[presets[name]["backbone"]]["config"]
    return backbone["input_preprocessor"]["config"]


def _multimodal_sizes(presets, name):
    """`num_frames`, `image_size`, `audio_samples_per_frame` of a multimodal preset's backbone inputs."""
    shapes = PERCEIVER_BACKBONE_PRESETS[presets[name]["backbone"]]["config"]["input_shape"]
    num_frames, height, width = shapes["video"][:3]
    return {
        "num_frames": num_frames,
        "image_size": (height, width),
        "audio_samples_per_frame": shapes["audio"][0] // num_frames,
    }


_PUBLISHED = ("num_blocks", "num_cross_attention_heads", "num_self_attention_heads")


def _vision(name, with_image_size=True):
    preset = _preset(PERCEIVER_IMAGE_CLASSIFIER_PRESETS, name, *_PUBLISHED, "input_shape")
    image_size = preset.pop("input_shape")[:2]
    return {**preset, "image_size": image_size} if with_image_size else preset


# architecture -> (config builder, published settings that the shapes do not tell: overridable)
_ARCHITECTURES = {
    "language_perceiver": (
        _language_config,
        _preset(PERCEIVER_MASKED_LM_PRESETS, "language_perceiver", *_PUBLISHED),
    ),
    "vision_perceiver_learned": (
        _image_config("PerceiverForImageClassificationLearned"),
        _vision("vision_perceiver_learned", with_image_size=False),
    ),
    "vision_perceiver_fourier": (
        _image_config("PerceiverForImageClassificationFourier"),
        _vision("vision_perceiver_fourier"),
    ),
    "vision_perceiver_conv": (
        _image_config("PerceiverForImageClassificationConvProcessing"),
        _vision("vision_perceiver_conv"),
    ),
    "optical_flow_perceiver": (
        _flow_config,
        {
            **_preset(PERCEIVER_OPTICAL_FLOW_PRESETS, "optical_flow_perceiver", *_PUBLISHED),
            "train_size": _preprocessor_config(PERCEIVER_OPTICAL_FLOW_PRESETS, "optical_flow_perceiver")[
                "train_size"
            ],
        },
    ),
    "multimodal_perceiver": (
        _multimodal_config,
        {
            **_preset(PERCEIVER_MULTIMODAL_AUTOENCODER_PRESETS, "multimodal_perceiver", *_PUBLISHED),
            **_multimodal_sizes(PERCEIVER_MULTIMODAL_AUTOENCODER_PRESETS, "multimodal_perceiver"),
            "video_max_resolution": None,
        },
    ),
}
# Constructor arguments of the built model that change no weight, with DeepMind's behaviour as default:
# the model is rebuilt with them after loading. DeepMind's conv stem pads SAME (56x56 at 224).
_MODEL_OPTIONS = {
    "vision_perceiver_conv": {"conv_padding": "deepmind"},
    "multimodal_perceiver": {"subsample_outputs": False},
}
_ACTIVATIONS = {"gelu": "gelu", "gelu_approximate": "gelu_new"}  # ours -> transformers' hidden_act


def _split_overrides(architecture, overrides):
    settings = dict(_ARCHITECTURES[architecture][1])
    options = dict(_MODEL_OPTIONS.get(architecture, {}))
    accepted = sorted({*settings, *options, "activation"})
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(
            f"Unsupported overrides {unknown} for architecture {architecture!r} (the sizes come from the "
            f"parameter shapes). Expected some of {accepted}"
        )
    activation = overrides.get("activation", "gelu_approximate")  # jax.nn.gelu's default: the tanh GELU
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"Expected activation in {sorted(_ACTIVATIONS)}. Received: activation={activation!r}"
        )
    settings.update({k: v for k, v in overrides.items() if k in settings})
    options.update({k: v for k, v in overrides.items() if k in options})
    return settings, options, _ACTIVATIONS[activation]


def _rebuild(model, options, dtype):
    """The same model with constructor `options` that change no weight, weights copied.

    An option is a head argument or an argument of the backbone's input
    preprocessor (e.g. the conv stem's `conv_padding`).
    """
    config = copy.deepcopy(model.get_config())
    preprocessors = config["backbone"]["config"]["input_preprocessor"]
    preprocessors = preprocessors if isinstance(preprocessors, list) else [preprocessors]
    targets = [config] + [layer["config"] for layer in preprocessors if isinstance(layer, dict)]
    changed = False
    for key, value in options.items():
        target = next(target for target in targets if key in target)
        changed = changed or target[key] != value
        target[key] = value
    if not changed:
        return model
    rebuilt = type(model).from_config(config)
    weights = {weight.path: weight for weight in model.weights}
    for weight in rebuilt.weights:
        weight.assign(weights[weight.path])
    return rebuilt


def from_deepmind(path, architecture="language_perceiver", allow_pickle=False, dtype=None, **overrides):
    """Build a keras_perceiver model from DeepMind's Haiku Perceiver IO parameters.

    Architectures (named after our presets; the DeepMind release file in
    parentheses):
    - `"language_perceiver"` (`language_perceiver_io_bytes.pickle`) ->
      `PerceiverMaskedLM` taking `{"token_ids": (B, L), "padding_mask":
      (B, L)}` and returning (B, L, vocab_size) logits. DeepMind's byte ids
      are ours (PAD 0 ... byte + 6) and it adds no [CLS]/[SEP].
    - `"vision_perceiver_learned"` (`imagenet_learned_position_encoding.pystate`),
      `"vision_perceiver_fourier"` (`imagenet_fourier_position_encoding.pystate`),
      `"vision_perceiver_conv"` (`imagenet_conv_preprocessing.pystate`, with
      the BatchNorm moving averages in its `"state"`) ->
      `PerceiverImageClassifier` taking `{"images": (B, H, W, 3)}` and
      returning (B, num_classes) logits. The conv stem pads as DeepMind's
      (SAME, 56x56 at 224); `conv_padding="transformers"` gives transformers'
      port (55x55).
    - `"optical_flow_perceiver"` (`optical_flow_checkpoint.pystate`) ->
      `PerceiverOpticalFlow` at `train_size`, taking `{"frames": (B, 2, H, W,
      3)}` and returning (B, H, W, 2) flow.
    - `"multimodal_perceiver"` (`video_autoencoding_checkpoint.pystate`) ->
      `PerceiverMultimodalAutoencoder` taking `{"video": (B, T, H, W, 3),
      "audio": (B, S), "label": (B, K)}` and returning the reconstructions
      `{"video", "audio", "label"}` (`subsample_outputs=True` to decode
      chosen points).

    The sizes (vocabulary, sequence length, widths, latents, number of
    self-attends, widening factors, qk/v channels, classes, label query
    width, decoder output channels, audio patch size, learned image size)
    are read from the parameter shapes. What the shapes cannot tell is the
    published model's value (our preset of the same name) and can be
    overridden: `num_blocks`, `num_cross_attention_heads`,
    `num_self_attention_heads`, `activation` (`"gelu_approximate"`,
    DeepMind's tanh GELU, or `"gelu"`); `image_size` for the Fourier and
    conv ImageNet models; `train_size` for optical flow; `num_frames`,
    `image_size`, `audio_samples_per_frame`, `video_max_resolution`
    (default (T, H/4, W/4)) for the multimodal model; and the options
    `conv_padding` and `subsample_outputs`.

    The parameters are renamed to transformers' names and loaded by the
    transformers converter (`from_transformers.from_state_dict`), so both
    converters share the weight loading.

    Security: DeepMind's files are Python pickles, which can execute
    arbitrary code when read. They are refused unless `allow_pickle=True`;
    set it only for files from a source you trust. A `.npz` archive with
    `"scope/name"` keys holds the same parameters and is read safely.

    Args:
        path: str, the Haiku parameter pickle (or `.npz`).
        architecture: str, one of `SUPPORTED_ARCHITECTURES`. Defaults to
            `"language_perceiver"`.
        allow_pickle: bool, read a pickle (unsafe for untrusted files).
            Defaults to False.
        dtype: dtype policy of the built model.
        **overrides: the settings listed above.

    Returns:
        The model with the converted weights.

    Raises:
        FileNotFoundError: for a missing file.
        ValueError: for a pickle without `allow_pickle=True`, an unknown
            architecture or override, parameters missing or of the wrong
            shape, or parameters left unconverted (all named by their Haiku
            scope).
        ImportError: for an old pickle that needs `haiku` to be read.

    Example:
    >>> from keras_perceiver.convert import from_deepmind
    >>> model = from_deepmind("language_perceiver_io_bytes.pickle", allow_pickle=True)  # doctest: +SKIP
    >>> model = from_deepmind(
    ...     "imagenet_conv_preprocessing.pystate", "vision_perceiver_conv", allow_pickle=True
    ... )  # doctest: +SKIP
    >>> logits = model({"images": images})  # (B, 1000)  # doctest: +SKIP
    """
    if architecture not in _ARCHITECTURES:
        raise ValueError(
            f"Unsupported DeepMind architecture {architecture!r}. "
            f"Expected one of {list(SUPPORTED_ARCHITECTURES)}"
        )
    settings, options, hidden_act = _split_overrides(architecture, overrides)
    weights = _rename(read_haiku_params(path, allow_pickle=allow_pickle), architecture)
    source_name = _source_namer(architecture)
    shape = _Shapes(weights, source_name)
    build_config = _ARCHITECTURES[architecture][0]
    config = {
        **_encoder_config(shape, weights),
        **build_config(shape, settings),
        **{key: settings[key] for key in _PUBLISHED},
        "hidden_act": hidden_act,
    }
    model = from_state_dict(config, weights, dtype=dtype, source_name=source_name)
    return _rebuild(model, options, dtype) if options else model
