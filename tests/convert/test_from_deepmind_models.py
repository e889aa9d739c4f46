"""Conversion of DeepMind's Haiku ImageNet, optical-flow and multimodal parameters, checked against torch.

Random-weight transformers models of small configurations (those of
test_from_transformers*.py) are written out under the Haiku scope names that
transformers' `convert_perceiver_haiku_to_pytorch.py` maps from (the inverse
renaming: `w` as (in, out), conv kernels as (kh, kw, in, out), BatchNorm as
(1, 1, 1, C) with its moving averages in the `"state"` of a
`{"params", "state"}` pickle), converted with `from_deepmind`, and must agree
with torch to 1e-4 (float32).
"""

import pickle

import numpy as np
import pytest
import torch
from transformers import PerceiverConfig, PerceiverForMultimodalAutoencoding, PerceiverForOpticalFlow

from keras_perceiver.convert.from_deepmind import from_deepmind
from tests.convert import test_from_transformers_multimodal as multimodal
from tests.convert.test_from_deepmind import (
    _CROSS_PARTS,
    encoder_prefixes,
    haiku_name,
    haiku_params,
    transpose,
)
from tests.convert.test_from_transformers import (
    BASE,
    IMAGE_CLASSIFIERS,
    _assert_flow_parity,
    _assert_image_parity,
    _randomize,
    _randomize_batchnorm_statistics,
    _report,
)

TOLERANCE = 1e-4
GELU = dict(hidden_act="gelu_new")  # DeepMind's tanh GELU, from_deepmind's default
HEADS = dict(num_blocks=1, num_self_attention_heads=4, num_cross_attention_heads=1)


def conv_kernel(value):
    """torch Conv2d (out, in, kh, kw) -> hk.Conv2D (kh, kw, in, out)."""
    return value.transpose(2, 3, 1, 0)


def batchnorm(value):
    """torch BatchNorm2d (C,) -> hk.BatchNorm (1, 1, 1, C)."""
    return value.reshape(1, 1, 1, -1)


def decoder_names(scope, prefix="perceiver.decoder.decoder"):
    """A Haiku BasicDecoder with an output layer: its final layer's names and its cross-attention prefix."""
    fixed = {
        f"{prefix}.final_layer.weight": (f"{scope}/~/basic_decoder/output/w", transpose),
        f"{prefix}.final_layer.bias": f"{scope}/~/basic_decoder/output/b",
    }
    escaped = prefix.replace(".", r"\.")
    return fixed, (
        rf"{escaped}\.decoding_cross_attention\.",
        f"{scope}/~/basic_decoder/cross_attention",
        _CROSS_PARTS,
    )


LABEL_QUERY = "classification_decoder/~/basic_decoder/~/trainable_position_encoding/pos_embs"
STEM = "image_preprocessor/~/conv2_d_downsample/~"
IMAGE_NAMES = {
    "learned": {
        "perceiver.input_preprocessor.convnet_1x1.weight": ("image_preprocessor/~/conv2_d/w", conv_kernel),
        "perceiver.input_preprocessor.convnet_1x1.bias": "image_preprocessor/~/conv2_d/b",
        "perceiver.input_preprocessor.position_embeddings.position_embeddings": (
            "image_preprocessor/~_build_network_inputs/trainable_position_encoding/pos_embs"
        ),
        "perceiver.input_preprocessor.positions_projection.weight": (
            "image_preprocessor/~_build_network_inputs/position_encoding_projector/linear/w",
            transpose,
        ),
        "perceiver.input_preprocessor.positions_projection.bias": (
            "image_preprocessor/~_build_network_inputs/position_encoding_projector/linear/b"
        ),
    },
    "fourier": {},
    "conv": {
        "perceiver.input_preprocessor.convnet.conv.weight": (f"{STEM}/conv/w", conv_kernel),
        "perceiver.input_preprocessor.convnet.batchnorm.weight": (f"{STEM}/batchnorm/scale", batchnorm),
        "perceiver.input_preprocessor.convnet.batchnorm.bias": (f"{STEM}/batchnorm/offset", batchnorm),
        "perceiver.input_preprocessor.convnet.batchnorm.running_mean": (
            f"{STEM}/batchnorm/~/mean_ema/average",
            batchnorm,
        ),
        "perceiver.input_preprocessor.convnet.batchnorm.running_var": (
            f"{STEM}/batchnorm/~/var_ema/average",
            batchnorm,
        ),
        "perceiver.input_preprocessor.convnet.batchnorm.num_batches_tracked": (None, None),
    },
}


