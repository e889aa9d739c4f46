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


# ------------------------------------------------------------------ client signatures, TFLite, the export job

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import tensorflow as tf  # noqa: E402

from keras_perceiver.export import (  # noqa: E402
    ClientInputs,
    audio_client_inputs,
    classification_outputs,
    export_tflite,
    flow_client_inputs,
    image_client_inputs,
    load_tflite,
    read_metadata,
    text_client_inputs,
)
from keras_perceiver.models.perceiver_optical_flow import PerceiverOpticalFlow  # noqa: E402
from keras_perceiver.models.perceiver_text_classifier import PerceiverTextClassifier  # noqa: E402
from keras_perceiver.preprocessors.byte_tokenizer import ByteTokenizer  # noqa: E402
from tests.test_case import TestCase  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def normalize_image(image):
    return tf.cast(image, tf.float32) / 127.5 - 1.0


class ClientSignatureTest(TestCase):
    def test_uint8_images_and_named_classification_outputs(self):
        model = PerceiverIO(
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
        model = PerceiverTextClassifier(
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
        flow_model = PerceiverOpticalFlow(
            image_size=(6, 8),
            train_size=(6, 8),
            num_bands=3,
            out_channels=8,
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


class ExportJobTest(TestCase):
    """`python -m training.export` in a subprocess (TFLite conversion leaks memory), then its files."""

    def test_saved_model_and_tflite_agree_with_keras(self):
        run_dir = self.make_temp_dir()
        keras.utils.set_random_seed(0)
        # A digits-shaped classifier, wide enough (weights >= 1024 values) for TFLite's quantization to act.
        model = PerceiverIO(
            input_shape=(8, 8, 1),
            num_latents=8,
            latent_dim=32,
            num_self_attends_per_block=1,
            num_cross_attention_heads=1,
            num_self_attention_heads=2,
            self_attention_widening_factor=2,
            output_channels=10,
            initializer_range=0.2,
            preprocessor=ImagePreprocessor(num_bands=4),
            query_builder=TrainableQueries(num_queries=1, num_channels=32),
            postprocessor=ClassificationPostprocessor(),
        )
        model.save(os.path.join(run_dir, "model.keras"))
        with open(os.path.join(run_dir, "metrics.json"), "w") as f:
            json.dump({"task": "digits"}, f)
        output = os.path.join(self.make_temp_dir(), "digits")
        command = [sys.executable, "-m", "training.export", f"--model_dir={run_dir}", f"--output={output}"]
        command += ["--formats=saved_model,tflite", "--check_examples=32"]
        job = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        self.assertEqual(job.returncode, 0, job.stderr[-3000:])
        with open(os.path.join(output, "export_report.json")) as f:
            report = json.load(f)
        diffs = report["max_abs_diff"]
        print(f"export job max |diff| vs Keras on 32 real digits: {diffs} (sizes {report['file_bytes']})")
        self.assertLessEqual(diffs["saved_model"], 1e-5)
        self.assertLessEqual(diffs["tflite_float32"], 1e-5)
        self.assertLess(diffs["tflite_float16"], 0.05)  # recorded; float16 weights
        self.assertLess(diffs["tflite_dynamic_int8"], 0.5)  # recorded; int8 weights
        self.assertLess(report["file_bytes"]["tflite_dynamic_int8"], report["file_bytes"]["tflite_float32"])

        # This process reads the files back: Keras, SavedModel and float32 TFLite agree on real uint8 digits.
        from training.data import digits
        from training.tasks.digits import normalize

        images = digits.load_arrays("test")[0][:8]
        expected = keras.ops.convert_to_numpy(model({"inputs": normalize(images)}))
        saved = load_saved_model(output)({"image": images})
        self.assertAllClose(saved["logits"].numpy(), expected, atol=1e-5)
        for quantization, tolerance in (("float32", 1e-5), ("float16", 0.05), ("dynamic_int8", 0.5)):
            tflite = load_tflite(os.path.join(output, "tflite", f"model_{quantization}.tflite"))
            self.assertEqual(sorted(detail for detail in tflite.input_details), ["image"])
            self.assertAllClose(tflite({"image": images})["logits"], expected, atol=tolerance)
        self.assertEqual(read_metadata(output)["dataset"], "digits")

        # saved_model_cli (installed with tensorflow) lists both signatures and the client input.
        cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
        shown = subprocess.run(
            [cli, "show", "--dir", output, "--all"], capture_output=True, text=True, timeout=120
        )
        self.assertEqual(shown.returncode, 0, shown.stderr[-2000:])
        self.assertIn("signature_def['serving_default']", shown.stdout)
        self.assertIn("signature_def['serve']", shown.stdout)
        self.assertIn("inputs['image'] tensor_info:", shown.stdout)
        self.assertIn("dtype: DT_UINT8", shown.stdout)
        self.assertIn("outputs['top_k_class_ids']", shown.stdout)
