"""Tests of `save_to_preset` / `from_preset(directory)` on the task models."""

import json
import os
from unittest import mock

import keras
import numpy as np

import keras_perceiver
from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.perceiver_io import PerceiverIO
from keras_perceiver.models.perceiver_optical_flow import PerceiverOpticalFlow
from keras_perceiver.models.task_model import PerceiverTaskModel
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from tests.test_case import TestCase

# A small flow model in the flat form (`PerceiverOpticalFlow.from_hyperparameters`).
FLOW = dict(
    image_size=(6, 8),
    train_size=(6, 8),
    num_bands=3,
    output_channels=8,
    num_latents=6,
    latent_dim=16,
    num_self_attends_per_block=1,
    num_self_attention_heads=2,
    initializer_range=0.2,
)


def flow_model():
    return PerceiverOpticalFlow.from_hyperparameters(**FLOW)


def flow_inputs():
    return {"frames": np.random.default_rng(0).uniform(-1, 1, size=(2, 2, 6, 8, 3)).astype("float32")}


def io_model():
    """A PerceiverIO with layer-valued arguments (query builder, postprocessor) and a padding mask."""
    return PerceiverIO.from_hyperparameters(
        input_shape=(10, 5),
        num_latents=4,
        latent_dim=8,
        num_self_attends_per_block=1,
        num_cross_attention_heads=1,
        num_self_attention_heads=2,
        output_channels=3,
        query_builder=TrainableQueries(1, 8, name="queries"),
        postprocessor=ClassificationPostprocessor(name="logits"),
        initializer_range=0.2,
    )


def io_inputs():
    rng = np.random.default_rng(1)
    mask = np.ones((3, 10), bool)
    mask[1, 6:] = False
    return {"inputs": rng.normal(size=(3, 10, 5)).astype("float32"), "padding_mask": mask}


def siblings(path):
    """Entries of the parent directory of `path` (to find leftover partial directories)."""
    return sorted(os.listdir(os.path.dirname(path)))