def image_naming(kind):
    fixed, decoder = decoder_names("classification_decoder")
    fixed = {
        **fixed,
        **IMAGE_NAMES[kind],
        "perceiver.embeddings.latents": "perceiver_encoder/~/trainable_position_encoding/pos_embs",
        "perceiver.decoder.decoder.output_position_encodings.position_embeddings": LABEL_QUERY,
    }
    return lambda name: haiku_name(name, fixed, [*encoder_prefixes(), decoder])


def _split_state(params):
    """Haiku keeps the BatchNorm moving averages (and their EMA bookkeeping) in the state, not the params."""
    state = {scope: params.pop(scope) for scope in list(params) if "_ema" in scope}
    for scope in state:  # an EMA's step counter and un-debiased accumulator: not weights
        state[scope].update(counter=np.array(7, "int32"), hidden=np.zeros_like(state[scope]["average"]))
    return state


def _same_padding_stem(convnet):
    """transformers' conv stem with DeepMind's SAME padding (conv and max-pool), for the reference."""

    def same(x, kernel, stride, value):
        pads = []
        for size in reversed(x.shape[2:]):  # F.pad: last axis first
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return torch.nn.functional.pad(x, pads, value=value)

    def forward(x):
        x = torch.nn.functional.conv2d(same(x, 7, 2, 0.0), convnet.conv.weight, stride=2)
        x = torch.relu(convnet.batchnorm(x))
        return torch.nn.functional.max_pool2d(same(x, 3, 2, float("-inf")), 3, stride=2)

    return forward


@pytest.mark.parametrize("kind", sorted(IMAGE_CLASSIFIERS))
def test_image_classification_parity(kind, tmp_path):
    cls, d_model = IMAGE_CLASSIFIERS[kind]
    config = PerceiverConfig(
        **{**BASE, "d_model": d_model, "num_cross_attention_heads": 1}, image_size=16, num_labels=5, **GELU
    )
    # The learned model's 512-wide inputs with 0.3-scale kernels give logits whose float32 round-off reaches
    # 1e-4 (measured at seed 23: torch float32 4e-5 and ours 1.5e-4 from torch float64, with either GELU):
    # 0.2-scale kernels keep it well conditioned.
    reference = _randomize(cls(config), seed=23, kernel_scale=0.2 if kind == "learned" else 0.3)
    if kind == "conv":
        _randomize_batchnorm_statistics(reference, seed=24)
    params = haiku_params(reference, image_naming(kind))
    state = _split_state(params)
    path = str(tmp_path / f"imagenet_{kind}.pystate")
    with open(path, "wb") as f:
        pickle.dump({"params": params, "state": state}, f)
    assert bool(state) == (kind == "conv")

    architecture = f"vision_perceiver_{kind}"
    sizes = {} if kind == "learned" else {"image_size": 16}
    padding = {"conv_padding": "transformers"} if kind == "conv" else {}
    model = from_deepmind(path, architecture, allow_pickle=True, **HEADS, **sizes, **padding)
    assert model.get_config()["num_classes"] == 5
    assert model.backbone.get_config()["input_shape"] == (16, 16, 3)
    images, expected = _assert_image_parity(model, reference, f"vision_perceiver_{kind}", seed=6)

    if kind == "conv":
        # By default the stem pads as DeepMind's (SAME conv and max-pool: a 4x4 grid at 16, not 3x3).
        default = from_deepmind(path, architecture, allow_pickle=True, **HEADS, **sizes)
        assert default.get_layer("image_preprocessor").conv_padding == "deepmind"
        reference.perceiver.input_preprocessor.convnet.forward = _same_padding_stem(
            reference.perceiver.input_preprocessor.convnet
        )
        with torch.no_grad():
            expected_same = reference(inputs=torch.from_numpy(images)).logits.numpy()
        outputs_same = np.asarray(default({"images": images.transpose(0, 2, 3, 1)}))
        assert (
            _report("vision_perceiver_conv, DeepMind SAME padding", outputs_same, expected_same) <= TOLERANCE
        )
        assert np.abs(expected_same - expected).max() > 1e-2  # the padding matters


