"""`export_to_transformers`: a converted (then changed) model written back as a transformers checkpoint that
transformers loads with the Keras model's outputs."""

import os

import numpy as np
import pytest
import torch
from transformers import (
    PerceiverConfig,
    PerceiverForImageClassificationConvProcessing,
    PerceiverForMaskedLM,
    PerceiverForOpticalFlow,
    PerceiverForSequenceClassification,
)

from keras_perceiver.convert import export_to_transformers, from_transformers
from tests.convert.test_from_transformers import BASE

ARCHITECTURES = {
    "masked_lm": (PerceiverForMaskedLM, {}),
    "sequence_classification": (PerceiverForSequenceClassification, {"num_labels": 3}),
    "image_conv": (PerceiverForImageClassificationConvProcessing, {"image_size": 32, "d_model": 322}),
    "optical_flow": (PerceiverForOpticalFlow, {"train_size": [8, 12], "d_model": 322}),
}


def converted(tmp_path, name):
    """A checkpoint of `name`, converted, with every weight moved (as training would): (model, dir, class)."""
    model_class, extra = ARCHITECTURES[name]
    torch.manual_seed(0)
    checkpoint = os.path.join(tmp_path, "checkpoint")
    model_class(PerceiverConfig(**{**BASE, **extra})).save_pretrained(checkpoint)
    model = from_transformers(checkpoint)
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(scale=0.1, size=w.shape).astype(w.dtype) for w in model.get_weights()])
    return model, checkpoint, model_class


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_weights_round_trip_exactly(name, tmp_path):
    model, checkpoint, _ = converted(tmp_path, name)
    path = export_to_transformers(model, os.path.join(tmp_path, "exported"), checkpoint)
    back = from_transformers(path)
    for ours, theirs in zip(model.weights, back.weights):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=ours.path)


def test_transformers_loads_the_masked_lm_with_the_keras_outputs(tmp_path):
    model, checkpoint, model_class = converted(tmp_path, "masked_lm")
    path = export_to_transformers(model, os.path.join(tmp_path, "exported"), checkpoint)
    reference = model_class.from_pretrained(path).eval()
    token_ids = (
        np.random.default_rng(1).integers(6, 262, size=(2, BASE["max_position_embeddings"])).astype("int32")
    )
    mask = np.ones_like(token_ids, bool)
    mask[1, 25:] = False
    with torch.no_grad():
        expected = reference(
            inputs=torch.from_numpy(token_ids).long(), attention_mask=torch.from_numpy(mask.astype("float32"))
        ).logits.numpy()
    outputs = np.asarray(model({"token_ids": token_ids, "padding_mask": mask}))
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(outputs, expected, atol=1e-4)
    # The changed weights were written, not the checkpoint's: its outputs differ.
    original = model_class.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        before = original(inputs=torch.from_numpy(token_ids).long()).logits.numpy()
    assert np.abs(before - expected).max() > 1e-2


def test_transformers_loads_the_conv_image_classifier_with_the_keras_outputs(tmp_path):
    model, checkpoint, model_class = converted(tmp_path, "image_conv")
    path = export_to_transformers(model, os.path.join(tmp_path, "exported"), checkpoint)
    reference = model_class.from_pretrained(path).eval()
    images = np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype("float32")
    with torch.no_grad():
        expected = reference(inputs=torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).logits.numpy()
    np.testing.assert_allclose(np.asarray(model({"images": images})), expected, atol=1e-4)


def test_a_model_of_another_architecture_is_refused(tmp_path):
    model, _, _ = converted(tmp_path, "masked_lm")
    other = os.path.join(tmp_path, "other")
    PerceiverForSequenceClassification(PerceiverConfig(**{**BASE, "num_labels": 3})).save_pretrained(other)
    with pytest.raises(ValueError, match="does not have the weights of PerceiverForSequenceClassification"):
        export_to_transformers(model, os.path.join(tmp_path, "exported"), other)
    with pytest.raises(TypeError, match="`config` must be"):
        export_to_transformers(model, os.path.join(tmp_path, "exported"), 3)
