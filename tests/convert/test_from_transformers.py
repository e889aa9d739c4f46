"""Numerical parity with the reference implementation (transformers `modeling_perceiver.py`).

Random-weight transformers models in several configurations are saved with
`save_pretrained`, converted with `from_transformers`, and must agree with
torch to 1e-4 (float32) on their outputs.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import (
    PerceiverConfig,
    PerceiverForImageClassificationConvProcessing,
    PerceiverForImageClassificationFourier,
    PerceiverForImageClassificationLearned,
    PerceiverForMaskedLM,
    PerceiverForOpticalFlow,
    PerceiverForSequenceClassification,
    PerceiverModel,
)

from keras_perceiver.convert.from_transformers import from_transformers

TOLERANCE = 1e-4

BASE = dict(
    num_latents=8,
    d_latents=32,
    d_model=24,
    num_blocks=1,
    num_self_attends_per_block=2,
    num_self_attention_heads=4,
    num_cross_attention_heads=2,
    qk_channels=None,
    v_channels=None,
    cross_attention_widening_factor=1,
    self_attention_widening_factor=1,
    use_query_residual=True,
    vocab_size=262,
    max_position_embeddings=40,
)

CONFIGS = {
    "default_channels": {},
    "qk_v_channels": dict(qk_channels=16, v_channels=32),
    "heads_8_1": dict(num_self_attention_heads=8, num_cross_attention_heads=1),
    "widening_4_2": dict(cross_attention_widening_factor=4, self_attention_widening_factor=2),
    "num_blocks_3": dict(num_blocks=3, num_self_attends_per_block=2),
    "no_query_residual": dict(use_query_residual=False),
    "shape_for_attention_q": dict(cross_attention_shape_for_attention="q", num_cross_attention_heads=4),
    "gelu_tanh": dict(hidden_act="gelu_new"),
}


def _randomize(model, seed, kernel_scale=0.3):
    """Replace the reference's tiny initial weights by O(1) random values (a harder test)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            unit = "layernorm" in name or "latents" in name or "embeddings" in name
            scale = 1.0 if unit else kernel_scale
            param.copy_(torch.randn(param.shape, generator=generator) * scale)
            if "layernorm" in name and name.endswith("weight"):
                param.add_(1.0)
    return model.eval()


def _report(what, outputs, expected):
    """max |outputs - expected|, printed (`pytest -s` shows the measured parity)."""
    diff = float(np.abs(np.asarray(outputs) - np.asarray(expected)).max())
    print(f"[parity] {what}: max abs diff {diff:.1e} (max |expected| {np.abs(expected).max():.1f})")
    return diff


def _save(model, tmp_path):
    path = str(tmp_path / "checkpoint")
    model.save_pretrained(path)
    return path


def _padding_mask(batch, length, lengths):
    mask = np.zeros((batch, length), dtype=bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    return mask


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_perceiver_model_parity(name, tmp_path):
    config = PerceiverConfig(**{**BASE, **CONFIGS[name]})
    reference = _randomize(PerceiverModel(config), seed=len(name))
    model = from_transformers(_save(reference, tmp_path))

    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(3, 13, config.d_model)).astype("float32")
    mask = _padding_mask(3, 13, [13, 9, 1])
    with torch.no_grad():
        expected = reference(
            inputs=torch.from_numpy(inputs), attention_mask=torch.from_numpy(mask.astype("float32"))
        ).last_hidden_state.numpy()
    outputs = np.asarray(model({"inputs": inputs, "padding_mask": mask}))

    assert outputs.shape == (3, config.num_latents, config.d_latents)
    assert np.abs(expected).max() > 0.1  # a meaningful signal, not near-zero outputs
    assert np.abs(outputs - expected).max() <= TOLERANCE
    # Padding matters: the result differs from attending to every input.
    with torch.no_grad():
        unmasked = reference(inputs=torch.from_numpy(inputs)).last_hidden_state.numpy()
    assert np.abs(unmasked[1] - expected[1]).max() > 1e-3
    assert np.abs(np.asarray(model({"inputs": inputs})) - unmasked).max() <= TOLERANCE