def flow_naming():
    fixed, decoder = decoder_names("flow_decoder")
    fixed = {
        **fixed,
        "perceiver.embeddings.latents": "perceiver_encoder/~/trainable_position_encoding/pos_embs",
        "perceiver.input_preprocessor.conv_after_patches.weight": (
            "image_preprocessor/patches_linear/w",
            transpose,
        ),
        "perceiver.input_preprocessor.conv_after_patches.bias": "image_preprocessor/patches_linear/b",
    }
    return lambda name: haiku_name(name, fixed, [*encoder_prefixes(), decoder])


def test_optical_flow_parity(tmp_path):
    config = PerceiverConfig(
        **{**BASE, "d_model": 64 + 2 + 4 * 64, "num_cross_attention_heads": 1}, train_size=[6, 10], **GELU
    )
    # Small kernels keep the 322-channel decoder attention well conditioned (as in test_from_transformers).
    reference = _randomize(PerceiverForOpticalFlow(config), seed=29, kernel_scale=0.1)
    path = str(tmp_path / "optical_flow_checkpoint.pystate")
    with open(path, "wb") as f:
        pickle.dump(haiku_params(reference, flow_naming()), f)
    model = from_deepmind(path, "optical_flow_perceiver", allow_pickle=True, train_size=(6, 10), **HEADS)
    assert model.count_params() == sum(p.numel() for p in reference.parameters())
    assert model.backbone.get_config()["num_self_attends_per_block"] == 2
    assert model.image_size == (6, 10)

    _assert_flow_parity(model, reference, "optical_flow_perceiver (network output)", seed=7)


MODALITIES = ("audio", "image", "label")


def multimodal_naming():
    fixed, decoder = decoder_names("multimodal_decoder")
    postprocessors = {"image": "projection_postprocessor", "audio": "audio_postprocessor"}
    postprocessors["label"] = "classification_postprocessor"
    fixed = {
        **fixed,
        "perceiver.embeddings.latents": "encoder/~/trainable_position_encoding/pos_embs",
        "perceiver.decoder.modalities.label.decoder.output_position_encodings.position_embeddings": (
            LABEL_QUERY
        ),
    }
    for modality in MODALITIES:
        fixed[f"perceiver.input_preprocessor.padding.{modality}"] = (
            f"multimodal_preprocessor/{modality}_padding/pos_embs"
        )
        fixed[f"perceiver.input_preprocessor.mask.{modality}"] = (
            f"multimodal_preprocessor/{modality}_mask_token/pos_embs"
        )
        fixed[f"perceiver.decoder.padding.{modality}"] = (
            f"multimodal_decoder/~decoder_query/{modality}_padding/pos_embs"
        )
        classifier = f"perceiver.output_postprocessor.modalities.{modality}.classifier"
        fixed[f"{classifier}.weight"] = (f"{postprocessors[modality]}/linear/w", transpose)
        fixed[f"{classifier}.bias"] = f"{postprocessors[modality]}/linear/b"
    return lambda name: haiku_name(name, fixed, [*encoder_prefixes("encoder"), decoder])


def test_multimodal_parity_from_npz(tmp_path):
    config = PerceiverConfig(**multimodal.CONFIG, **GELU)
    config._label_trainable_num_channels = 20
    reference = _randomize(PerceiverForMultimodalAutoencoding(config), seed=31, kernel_scale=0.1)
    params = haiku_params(reference, multimodal_naming())
    path = str(tmp_path / "video_autoencoding_checkpoint.npz")  # the safe format: no pickle involved
    np.savez(path, **{f"{scope}/{k}": v for scope, values in params.items() for k, v in values.items()})
    sizes = dict(
        num_frames=multimodal.FRAMES,
        image_size=(multimodal.SIZE, multimodal.SIZE),
        audio_samples_per_frame=multimodal.SAMPLES // multimodal.FRAMES,
        video_max_resolution=(multimodal.FRAMES, 4, 4),  # as transformers' image_size=4 in CONFIG
    )
    model = from_deepmind(path, "multimodal_perceiver", **sizes, **HEADS)
    assert model.count_params() == sum(p.numel() for p in reference.parameters())
    model_config = model.get_config()
    assert (model.num_classes, model.samples_per_patch) == (multimodal.LABELS, multimodal.PATCH)
    assert (model_config["label_query_channels"], model_config["decoder_output_channels"]) == (20, 12)

    ours, theirs = multimodal._inputs(seed=3)
    pixels, patches = np.arange(multimodal.NUM_PIXELS), np.arange(multimodal.NUM_PATCHES)
    expected = multimodal._reference(reference, theirs, pixels, patches)
    expected["video"] = expected["video"].reshape(ours["video"].shape)
    outputs = model(ours)
    diffs = {k: _report(f"multimodal_perceiver {k}", outputs[k], expected[k]) for k in expected}
    assert min(np.abs(v).max() for v in expected.values()) > 0.1
    assert max(diffs.values()) <= TOLERANCE

    # Subsampled decoding: same weights, chosen points.
    subsampled = from_deepmind(path, "multimodal_perceiver", subsample_outputs=True, **sizes, **HEADS)
    rng = np.random.default_rng(4)
    image_points = rng.choice(multimodal.NUM_PIXELS, size=11, replace=False)
    audio_points = rng.choice(multimodal.NUM_PATCHES, size=3, replace=False)
    expected = multimodal._reference(reference, theirs, image_points, audio_points)
    batch = multimodal.BATCH
    outputs = subsampled(
        {
            **ours,
            "video_indices": np.tile(image_points.astype("int32"), (batch, 1)),
            "audio_indices": np.tile(audio_points.astype("int32"), (batch, 1)),
        }
    )
    assert tuple(outputs["video"].shape) == (batch, 11, 3)
    diffs = {k: _report(f"multimodal_perceiver subsampled {k}", outputs[k], expected[k]) for k in expected}
    assert max(diffs.values()) <= TOLERANCE


