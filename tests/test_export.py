"""Tests of `keras_perceiver.export`: SavedModel endpoints, client signatures, named outputs, reloads."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_perceiver.export import (
    ClientInputs,
    audio_client_inputs,
    classification_outputs,
    export_saved_model,
    export_tflite,
    flow_client_inputs,
    image_client_inputs,
    load_saved_model,
    read_metadata,
    serving_input_signature,
    text_client_inputs,
)
from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.hierarchical_perceiver import HierarchicalPerceiver
from keras_perceiver.models.perceiver_io import PerceiverIO
from keras_perceiver.models.perceiver_optical_flow import PerceiverOpticalFlow
from keras_perceiver.models.perceiver_text_classifier import PerceiverTextClassifier
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.tokenizers.byte_tokenizer import ByteTokenizer
from tests.test_case import TestCase


def tiny_classifier():
    return PerceiverIO.from_hyperparameters(
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
        initializer_range=0.5,  # logits of O(1): an export that lost an input or a block would show at 1e-5
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
    assert np.ptp(expected) > 1e-1  # outputs of O(1): a comparison at 1e-5 sees a wrong export
    serving_default = load_saved_model(path)
    np.testing.assert_allclose(serving_default({"inputs": x})["logits"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(serving_default(x)["logits"].numpy(), expected, atol=1e-5)
    serve = load_saved_model(path, endpoint="serve")
    np.testing.assert_allclose(serve({"inputs": x}).numpy(), expected, atol=1e-5)


def test_each_weight_is_stored_once(exported):
    # Keras issue #23553: ExportArchive wrote each weight twice (keras.Variable and its tf.Variable).
    model, path = exported
    stored = tf.train.list_variables(str(path / "variables" / "variables"))
    values = sum(int(np.prod(shape)) for name, shape in stored if name.endswith("VARIABLE_VALUE"))
    expected = sum(int(np.prod(v.shape)) for v in model.weights)
    assert values == expected
    revived = tf.saved_model.load(str(path))
    assert sum(int(np.prod(v.shape)) for v in revived.variables) == expected


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
    expected = keras.ops.convert_to_numpy(model({"inputs": x, "padding_mask": mask}))
    np.testing.assert_allclose(
        reloaded({"inputs": x, "padding_mask": mask})["outputs"].numpy(), expected, atol=1e-5
    )
    # The mask matters by far more than the tolerance: an export that dropped it would fail above.
    unmasked = keras.ops.convert_to_numpy(model({"inputs": x}))
    assert np.abs(unmasked - expected).max() > 1e-2


def test_errors(exported, tmp_path):
    _, path = exported
    with pytest.raises(ValueError, match="no endpoint 'predict'"):
        load_saved_model(path, endpoint="predict")
    with pytest.raises(ValueError, match="must be built"):
        export_saved_model(keras.Sequential([keras.layers.Dense(2)]), tmp_path / "unbuilt")


def normalize_image(image):
    return tf.cast(image, tf.float32) / 127.5 - 1.0


class ClientSignatureTest(TestCase):
    def test_uint8_images_and_named_classification_outputs(self):
        model = PerceiverIO.from_hyperparameters(
            input_shape=(4, 4, 1),
            num_latents=4,
            latent_dim=8,
            num_self_attends_per_block=1,
            num_cross_attention_heads=1,
            num_self_attention_heads=2,
            output_channels=6,
            initializer_range=0.5,
            preprocessor=ImagePreprocessor(num_bands=2),
            query_builder=TrainableQueries(num_queries=1, num_channels=8),
            postprocessor=ClassificationPostprocessor(),
        )
        path = os.path.join(self.make_temp_dir(), "image_model")
        client = image_client_inputs(model, normalize=normalize_image)
        export_saved_model(
            model,
            path,
            client_inputs=client,
            outputs=classification_outputs(top_k=3),
            metadata={"kind": "test"},
        )
        images = np.random.default_rng(0).integers(0, 256, size=(5, 4, 4, 1)).astype("uint8")
        expected = keras.ops.convert_to_numpy(model({"inputs": normalize_image(images)}))
        serving = load_saved_model(path)
        results = {key: value.numpy() for key, value in serving({"image": images}).items()}
        self.assertEqual(
            sorted(results), ["logits", "probabilities", "top_k_class_ids", "top_k_probabilities"]
        )
        self.assertAllClose(results["logits"], expected, atol=1e-5)
        self.assertAllClose(results["probabilities"].sum(-1), np.ones(5), atol=1e-6)
        np.testing.assert_array_equal(results["top_k_class_ids"], np.argsort(-expected, axis=-1)[:, :3])
        _, inputs = serving.saved_model.signatures["serving_default"].structured_input_signature
        self.assertEqual({name: spec.dtype for name, spec in inputs.items()}, {"image": tf.uint8})
        # `serve` keeps the model's own inputs; the metadata records the client inputs.
        serve = load_saved_model(path, endpoint="serve")
        self.assertAllClose(serve({"inputs": normalize_image(images)}).numpy(), expected, atol=1e-5)
        metadata = read_metadata(path)
        self.assertEqual(metadata["kind"], "test")
        self.assertEqual(
            metadata["client_inputs"]["inputs"]["image"], {"dtype": "uint8", "shape": [None, 4, 4, 1]}
        )

    def test_raw_utf8_strings_are_tokenized_in_the_graph(self):
        model = PerceiverTextClassifier.from_hyperparameters(
            num_classes=3,
            max_sequence_length=24,
            embedding_dim=8,
            num_latents=6,
            latent_dim=16,
            num_self_attends_per_block=1,
            num_cross_attention_heads=2,
            num_self_attention_heads=2,
            qk_channels=8,
            v_channels=16,
            initializer_range=0.5,
        )
        tokenizer = ByteTokenizer(sequence_length=24)
        path = os.path.join(self.make_temp_dir(), "text_model")
        export_saved_model(model, path, client_inputs=text_client_inputs(tokenizer), output_name="logits")
        texts = ["很好，非常满意", "Perceiver IO", "", "a much longer sentence that is cut at 24 bytes"]
        expected = keras.ops.convert_to_numpy(model(tokenizer(texts)))
        serving = load_saved_model(path)
        self.assertAllClose(serving({"text": tf.constant(texts)})["logits"].numpy(), expected, atol=1e-5)
        self.assertEqual(read_metadata(path)["client_inputs"]["tokenizer_config"]["sequence_length"], 24)

    def test_frame_pairs_and_audio(self):
        flow_model = PerceiverOpticalFlow.from_hyperparameters(
            image_size=(6, 8),
            train_size=(6, 8),
            num_bands=3,
            output_channels=8,
            num_latents=6,
            latent_dim=16,
            num_self_attends_per_block=1,
            num_self_attention_heads=2,
            initializer_range=0.5,
        )
        path = os.path.join(self.make_temp_dir(), "flow_model")
        export_saved_model(
            flow_model,
            path,
            client_inputs=flow_client_inputs(flow_model),
            outputs=lambda flow: {"flow": flow},
        )
        rng = np.random.default_rng(2)
        frame0, frame1 = (rng.integers(0, 256, size=(2, 6, 8, 3)).astype("uint8") for _ in range(2))
        frames = np.stack([frame0, frame1], axis=1).astype("float32") / 127.5 - 1.0
        expected = keras.ops.convert_to_numpy(flow_model({"frames": frames}))
        result = load_saved_model(path)({"frame0": frame0, "frame1": frame1})["flow"].numpy()
        self.assertEqual(result.shape, (2, 6, 8, 2))
        self.assertAllClose(result, expected, atol=1e-5)

        audio = keras.Input(shape=(32,), name="audio")
        audio_model = keras.Model({"audio": audio}, keras.layers.Dense(4)(keras.layers.Reshape((32,))(audio)))
        client = audio_client_inputs(audio_model)
        self.assertIsInstance(client, ClientInputs)
        path = os.path.join(self.make_temp_dir(), "audio_model")
        export_saved_model(audio_model, path, client_inputs=client)
        samples = rng.uniform(-1, 1, size=(3, 32)).astype("float32")
        self.assertAllClose(
            load_saved_model(path)({"audio": samples})["outputs"].numpy(),
            keras.ops.convert_to_numpy(audio_model({"audio": samples})),
            atol=1e-6,
        )

    def test_client_errors(self):
        model = tiny_classifier()
        with pytest.raises(ValueError, match="no input 'images'"):
            image_client_inputs(model, input_name="images")
        with pytest.raises(ValueError, match=r"shape \(B, 2, H, W, C\)"):
            flow_client_inputs(model, input_name="inputs")
        with pytest.raises(TypeError, match="must be a ClientInputs"):
            export_saved_model(model, self.make_temp_dir(), client_inputs={"image": None})
        with pytest.raises(TypeError, match="dict of tf.TensorSpec"):
            ClientInputs({"image": (None, 4)}, lambda inputs: inputs)
        with pytest.raises(ValueError, match="unknown quantization.*Received: quantization='int4'"):
            export_tflite(self.make_temp_dir(), "unused.tflite", quantization="int4")


class NestedOutputsTest(TestCase):
    def test_hip_exports_its_nested_outputs_under_outer_inner_keys(self):
        keras.utils.set_random_seed(0)
        model = HierarchicalPerceiver(
            input_shapes={"image": (20, 3), "label": (3, 1)},
            num_groups=(4, 1, 4),
            num_self_attends_per_block=(1, 1, 1),
            num_latents=(4, 8, 4),
            latent_dim=(8, 16, 4),
            num_cross_attention_heads=(1, 1, 1),
            num_self_attention_heads=(2, 2, 1),
            cross_attention_widening_factor=(1, 1, 1),
            self_attention_widening_factor=(2, 2, 2),
            num_embedding_channels=4,
            num_position_encoding_channels=16,
        )
        rng = np.random.default_rng(0)
        # The un-embedding starts at zero (as the official code's): random weights make outputs visible.
        weights = model.get_weights()
        model.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in weights])
        inputs = {
            "image": rng.normal(size=(2, 20, 3)).astype("float32"),
            "label": rng.normal(size=(2, 3, 1)).astype("float32"),
        }
        expected = model(inputs)
        path = os.path.join(self.make_temp_dir(), "hip")
        export_saved_model(model, path)
        for endpoint in ("serving_default", "serve"):
            outputs = load_saved_model(path, endpoint=endpoint)(inputs)
            keys = [f"{outer}/{inner}" for outer in expected for inner in ("image", "label")]
            self.assertEqual(sorted(outputs), sorted(keys))
            for key, value in outputs.items():
                outer, inner = key.split("/")
                self.assertOutputsVisible(expected[outer]["image"], atol=1e-5)
                self.assertAllClose(value, expected[outer][inner], atol=1e-5)
