"""Parity of the converted multimodal autoencoder with transformers' `PerceiverForMultimodalAutoencoding`.

A random-weight transformers model of a tiny configuration (2 frames of 8x8 in
4x4 patches, 64 audio samples in patches of 4, 5 labels) is saved with
`save_pretrained`, converted with `from_transformers`, and must agree with
torch to 1e-4 (float32) on every output: the full decode (transformers
decodes it only through `subsampled_output_points`, here all points), a
random subset of points, and our chunked `reconstruct`. The label input is
masked with probability 1 and video/audio with probability 0, so
transformers' `torch.bernoulli` masking is deterministic on both sides.
"""

import numpy as np
import pytest
import torch
from transformers import PerceiverConfig, PerceiverForMultimodalAutoencoding

from keras_perceiver.convert.from_transformers import from_transformers
from keras_perceiver.models.perceiver_multimodal_autoencoder import PerceiverMultimodalAutoencoder
from tests.convert.test_from_transformers import _randomize, _save

TOLERANCE = 1e-4
BATCH, FRAMES, SIZE, SAMPLES, PATCH, LABELS = 2, 2, 8, 64, 4, 5
NUM_PIXELS, NUM_PATCHES = FRAMES * SIZE * SIZE, SAMPLES // PATCH

CONFIG = dict(
    num_latents=8,
    d_latents=32,
    # inputs: audio 4 samples + 1 + 2 * 192 bands = 389 (the widest) + padding 4
    d_model=393,
    num_blocks=1,
    num_self_attends_per_block=2,
    num_self_attention_heads=4,
    num_cross_attention_heads=1,
    num_labels=LABELS,
    num_frames=FRAMES,
    image_size=4,  # Fourier max_resolution (2, 4, 4) of the (2, 2, 2) patch grid
    audio_samples_per_frame=SAMPLES // FRAMES,
    samples_per_patch=PATCH,
    output_shape=[1, FRAMES, SIZE, SIZE],
    output_num_channels=12,
)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    config = PerceiverConfig(**CONFIG)
    config._label_trainable_num_channels = 20
    # 387-channel queries (audio: 1 + 2 * 192 bands, + 2 padding) make the decoder attention peaked with
    # large kernels: 0.1-scale kernels keep the comparison well conditioned (as for optical flow).
    reference = _randomize(PerceiverForMultimodalAutoencoding(config), seed=21, kernel_scale=0.1)
    model = from_transformers(_save(reference, tmp_path_factory.mktemp("multimodal")))
    return reference, model


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    video = rng.uniform(-1, 1, size=(BATCH, FRAMES, SIZE, SIZE, 3)).astype("float32")
    audio = rng.uniform(-1, 1, size=(BATCH, SAMPLES)).astype("float32")
    label = np.eye(LABELS, dtype="float32")[rng.integers(0, LABELS, size=BATCH)]
    ours = {"video": video, "audio": audio, "label": label}
    theirs = {
        "image": torch.from_numpy(video.transpose(0, 1, 4, 2, 3).copy()),
        "audio": torch.from_numpy(audio[..., None]),
        "label": torch.from_numpy(label),
    }
    return ours, theirs


def _reference(reference, inputs, image_points, audio_points):
    points = {"image": torch.from_numpy(image_points), "audio": torch.from_numpy(audio_points), "label": None}
    with torch.no_grad():
        logits = reference(inputs=inputs, subsampled_output_points=points).logits
    names = (("image", "video"), ("audio", "audio"), ("label", "label"))
    return {ours: logits[theirs].numpy() for theirs, ours in names}


def _max_diffs(outputs, expected):
    return {k: float(np.abs(np.asarray(outputs[k]) - expected[k]).max()) for k in expected}


def test_parameter_count(converted):
    reference, model = converted
    assert model.count_params() == sum(p.numel() for p in reference.parameters())


def test_full_decode_parity(converted):
    reference, model = converted
    ours, theirs = _inputs()
    expected = _reference(
        reference, theirs, np.arange(NUM_PIXELS, dtype="int64"), np.arange(NUM_PATCHES, dtype="int64")
    )
    expected["video"] = expected["video"].reshape(BATCH, FRAMES, SIZE, SIZE, 3)
    outputs = model(ours)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "audio": (BATCH, SAMPLES),
        "label": (BATCH, LABELS),
        "video": (BATCH, FRAMES, SIZE, SIZE, 3),
    }
    diffs = _max_diffs(outputs, expected)
    magnitudes = {k: float(np.abs(v).max()) for k, v in expected.items()}
    print("full decode max |keras - torch|:", diffs, "max |torch|:", magnitudes)
    assert min(np.abs(v).max() for v in expected.values()) > 0.1
    assert max(diffs.values()) <= TOLERANCE
    # The chunked reconstruction equals the same reference (and so the one-shot decode).
    chunked = model.reconstruct(ours, chunk_size=37)
    diffs = _max_diffs(chunked, expected)
    print("chunked reconstruct max |keras - torch|:", diffs)
    assert max(diffs.values()) <= TOLERANCE


def test_subsampled_decode_parity(converted):
    reference, model = converted
    subsampled = PerceiverMultimodalAutoencoder.from_config({**model.get_config(), "subsample_outputs": True})
    weights = {w.path: w for w in model.weights}
    for w in subsampled.weights:
        w.assign(weights[w.path])
    ours, theirs = _inputs(seed=1)
    rng = np.random.default_rng(2)
    image_points = rng.choice(NUM_PIXELS, size=19, replace=False)
    audio_points = rng.choice(NUM_PATCHES, size=5, replace=False)
    expected = _reference(reference, theirs, image_points, audio_points)
    outputs = subsampled(
        {
            **ours,
            "video_indices": np.tile(image_points.astype("int32"), (BATCH, 1)),
            "audio_indices": np.tile(audio_points.astype("int32"), (BATCH, 1)),
        }
    )
    assert tuple(outputs["video"].shape) == (BATCH, 19, 3)
    assert tuple(outputs["audio"].shape) == (BATCH, 5 * PATCH)
    diffs = _max_diffs(outputs, expected)
    print("subsampled decode max |keras - torch|:", diffs)
    assert max(diffs.values()) <= TOLERANCE
