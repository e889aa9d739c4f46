"""Conversion of DeepMind's Haiku parameters, checked against the transformers reference in torch.

A random-weight transformers `PerceiverForMaskedLM` is written out as a Haiku
parameter pickle (nested dicts of numpy arrays, `w` as (in, out)) under the
scope names that transformers' `convert_perceiver_haiku_to_pytorch.py` maps
from, converted with `from_deepmind`, and must agree with torch to 1e-4.
"""

import os
import pickle
import re

import numpy as np
import pytest
import torch
from transformers import PerceiverConfig, PerceiverForMaskedLM

from keras_perceiver.convert.from_deepmind import from_deepmind, read_haiku_params

TOLERANCE = 1e-4
BASE = dict(
    num_latents=8,
    d_latents=32,
    d_model=24,
    num_blocks=1,
    num_self_attends_per_block=2,
    num_self_attention_heads=4,
    num_cross_attention_heads=2,
    vocab_size=262,
    max_position_embeddings=40,
    hidden_act="gelu_new",  # DeepMind's tanh GELU
)
HEADS = dict(num_cross_attention_heads=2, num_self_attention_heads=4)

# transformers name -> Haiku scope/name: the inverse of transformers' rename_keys for the MLM model.
_CROSS_PARTS = [
    (r"attention\.self\.layernorm1\.(weight|bias)", "layer_norm/{ln}"),
    (r"attention\.self\.layernorm2\.(weight|bias)", "layer_norm_1/{ln}"),
    (r"layernorm\.(weight|bias)", "layer_norm_2/{ln}"),
]
_SELF_PARTS = [
    (r"attention\.self\.layernorm1\.(weight|bias)", "layer_norm/{ln}"),
    (r"layernorm\.(weight|bias)", "layer_norm_1/{ln}"),
]
_COMMON_PARTS = [
    (r"attention\.self\.query\.(weight|bias)", "attention/linear/{lin}"),
    (r"attention\.self\.key\.(weight|bias)", "attention/linear_1/{lin}"),
    (r"attention\.self\.value\.(weight|bias)", "attention/linear_2/{lin}"),
    (r"attention\.output\.dense\.(weight|bias)", "attention/linear_3/{lin}"),
    (r"mlp\.dense1\.(weight|bias)", "mlp/linear/{lin}"),
    (r"mlp\.dense2\.(weight|bias)", "mlp/linear_1/{lin}"),
]


def transpose(value):
    """torch Linear (out, in) -> hk.Linear (in, out)."""
    return value.T


# The masked LM's names outside the attention blocks, and its attention blocks: (transformers prefix regex,
# Haiku scope ("{sa}" = self_attention, self_attention_1, ... by the prefix's index), parts).
MLM_FIXED = {
    "perceiver.input_preprocessor.embeddings.weight": "embed/embeddings",
    "perceiver.input_preprocessor.position_embeddings.weight": "trainable_position_encoding/pos_embs",
    "perceiver.embeddings.latents": "perceiver_encoder/~/trainable_position_encoding/pos_embs",
    "perceiver.decoder.output_position_encodings.position_embeddings": (
        "basic_decoder/~/trainable_position_encoding/pos_embs"
    ),
    "embedding_decoder.bias": "embedding_decoder/bias",
}


def encoder_prefixes(scope="perceiver_encoder"):
    return [
        (r"perceiver\.encoder\.cross_attention\.", f"{scope}/~/cross_attention", _CROSS_PARTS),
        (r"perceiver\.encoder\.self_attends\.(\d+)\.", f"{scope}/~/{{sa}}", _SELF_PARTS),
    ]


MLM_PREFIXES = [
    *encoder_prefixes(),
    (r"perceiver\.decoder\.decoding_cross_attention\.", "basic_decoder/cross_attention", _CROSS_PARTS),
]


def haiku_name(name, fixed=None, prefixes=None):
    """A transformers parameter name -> (Haiku "scope/name", transform of the torch value or None).

    `fixed` values are a Haiku name or (name, transform); a None name drops the parameter.
    """
    fixed = MLM_FIXED if fixed is None else fixed
    if name in fixed:
        return fixed[name] if isinstance(fixed[name], tuple) else (fixed[name], None)
    for prefix, scope, parts in MLM_PREFIXES if prefixes is None else prefixes:
        match = re.match(prefix, name)
        if not match:
            continue
        if "{sa}" in scope:
            index = int(match.group(1))
            scope = scope.replace("{sa}", "self_attention" + (f"_{index}" if index else ""))
        rest = name[match.end() :]
        for pattern, target in parts + _COMMON_PARTS:
            part = re.fullmatch(pattern, rest)
            if part:
                kind = part.group(1)
                suffix = target.format(
                    ln={"weight": "scale", "bias": "offset"}[kind], lin={"weight": "w", "bias": "b"}[kind]
                )
                return f"{scope}/{suffix}", transpose if kind == "weight" and "{lin}" in target else None
    raise AssertionError(f"no Haiku name for {name}")


def haiku_params(reference, naming=haiku_name):
    """The torch model's state as Haiku {scope: {name: array}}."""
    params = {}
    for name, tensor in reference.state_dict().items():
        flat, transform = naming(name)
        if flat is None:
            continue
        value = tensor.numpy()
        scope, param = flat.rsplit("/", 1)
        params.setdefault(scope, {})[param] = np.array(transform(value) if transform else value)
    return params


def write_haiku_pickle(reference, path, wrap=False):
    """The torch model's weights as a Haiku parameter pickle: {scope: {name: array}}."""
    params = haiku_params(reference)
    with open(path, "wb") as f:
        pickle.dump({"params": params, "state": {}} if wrap else params, f)
    return params


