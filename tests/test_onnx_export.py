"""ONNX export of the numeric endpoint: onnxruntime gives the Keras model's outputs (which models convert)."""

import os

import numpy as np
import pytest

from keras_perceiver.onnx_export import export_onnx, onnx_feed
from tests.test_case import TestCase

onnxruntime = pytest.importorskip("onnxruntime")


def run_onnx(path, inputs):
    session = onnxruntime.InferenceSession(path)
    return session.run(None, onnx_feed(session, inputs))


def models():
    from keras_perceiver.layers.trainable_queries import TrainableQueries
    from keras_perceiver.models import HierarchicalPerceiver, PerceiverIO
    from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
    from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
    from tests.models import test_perceiver_masked_lm as masked_lm
    from tests.models import test_perceiver_optical_flow as flow

    rng = np.random.default_rng(0)
    image = PerceiverIO.from_hyperparameters(
        input_shape=(8, 8, 1), num_latents=8, latent_dim=32, num_self_attends_per_block=1,
        num_cross_attention_heads=1, num_self_attention_heads=2, output_channels=10,
        preprocessor=ImagePreprocessor(num_bands=4), query_builder=TrainableQueries(1, 32),
        postprocessor=ClassificationPostprocessor(),
    )  # fmt: skip
    yield (
        "image classifier",
        image,
        {
            "inputs": rng.normal(size=(3, 8, 8, 1)).astype("float32"),
            "padding_mask": np.ones((3, 64), bool),
        },
    )
    yield "masked LM", masked_lm.build_model(), masked_lm.make_inputs(length=16)
    yield "optical flow", flow.tiny(), flow._frames()
    hip = HierarchicalPerceiver(
        input_shapes={"image": (20, 3)}, num_groups=(4, 1, 4), num_self_attends_per_block=(1, 1, 1),
        num_latents=(4, 8, 4), latent_dim=(8, 16, 4), num_cross_attention_heads=(1, 1, 1),
        num_self_attention_heads=(2, 2, 1), cross_attention_widening_factor=(1, 1, 1),
        self_attention_widening_factor=(2, 2, 2), num_embedding_channels=4, num_position_encoding_channels=16,
    )  # fmt: skip
    hip_inputs = {
        "image": rng.normal(size=(2, 20, 3)).astype("float32"),
        "image_padding_mask": np.ones((2, 20), bool),
    }
    yield "HiP", hip, hip_inputs
    # Chunked attention (loops: ONNX Loop / Scan).
    import keras

    from keras_perceiver.layers import CrossAttentionEncoder, QueryDecoder

    inputs = keras.Input((10, 3), name="inputs")
    queries = keras.Input((7, 8), name="queries")
    latents = CrossAttentionEncoder(4, 8, qk_channels=4, attention_chunk_size=3)(inputs)
    outputs = QueryDecoder(num_cross_attention_heads=2, attention_chunk_size=3)(queries, latents)
    chunked = keras.Model({"inputs": inputs, "queries": queries}, outputs)
    chunked_inputs = {
        "inputs": rng.normal(size=(2, 10, 3)).astype("float32"),
        "queries": rng.normal(size=(2, 7, 8)).astype("float32"),
    }
    yield "chunked attention", chunked, chunked_inputs


class OnnxExportTest(TestCase):
    def test_onnxruntime_gives_the_keras_outputs(self):
        import keras

        directory = self.make_temp_dir()
        for name, model, inputs in models():
            expected = [np.asarray(x) for x in keras.tree.flatten(model(inputs))]
            path = export_onnx(model, os.path.join(directory, name.replace(" ", "_") + ".onnx"))
            outputs = run_onnx(path, inputs)
            self.assertEqual(len(outputs), len(expected), msg=name)
            difference = max(float(np.max(np.abs(a - b))) for a, b in zip(outputs, expected))
            print(f"ONNX {name}: max |onnxruntime - Keras| = {difference:.2e}")
            self.assertLessEqual(difference, 1e-5, msg=name)


class OnnxExportJobTest(TestCase):
    def test_training_export_writes_and_checks_model_onnx(self):
        from training import export as export_job
        from training import train

        run_dir = os.path.join(self.make_temp_dir(), "run")
        tiny = {"num_latents": 4, "latent_dim": 16, "num_self_attends_per_block": 1, "query_channels": 16}
        train.run(
            verbose=0, model_dir=run_dir, task="digits", epochs=1, max_train_steps=1, overrides=tiny,
            jit_compile=False, tensorboard=False, backup=False, export=False,
        )  # fmt: skip
        output = os.path.join(self.make_temp_dir(), "export")
        report = export_job.run(run_dir, output, formats=("saved_model", "onnx"), check_examples=8)
        self.assertTrue(os.path.isfile(os.path.join(output, "model.onnx")))
        self.assertLessEqual(report["max_abs_diff"]["onnx"], 1e-5)
        self.assertGreater(report["file_bytes"]["onnx"], 1000)