def test_errors_name_haiku_parameters(tmp_path):
    config = PerceiverConfig(
        **{**BASE, "d_model": IMAGE_CLASSIFIERS["fourier"][1], "num_cross_attention_heads": 1},
        image_size=16,
        num_labels=5,
    )
    reference = _randomize(IMAGE_CLASSIFIERS["fourier"][0](config), seed=2)
    params = haiku_params(reference, image_naming("fourier"))
    path = str(tmp_path / "imagenet_fourier.pystate")
    with open(path, "wb") as f:
        pickle.dump(params, f)
    fourier = dict(allow_pickle=True, image_size=16, **HEADS)
    with pytest.raises(ValueError, match=r"arbitrary code"):
        from_deepmind(path, "vision_perceiver_fourier")
    with pytest.raises(ValueError, match=r"Unsupported overrides \['latent_dim'\].*'num_blocks'"):
        from_deepmind(path, "vision_perceiver_fourier", latent_dim=16, **fourier)
    with pytest.raises(ValueError, match="Expected a square image_size.*Received: \\(16, 12\\)"):
        from_deepmind(path, "vision_perceiver_fourier", **{**fourier, "image_size": (16, 12)})
    # The learned-position model's parameters that the Fourier model does not have are named.
    with pytest.raises(
        ValueError, match="2 Haiku parameters were not converted.*image_preprocessor/~/conv2_d/b"
    ):
        with open(path, "wb") as f:
            pickle.dump(
                {**params, "image_preprocessor/~/conv2_d": {"w": np.ones((1, 1, 3, 4)), "b": np.ones(4)}}, f
            )
        from_deepmind(path, "vision_perceiver_fourier", **fourier)
    # A missing parameter is named by its Haiku scope (and its transformers name).
    missing = {k: v for k, v in params.items() if k != "classification_decoder/~/basic_decoder/output"}
    with open(path, "wb") as f:
        pickle.dump(missing, f)
    with pytest.raises(ValueError, match="no 'classification_decoder/~/basic_decoder/output/w'"):
        from_deepmind(path, "vision_perceiver_fourier", **fourier)
    missing = {
        k: v
        for k, v in params.items()
        if k != "classification_decoder/~/basic_decoder/cross_attention/mlp/linear_1"
    }
    with open(path, "wb") as f:
        pickle.dump(missing, f)
    with pytest.raises(
        ValueError,
        match=r"no 'classification_decoder/~/basic_decoder/cross_attention/mlp/linear_1/w' \(transformers "
        r"name 'perceiver\.decoder\.decoder\.decoding_cross_attention\.mlp\.dense2\.weight'\)",
    ):
        from_deepmind(path, "vision_perceiver_fourier", **fourier)
    # Parameters of another architecture: named, not a TF error.
    with open(path, "wb") as f:
        pickle.dump(params, f)
    with pytest.raises(ValueError, match="Haiku parameters were not converted.*classification_decoder"):
        from_deepmind(path, "optical_flow_perceiver", allow_pickle=True)