def _randomize(model, seed, kernel_scale=0.3):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            unit = "layernorm" in name or "latents" in name or "embeddings" in name
            param.copy_(torch.randn(param.shape, generator=generator) * (1.0 if unit else kernel_scale))
            if "layernorm" in name and name.endswith("weight"):
                param.add_(1.0)
    return model.eval()


def _inputs(config, lengths=(40, 17)):
    rng = np.random.default_rng(1)
    length = config.max_position_embeddings
    token_ids = rng.integers(6, config.vocab_size, size=(len(lengths), length)).astype("int32")
    mask = np.arange(length)[None, :] < np.array(lengths)[:, None]
    token_ids[~mask] = 0
    return token_ids, mask


def _reference_logits(reference, token_ids, mask):
    with torch.no_grad():
        return reference(
            inputs=torch.from_numpy(token_ids).long(), attention_mask=torch.from_numpy(mask.astype("float32"))
        ).logits.numpy()


@pytest.mark.parametrize(
    "name, overrides",
    [("default_channels", {}), ("qk_v_channels", dict(qk_channels=16, v_channels=32, num_blocks=2))],
)
def test_language_perceiver_parity(name, overrides, tmp_path):
    config = PerceiverConfig(**{**BASE, **overrides})
    reference = _randomize(PerceiverForMaskedLM(config), seed=11)
    path = str(tmp_path / "language_perceiver.pickle")
    params = write_haiku_pickle(reference, path, wrap=name == "qk_v_channels")
    assert "perceiver_encoder/~/self_attention_1/attention/linear_3" in params
    assert "basic_decoder/cross_attention/mlp/linear_1" in params

    model = from_deepmind(path, allow_pickle=True, num_blocks=config.num_blocks, **HEADS)
    backbone_config = model.backbone.get_config()
    text_config = model.get_layer("text_preprocessor").get_config()
    assert backbone_config["num_self_attends_per_block"] == 2
    assert text_config["max_sequence_length"] == 40 and text_config["embedding_dim"] == 24
    assert backbone_config["activation"] == "gelu_approximate"

    token_ids, mask = _inputs(config)
    expected = _reference_logits(reference, token_ids, mask)
    outputs = np.asarray(model({"token_ids": token_ids, "padding_mask": mask}))
    max_diff = float(np.abs(outputs - expected).max())
    scale = float(np.abs(expected).max())
    print(f"from_deepmind {name}: max |keras - torch| = {max_diff:.2e} (logits up to {scale:.1f})")
    assert np.abs(expected).max() > 1.0
    assert max_diff <= TOLERANCE
    # Exact GELU instead of DeepMind's tanh approximation changes the outputs: the default matters.
    exact = from_deepmind(path, allow_pickle=True, num_blocks=config.num_blocks, activation="gelu", **HEADS)
    exact_outputs = np.asarray(exact({"token_ids": token_ids, "padding_mask": mask}))
    assert np.abs(exact_outputs - expected).max() > 10 * max_diff


def test_pickles_need_opt_in_and_npz_is_safe(tmp_path):
    config = PerceiverConfig(**BASE)
    reference = _randomize(PerceiverForMaskedLM(config), seed=3)
    path = str(tmp_path / "params.pickle")
    params = write_haiku_pickle(reference, path)
    with pytest.raises(ValueError, match=r"arbitrary code.*allow_pickle=True"):
        from_deepmind(path)
    npz = str(tmp_path / "params.npz")
    np.savez(npz, **{f"{scope}/{k}": v for scope, values in params.items() for k, v in values.items()})
    model = from_deepmind(npz, **HEADS)  # no pickle involved
    token_ids, mask = _inputs(config)
    expected = _reference_logits(reference, token_ids, mask)
    outputs = np.asarray(model({"token_ids": token_ids, "padding_mask": mask}))
    assert np.abs(outputs - expected).max() <= TOLERANCE
    assert read_haiku_params(npz).keys() == read_haiku_params(path, allow_pickle=True).keys()


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="Haiku parameter file"):
        from_deepmind(str(tmp_path / "missing.pickle"), allow_pickle=True)
    config = PerceiverConfig(**BASE)
    path = str(tmp_path / "params.pickle")
    params = write_haiku_pickle(_randomize(PerceiverForMaskedLM(config), seed=5), path)
    with pytest.raises(ValueError, match="Unsupported DeepMind architecture 'vision'"):
        from_deepmind(path, architecture="vision", allow_pickle=True)

    extra = {**params, "some_other_module/linear": {"w": np.zeros((2, 2), "float32")}}
    with open(path, "wb") as f:
        pickle.dump(extra, f)
    with pytest.raises(ValueError, match="1 Haiku parameters were not converted.*some_other_module/linear/w"):
        from_deepmind(path, allow_pickle=True, **HEADS)

    missing = {k: v for k, v in params.items() if k != "perceiver_encoder/~/self_attention_1/mlp/linear_1"}
    with open(path, "wb") as f:
        pickle.dump(missing, f)
    with pytest.raises(ValueError, match="no 'perceiver_encoder/~/self_attention_1/mlp/linear_1/w'"):
        from_deepmind(path, allow_pickle=True, **HEADS)

    with open(path, "wb") as f:
        pickle.dump(params, f)
    with pytest.raises(ValueError, match="qk_channels=24, num_heads=5"):
        from_deepmind(path, allow_pickle=True, num_cross_attention_heads=5, num_self_attention_heads=4)

    with open(path, "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(ValueError, match="expected a mapping.*Received: list"):
        from_deepmind(path, allow_pickle=True)
    assert not os.path.exists(str(tmp_path / "missing.pickle"))