class SaveToPresetTest(TestCase):
    def test_round_trip_of_two_task_models(self):
        for build, make_inputs in ((flow_model, flow_inputs), (io_model, io_inputs)):
            model = build()
            inputs = make_inputs()
            expected = np.asarray(model(inputs))
            directory = os.path.join(self.make_temp_dir(), "preset")
            model.save_to_preset(directory)
            self.assertEqual(
                sorted(os.listdir(directory)), ["config.json", "metadata.json", "model.weights.h5"]
            )
            with open(os.path.join(directory, "metadata.json")) as f:
                metadata = json.load(f)
            self.assertEqual(metadata["keras_perceiver_version"], keras_perceiver.__version__)
            self.assertEqual(metadata["keras_version"], keras.__version__)
            self.assertEqual(metadata["parameter_count"], model.count_params())
            self.assertEqual(metadata["class_name"], f"keras_perceiver>{type(model).__name__}")
            with open(os.path.join(directory, "config.json")) as f:
                config = json.load(f)
            self.assertEqual(config["registered_name"], metadata["class_name"])

            restored = type(model).from_preset(directory)
            self.assertIs(type(restored), type(model))
            self.assertEqual(
                json.loads(json.dumps(restored.get_config())), json.loads(json.dumps(model.get_config()))
            )
            np.testing.assert_array_equal(np.asarray(restored(inputs)), expected)
            # The base class loads any task model.
            generic = PerceiverTaskModel.from_preset(directory)
            self.assertIs(type(generic), type(model))
            np.testing.assert_array_equal(np.asarray(generic(inputs)), expected)

    def test_overrides_and_other_weights(self):
        model = flow_model()
        directory = os.path.join(self.make_temp_dir(), "preset")
        model.save_to_preset(directory)
        # Backbone arguments reach the backbone, head arguments the head.
        overridden = PerceiverOpticalFlow.from_preset(
            directory, dropout=0.1, decoder_use_query_residual=False
        )
        self.assertEqual(overridden.backbone.get_config()["dropout"], 0.1)
        self.assertEqual(overridden.get_layer("decoder").dropout, 0.1)
        self.assertFalse(overridden.get_config()["decoder_use_query_residual"])
        # Dropout is off at inference: same outputs.
        self.assertAllClose(overridden(flow_inputs()), model(flow_inputs()), atol=0)
        other = flow_model()  # different random weights
        weights = os.path.join(self.make_temp_dir(), "other.weights.h5")
        other.save_weights(weights)
        loaded = PerceiverOpticalFlow.from_preset(directory, weights=weights)
        self.assertAllClose(loaded(flow_inputs()), other(flow_inputs()), atol=0)

    def test_never_overwrites_silently(self):
        model = flow_model()
        parent = self.make_temp_dir()
        directory = os.path.join(parent, "preset")
        os.makedirs(directory)
        model.save_to_preset(directory)  # an existing empty directory is used
        with open(os.path.join(directory, "config.json")) as f:
            before = f.read()
        other = io_model()
        with self.assertRaisesRegex(FileExistsError, "not empty.*overwrite=True"):
            other.save_to_preset(directory)
        with open(os.path.join(directory, "config.json")) as f:
            self.assertEqual(f.read(), before)
        other.save_to_preset(directory, overwrite=True)
        self.assertIs(type(PerceiverTaskModel.from_preset(directory)), PerceiverIO)
        self.assertEqual(siblings(directory), ["preset"])
        file_path = os.path.join(parent, "a_file")
        open(file_path, "w").close()
        with self.assertRaisesRegex(FileExistsError, "is a file"):
            model.save_to_preset(file_path, overwrite=True)

    def test_no_partial_directory_on_failure(self):
        model = flow_model()
        parent = self.make_temp_dir()
        directory = os.path.join(parent, "preset")
        with mock.patch.object(type(model), "save_weights", side_effect=OSError("disk full")):
            with self.assertRaisesRegex(OSError, "disk full"):
                model.save_to_preset(directory)
        self.assertEqual(os.listdir(parent), [])
        # A failed overwrite keeps the existing preset intact.
        model.save_to_preset(directory)
        with mock.patch.object(PerceiverIO, "save_weights", side_effect=OSError("disk full")):
            with self.assertRaisesRegex(OSError, "disk full"):
                io_model().save_to_preset(directory, overwrite=True)
        self.assertEqual(os.listdir(parent), ["preset"])
        self.assertIs(type(PerceiverTaskModel.from_preset(directory)), PerceiverOpticalFlow)

    def test_errors_for_missing_or_corrupt_directories(self):
        model = flow_model()
        parent = self.make_temp_dir()
        with self.assertRaisesRegex(ValueError, r"Unknown preset .*nowhere.*save_to_preset"):
            PerceiverOpticalFlow.from_preset(os.path.join(parent, "nowhere"))
        with self.assertRaisesRegex(FileNotFoundError, "has no metadata.json"):
            PerceiverOpticalFlow.from_preset(parent)  # an empty directory

        directory = os.path.join(parent, "preset")
        model.save_to_preset(directory)
        with self.assertRaisesRegex(ValueError, "holds a PerceiverOpticalFlow, not a PerceiverIO"):
            PerceiverIO.from_preset(directory)

        config_path = os.path.join(directory, "config.json")
        with open(config_path) as f:
            config_text = f.read()
        with open(config_path, "w") as f:
            f.write(config_text[: len(config_text) // 2])
        expected = r"config.json' is not a preset's config.json: expected a JSON object. Received: \d+ bytes"
        with self.assertRaisesRegex(ValueError, expected):
            PerceiverOpticalFlow.from_preset(directory)
        with open(config_path, "w") as f:
            f.write(config_text)

        weights_path = os.path.join(directory, "model.weights.h5")
        with open(weights_path, "rb") as f:
            weights_bytes = f.read()
        with open(weights_path, "wb") as f:
            f.write(weights_bytes[: len(weights_bytes) // 2])
        with self.assertRaisesRegex(ValueError, "do not load into the PerceiverOpticalFlow"):
            PerceiverOpticalFlow.from_preset(directory)
        os.remove(weights_path)
        with self.assertRaisesRegex(FileNotFoundError, "model.weights.h5 not found"):
            PerceiverOpticalFlow.from_preset(directory)

        # Weights of another architecture.
        io_weights = os.path.join(parent, "io.weights.h5")
        io_model().save_weights(io_weights)
        with self.assertRaisesRegex(ValueError, "do not load"):
            PerceiverOpticalFlow.from_preset(directory, weights=io_weights)

    def test_a_config_cannot_import_other_modules_or_carry_code(self):
        directory = os.path.join(self.make_temp_dir(), "preset")
        flow_model().save_to_preset(directory)
        config_path = os.path.join(directory, "config.json")
        with open(config_path) as f:
            config = json.load(f)
        # Deserializing imports the modules a config names: any other than keras_perceiver's and Keras' is
        # refused before the import.
        bad = json.loads(json.dumps(config))
        bad["config"]["backbone"]["module"] = "antigravity_or_worse"
        with open(config_path, "w") as f:
            json.dump(bad, f)
        with self.assertRaisesRegex(ValueError, r"Received: module='antigravity_or_worse'"):
            PerceiverOpticalFlow.from_preset(directory)
        # A Python lambda in place of a layer: refused by Keras' safe_mode.
        bad = json.loads(json.dumps(config))
        bad["config"]["backbone"] = {
            "module": "keras.layers",
            "class_name": "Lambda",
            "config": {"function": {"class_name": "__lambda__", "config": {"code": "print('pwned')"}}},
        }
        with open(config_path, "w") as f:
            json.dump(bad, f)
        with self.assertRaisesRegex(ValueError, "safe_mode|could not rebuild"):
            PerceiverOpticalFlow.from_preset(directory)