@pytest.mark.parametrize("name", ["default_channels", "qk_v_channels", "num_blocks_3", "gelu_tanh"])
def test_masked_lm_parity(name, tmp_path):
    config = PerceiverConfig(**{**BASE, **CONFIGS[name]})
    reference = _randomize(PerceiverForMaskedLM(config), seed=7)
    model = from_transformers(_save(reference, tmp_path))

    rng = np.random.default_rng(1)
    length = config.max_position_embeddings
    token_ids = rng.integers(6, config.vocab_size, size=(2, length)).astype("int32")
    mask = _padding_mask(2, length, [length, 17])
    token_ids[~mask] = 0
    with torch.no_grad():
        expected = reference(
            inputs=torch.from_numpy(token_ids).long(),
            attention_mask=torch.from_numpy(mask.astype("float32")),
        ).logits.numpy()
    outputs = np.asarray(model({"token_ids": token_ids, "padding_mask": mask}))
    assert outputs.shape == (2, length, config.vocab_size)
    assert np.abs(expected).max() > 1.0
    assert np.abs(outputs - expected).max() <= TOLERANCE

    # Shorter inputs decode the first L queries: the same values as the reference's first L.
    short = {"token_ids": token_ids[:, :17], "padding_mask": mask[:, :17]}
    padded = np.zeros_like(token_ids)
    padded[:, :17] = token_ids[:, :17]
    with torch.no_grad():
        expected_short = reference(
            inputs=torch.from_numpy(padded).long(),
            attention_mask=torch.from_numpy(_padding_mask(2, length, [17, 17]).astype("float32")),
        ).logits.numpy()[:, :17]
    outputs_short = np.asarray(model(short))
    assert np.abs(outputs_short - expected_short).max() <= TOLERANCE


@pytest.mark.parametrize("name", ["default_channels", "qk_v_channels", "no_query_residual"])
def test_sequence_classification_parity(name, tmp_path):
    config = PerceiverConfig(**{**BASE, **CONFIGS[name]}, num_labels=3)
    reference = _randomize(PerceiverForSequenceClassification(config), seed=11)
    model = from_transformers(_save(reference, tmp_path))
    assert model.count_params() == sum(p.numel() for p in reference.parameters())

    rng = np.random.default_rng(3)
    token_ids = rng.integers(6, config.vocab_size, size=(3, 29)).astype("int32")
    mask = _padding_mask(3, 29, [29, 12, 3])
    with torch.no_grad():
        expected = reference(
            inputs=torch.from_numpy(token_ids).long(),
            attention_mask=torch.from_numpy(mask.astype("float32")),
        ).logits.numpy()
    outputs = np.asarray(model({"token_ids": token_ids, "padding_mask": mask}))
    assert outputs.shape == (3, 3)
    assert np.abs(expected).max() > 1.0
    assert _report(f"sequence classification {name}", outputs, expected) <= TOLERANCE
    if name == "default_channels":
        _assert_raw_text_parity(model, reference, config)


def _assert_raw_text_parity(model, reference, config):
    """The converted model's preprocessor = transformers' PerceiverTokenizer: raw strings, same logits."""
    from transformers import PerceiverTokenizer

    texts = ["Perceiver IO reads bytes.", "ça"]
    tokens = PerceiverTokenizer()(
        texts, padding="max_length", max_length=config.max_position_embeddings, return_tensors="pt"
    )
    with torch.no_grad():
        expected = reference(inputs=tokens["input_ids"], attention_mask=tokens["attention_mask"]).logits
    assert _report("raw text classification", model.predict(texts, verbose=0), expected.numpy()) <= TOLERANCE
    assert model.id2label == [reference.config.id2label[i] for i in range(3)]


IMAGE_CLASSIFIERS = {
    # class, d_model (the preprocessor's output width at image_size 16)
    "learned": (PerceiverForImageClassificationLearned, 512),
    "fourier": (PerceiverForImageClassificationFourier, 3 + 2 + 2 * 2 * 64),
    "conv": (PerceiverForImageClassificationConvProcessing, 64 + 2 + 2 * 2 * 64),
}


@pytest.mark.parametrize("name", sorted(IMAGE_CLASSIFIERS))
def test_image_classification_parity(name, tmp_path):
    cls, d_model = IMAGE_CLASSIFIERS[name]
    config = PerceiverConfig(
        **{**BASE, "d_model": d_model, "num_cross_attention_heads": 1}, image_size=16, num_labels=5
    )
    reference = _randomize(cls(config), seed=13)
    if name == "conv":
        _randomize_batchnorm_statistics(reference, seed=14)
    model = from_transformers(_save(reference, tmp_path))
    _assert_image_parity(model, reference, f"image classification {name}", seed=4)
    assert model.id2label == [reference.config.id2label[i] for i in range(5)]  # transformers' LABEL_i


