"""The official HiP variants as presets, with the official code's parameter counts.

The counts are the official code's (github google-deepmind/hierarchical_perceiver, template `HiP`) for
`input_shapes={"image": (1024, 3), "label": (32, 1)}`, from an analytic counter that reproduces the counts
the official test asserts. They differ from those asserted counts (HiP-16 99,224,996, ...) because that
test runs one model on two mock data sets, whose modality-specific parameters add up. The official code
needs a JAX that does not coexist with this stack, so the counts are constants here.
"""

import numpy as np
import pytest

from keras_perceiver.models import HierarchicalPerceiver, HiPBackbone

INPUT_SHAPES = {"image": (1024, 3), "label": (32, 1)}
OFFICIAL_COUNTS = {
    "hip_mini": 18_702_916,
    "hip_16": 99_218_244,
    "hip_256": 95_581_796,
    "hip_16x3": 233_233_604,
}


def test_every_official_variant_is_a_preset():
    assert sorted(HierarchicalPerceiver.presets) == sorted(OFFICIAL_COUNTS)
    assert sorted(HiPBackbone.presets) == sorted(OFFICIAL_COUNTS)


@pytest.mark.parametrize(
    "preset",
    [pytest.param(name, marks=[] if name == "hip_mini" else [pytest.mark.slow]) for name in OFFICIAL_COUNTS],
)
def test_preset_parameter_counts_equal_the_official_code(preset):
    model = HierarchicalPerceiver.from_preset(preset, input_shapes=INPUT_SHAPES)
    assert model.count_params() == OFFICIAL_COUNTS[preset]
    assert isinstance(model.backbone, HiPBackbone)
    assert model.backbone.num_groups == HiPBackbone.presets[preset]["config"]["num_groups"]


def test_mini_preset_runs_and_overrides_reach_the_backbone():
    model = HierarchicalPerceiver.from_preset(
        "hip_mini",
        input_shapes={"points": (64, 3)},
        num_latents=(8, 16, 8),
        latent_dim=(32, 64, 32),
        num_self_attention_heads=(2, 2, 2),
        num_self_attends_per_block=(1, 1, 1),
        num_embedding_channels=8,
    )
    assert model.backbone.num_latents == (8, 16, 8)
    points = np.random.default_rng(0).normal(size=(2, 64, 3)).astype("float32")
    outputs = model({"points": points})
    assert tuple(outputs["input_reconstruction"]["points"].shape) == (2, 64, 3)


def test_unknown_preset_and_missing_input_shapes_raise():
    with pytest.raises(ValueError, match="Unknown preset 'hip_32'"):
        HierarchicalPerceiver.from_preset("hip_32", input_shapes=INPUT_SHAPES)
    with pytest.raises((TypeError, ValueError), match="input_shapes"):
        HierarchicalPerceiver.from_preset("hip_mini")


def test_class_bottleneck_and_classifier_presets():
    from keras_perceiver.models import HiPClassBottleneck, HiPClassifier

    bottleneck = HiPClassBottleneck.from_preset(
        "hip_mini", input_shapes=INPUT_SHAPES, label_modalities=("label",)
    )
    assert bottleneck.count_params() == 21_103_332  # the official code's count
    classifier = HiPClassifier.from_preset(
        "hip_mini",
        input_shapes={"points": (64, 3)},
        num_classes=5,
        num_latents=(8, 16, 8),
        latent_dim=(32, 64, 32),
        num_self_attention_heads=(2, 2, 2),
        num_self_attends_per_block=(1, 1, 1),
        num_embedding_channels=8,
    )
    points = np.random.default_rng(0).normal(size=(2, 64, 3)).astype("float32")
    assert tuple(classifier({"points": points}).shape) == (2, 5)
