"""Files saved before the backbone/task-head split (version 1, flat task configs) load and compute the same.

The files in `tests/fixtures/legacy_v1/` were written by the code of that time
(`make_legacy_fixtures.py` there): for each task model a `.keras` file, a
`save_to_preset` directory and the outputs the model gave on fixed inputs.
"""

import os

import h5py
import keras
import numpy as np
import pytest

from keras_perceiver.models import PerceiverBackbone, PerceiverTaskModel

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "legacy_v1")
CASES = sorted(name for name in os.listdir(FIXTURES) if os.path.isdir(os.path.join(FIXTURES, name)))


def _io(name):
    data = np.load(os.path.join(FIXTURES, name, "io.npz"))
    inputs = {key.split("/", 1)[1]: data[key] for key in data.files if key.startswith("input/")}
    outputs = {key.split("/", 1)[1]: data[key] for key in data.files if key.startswith("output/")}
    return inputs, outputs


def _assert_same_outputs(model, name):
    inputs, expected = _io(name)
    outputs = model.predict(inputs, verbose=0)
    outputs = outputs if isinstance(outputs, dict) else {"output": outputs}
    assert sorted(outputs) == sorted(expected)
    for key, value in expected.items():
        assert np.ptp(value) > 1e-2, "the fixture's outputs must be large enough to show a difference"
        # float32 rounding on another CPU: the fixtures were written elsewhere; on an AMD EPYC the multimodal
        # autoencoder's video (|values| up to 3.4) differs by up to 3.3e-5, with or without this stop's
        # changes. A wrongly loaded weight moves outputs by far more than this bound, 5e-5 of the scale.
        scale = max(1.0, float(np.max(np.abs(value))))
        tolerance = 5e-5 * scale
        np.testing.assert_allclose(outputs[key], value, atol=tolerance, rtol=1e-5, err_msg=f"{name}: {key}")


def _weight_paths(path):
    paths = set()
    with h5py.File(path, "r") as f:
        f.visit(lambda p: paths.add(p) if isinstance(f[p], h5py.Dataset) else None)
    return paths


def test_every_task_model_has_a_fixture():
    classes = {type(keras.saving.load_model(os.path.join(FIXTURES, n, "model.keras"))) for n in CASES}
    names = {cls.__name__ for cls in classes}
    assert names == {
        "Perceiver",
        "PerceiverAudioClassifier",
        "PerceiverEntityEncoder",
        "PerceiverIO",
        "PerceiverImageClassifier",
        "PerceiverMaskedLM",
        "PerceiverMultimodalAutoencoder",
        "PerceiverOpticalFlow",
        "PerceiverTextClassifier",
    }


@pytest.mark.parametrize("name", CASES)
def test_keras_file_loads_as_a_head_on_a_backbone(name, tmp_path):
    model = keras.saving.load_model(os.path.join(FIXTURES, name, "model.keras"))
    assert isinstance(model, PerceiverTaskModel)
    assert isinstance(model.backbone, PerceiverBackbone)
    assert "backbone" in model.get_config()
    _assert_same_outputs(model, name)
    # Saved again, it is a current file with the same weight paths as the old one.
    model.save(tmp_path / "model.keras")
    _assert_same_outputs(keras.saving.load_model(tmp_path / "model.keras"), name)
    model.save_weights(tmp_path / "model.weights.h5")
    old = _weight_paths(os.path.join(FIXTURES, name, "preset", "model.weights.h5"))
    assert old <= _weight_paths(tmp_path / "model.weights.h5")


@pytest.mark.parametrize("name", CASES)
def test_preset_directory_loads(name):
    directory = os.path.join(FIXTURES, name, "preset")
    model = PerceiverTaskModel.from_preset(directory)
    _assert_same_outputs(model, name)
    assert type(model).from_preset(directory).count_params() == model.count_params()
    backbone = PerceiverBackbone.from_preset(directory)
    assert backbone is not model.backbone
    assert backbone.count_params() < model.count_params()


def test_old_argument_names_are_accepted():
    directory = os.path.join(FIXTURES, "perceiver_entity_encoder", "preset")
    model = PerceiverTaskModel.from_preset(directory)
    config = model.get_config()
    assert "decoder_num_heads" not in config and config["decoder_num_cross_attention_heads"] == 1