@pytest.mark.parametrize("name", sorted(IMAGE_CLASSIFIERS))
def test_image_classification_parity_at_other_sizes(name, tmp_path):
    """Configured for 16x16, run on 24x20 and 8x12: Fourier/conv positions of the actual grid, a learned
    table resampled as transformers' `interpolate_pos_encoding`."""
    cls, d_model = IMAGE_CLASSIFIERS[name]
    config = PerceiverConfig(
        **{**BASE, "d_model": d_model, "num_cross_attention_heads": 1}, image_size=16, num_labels=5
    )
    reference = _randomize(cls(config), seed=15)
    if name == "conv":
        _randomize_batchnorm_statistics(reference, seed=16)
    model = from_transformers(_save(reference, tmp_path))
    for seed, (height, width) in enumerate([(24, 20), (8, 12)]):
        images = np.random.default_rng(seed).normal(size=(2, 3, height, width)).astype("float32")
        options = {"interpolate_pos_encoding": True} if name == "learned" else {}
        with torch.no_grad():
            expected = reference(inputs=torch.from_numpy(images), **options).logits.numpy()
        outputs = np.asarray(model({"images": images.transpose(0, 2, 3, 1)}))
        scale = np.abs(expected).max()
        assert scale > 1.0
        # float32 round-off relative to the logits' size (the 224-resolution Fourier bands amplify it)
        assert _report(f"image classification {name} at {height}x{width}", outputs, expected) <= 1e-5 * scale


def test_attention_maps_match_output_attentions(tmp_path):
    """`model.attention_maps` equals transformers' `output_attentions=True` (encoder, self, decoder)."""
    cls, d_model = IMAGE_CLASSIFIERS["fourier"]
    config = PerceiverConfig(
        **{**BASE, "d_model": d_model, "num_cross_attention_heads": 1}, image_size=16, num_labels=5
    )
    reference = _randomize(cls(config), seed=17)
    model = from_transformers(_save(reference, tmp_path))
    images = np.random.default_rng(5).normal(size=(2, 3, 16, 16)).astype("float32")
    with torch.no_grad():
        expected = reference(inputs=torch.from_numpy(images), output_attentions=True)
    outputs, maps = model.attention_maps({"images": images.transpose(0, 2, 3, 1)})
    np.testing.assert_allclose(np.asarray(outputs), expected.logits.numpy(), atol=TOLERANCE)
    for kind, ours, theirs in [
        ("cross", maps.cross_attentions(), expected.cross_attentions),
        ("self", maps.self_attentions(), expected.attentions),
    ]:
        assert [tuple(a.shape) for a in ours] == [tuple(a.shape) for a in theirs], kind
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(np.asarray(a), b.numpy(), atol=TOLERANCE)


def _randomize_batchnorm_statistics(reference, seed):
    """Random running statistics for the conv stem's BatchNorm (not only its affine weights)."""
    bn = reference.perceiver.input_preprocessor.convnet.batchnorm
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.normal_(generator=generator)
        bn.running_var.uniform_(0.5, 2.0, generator=generator)


def _assert_image_parity(model, reference, name, seed):
    """Converted image classifier vs transformers' on random 16x16 images; returns (images, expected)."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == sum(p.numel() for p in reference.parameters())
    images = np.random.default_rng(seed).normal(size=(2, 3, 16, 16)).astype("float32")
    with torch.no_grad():
        expected = reference(inputs=torch.from_numpy(images)).logits.numpy()
    outputs = np.asarray(model({"images": images.transpose(0, 2, 3, 1)}))
    assert outputs.shape == (2, 5)
    assert np.abs(expected).max() > 1.0
    assert _report(name, outputs, expected) <= TOLERANCE
    return images, expected


def _flow_patches(frames):
    """(B, 2, H, W, C) frames -> (B, 2, 9C, H, W) 3x3 patches, as the reference's flow colab extracts them."""
    x = torch.from_numpy(frames).permute(0, 1, 4, 2, 3)  # (B, T, C, H, W)
    b, t, c, h, w = x.shape
    x = torch.nn.functional.pad(x.reshape(b * t, c, h, w), (1, 1, 1, 1))
    patches = x.unfold(2, 3, 1).unfold(3, 3, 1)  # (BT, C, H, W, 3, 3)
    patches = patches.permute(0, 4, 5, 1, 2, 3).reshape(b, t, 9 * c, h, w)  # channels (dy, dx, c)
    return patches


