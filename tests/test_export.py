"""Tests of `keras_perceiver.export`: SavedModel endpoints, named signatures, equal outputs after reload."""

import keras
import numpy as np
import pytest

from keras_perceiver.export import export_saved_model, load_saved_model, serving_input_signature
from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.perceiver_io import PerceiverIO
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor


def tiny_classifier():
    return PerceiverIO(
        input_shape=(4, 4, 1),
        num_latents=4,
        latent_dim=8,
        num_self_attends_per_block=1,
        num_cross_attention_heads=1,
        num_self_attention_heads=2,
        output_channels=3,
        preprocessor=ImagePreprocessor(num_bands=2),
        query_builder=TrainableQueries(num_queries=1, num_channels=8),
        postprocessor=ClassificationPostprocessor(),
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = tiny_classifier()
    path = tmp_path_factory.mktemp("export") / "saved_model"
    export_saved_model(model, path, output_name="logits")
    return model, path


def test_reloaded_outputs_equal_keras_outputs(exported):
    model, path = exported
    x = np.random.default_rng(0).uniform(size=(5, 4, 4, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(model({"inputs": x}))
    serving_default = load_saved_model(path)
    np.testing.assert_allclose(serving_default({"inputs": x})["logits"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(serving_default(x)["logits"].numpy(), expected, atol=1e-5)
    serve = load_saved_model(path, endpoint="serve")
    np.testing.assert_allclose(serve({"inputs": x}).numpy(), expected, atol=1e-5)


def test_signatures_are_named(exported):
    _, path = exported
    loaded = load_saved_model(path).saved_model
    assert set(loaded.signatures) == {"serve", "serving_default"}
    signature = loaded.signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert list(inputs) == ["inputs"]
    assert tuple(inputs["inputs"].shape) == (None, 4, 4, 1)
    assert list(signature.structured_outputs) == ["logits"]
    assert list(loaded.signatures["serve"].structured_input_signature[1]) == ["inputs"]


def test_optional_inputs_on_request(tmp_path):
    model = tiny_classifier()
    assert list(serving_input_signature(model)) == ["inputs"]
    specs = serving_input_signature(model, include_optional_inputs=True)
    assert {name: tuple(spec.shape) for name, spec in specs.items()} == {
        "inputs": (None, 4, 4, 1),
        "padding_mask": (None, 16),
    }
    export_saved_model(model, tmp_path / "with_mask", include_optional_inputs=True)
    reloaded = load_saved_model(tmp_path / "with_mask")
    x = np.random.default_rng(1).uniform(size=(2, 4, 4, 1)).astype("float32")
    mask = np.ones((2, 16), bool)
    mask[:, 8:] = False
    expected = model({"inputs": x, "padding_mask": mask})
    np.testing.assert_allclose(
        reloaded({"inputs": x, "padding_mask": mask})["outputs"].numpy(),
        keras.ops.convert_to_numpy(expected),
        atol=1e-5,
    )


def test_errors(exported, tmp_path):
    _, path = exported
    with pytest.raises(ValueError, match="no endpoint 'predict'"):
        load_saved_model(path, endpoint="predict")
    with pytest.raises(ValueError, match="must be built"):
        export_saved_model(keras.Sequential([keras.layers.Dense(2)]), tmp_path / "unbuilt")