def test_optical_flow_parity(tmp_path):
    config = PerceiverConfig(
        **{**BASE, "d_model": 64 + 2 + 4 * 64, "num_cross_attention_heads": 1}, train_size=[6, 10]
    )
    # 322-channel queries make attention over latents of magnitude ~100 very peaked with 0.3-scale
    # kernels (float32 round-off then reaches 1e-3): smaller kernels keep the test well conditioned.
    reference = _randomize(PerceiverForOpticalFlow(config), seed=17, kernel_scale=0.1)
    model = from_transformers(_save(reference, tmp_path))
    assert model.count_params() == sum(p.numel() for p in reference.parameters())

    _assert_flow_parity(model, reference, "optical flow (network output)", seed=5)


def _assert_flow_parity(model, reference, name, seed):
    """Converted flow model vs transformers' on random 6x10 frame pairs (network outputs, before / 100)."""
    frames = np.random.default_rng(seed).uniform(-1, 1, size=(2, 2, 6, 10, 3)).astype("float32")
    with torch.no_grad():
        expected = reference(inputs=_flow_patches(frames)).logits.numpy()
    outputs = np.asarray(model({"frames": frames}))
    assert outputs.shape == (2, 6, 10, 2)
    assert np.abs(expected).max() > 0.01
    # Flow is the network output / 100: compare the network outputs to 1e-4.
    assert _report(name, outputs * 100, expected * 100) <= TOLERANCE


def test_safetensors_conversion_does_not_need_torch(tmp_path):
    config = PerceiverConfig(**BASE)
    path = _save(_randomize(PerceiverModel(config), seed=3), tmp_path)
    script = (
        "import sys\n"
        "from keras_perceiver.convert.from_transformers import from_transformers\n"
        f"model = from_transformers({path!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print(model.count_params())\n"
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip().splitlines()[-1]) == sum(
        p.numel() for p in PerceiverModel(config).parameters()
    )


def test_pickle_needs_opt_in(tmp_path):
    config = PerceiverConfig(**BASE)
    reference = _randomize(PerceiverModel(config), seed=4)
    path = str(tmp_path / "pickled")
    reference.save_pretrained(path, safe_serialization=False) if _supports_pickle_save() else None
    if not os.path.exists(os.path.join(path, "pytorch_model.bin")):
        os.makedirs(path, exist_ok=True)
        torch.save(reference.state_dict(), os.path.join(path, "pytorch_model.bin"))
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config.to_dict() | {"architectures": ["PerceiverModel"]}, f)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        from_transformers(path)
    model = from_transformers(path, allow_pickle=True)
    inputs = np.random.default_rng(2).normal(size=(1, 5, config.d_model)).astype("float32")
    with torch.no_grad():
        expected = reference(inputs=torch.from_numpy(inputs)).last_hidden_state.numpy()
    assert np.abs(np.asarray(model({"inputs": inputs})) - expected).max() <= TOLERANCE


def _supports_pickle_save():
    import inspect

    return "safe_serialization" in inspect.signature(PerceiverModel.save_pretrained).parameters


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint directory"):
        from_transformers(str(tmp_path / "missing"))
    config = PerceiverConfig(**BASE)
    path = _save(_randomize(PerceiverModel(config), seed=5), tmp_path)
    with open(os.path.join(path, "config.json")) as f:
        data = json.load(f)
    data["architectures"] = ["PerceiverForSomethingElse"]
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(data, f)
    with pytest.raises(ValueError, match="PerceiverForSomethingElse"):
        from_transformers(path)
    data["architectures"] = ["PerceiverModel"]
    data["num_self_attends_per_block"] = 3  # config no longer matches the weights
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(data, f)
    with pytest.raises(ValueError, match="self_attends.2"):
        from_transformers(path)


def test_corrupt_files_are_named(tmp_path):
    path = _save(_randomize(PerceiverModel(PerceiverConfig(**BASE)), seed=6), tmp_path)
    config_path = os.path.join(path, "config.json")
    weights_path = os.path.join(path, "model.safetensors")
    with open(config_path, "rb") as f:
        config_bytes = f.read()
    for text, received in ((b"{not json", "bytes that do not parse"), (b"[1, 2]", "a JSON list")):
        with open(config_path, "wb") as f:
            f.write(text)
        with pytest.raises(ValueError, match=f"config.json.*expected a JSON object. Received: .*{received}"):
            from_transformers(path)
    with open(config_path, "wb") as f:
        f.write(config_bytes)
    with open(weights_path, "rb") as f:
        weights = f.read()
    for broken in (b"garbage" * 10, weights[: len(weights) // 2]):  # not safetensors; truncated
        with open(weights_path, "wb") as f:
            f.write(broken)
        with pytest.raises(
            ValueError, match=f"model.safetensors.*not a readable safetensors.*{len(broken)} bytes"
        ):
            from_transformers(path)
