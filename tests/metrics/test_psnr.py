import keras
import numpy as np
import tensorflow as tf

from keras_perceiver.metrics import PeakSignalToNoiseRatio
from tests.test_case import TestCase


def numpy_psnr_per_example(y_true, y_pred, max_value=1.0):
    mse = ((y_true.astype("float64") - y_pred) ** 2).reshape(len(y_true), -1).mean(-1)
    return 10 * np.log10(max_value**2 / mse)


class PeakSignalToNoiseRatioTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.y_true = rng.random((3, 2, 4, 4, 3)).astype("float32")  # (B, T, H, W, C) video
        noise = rng.normal(size=self.y_true.shape) * np.array([0.01, 0.1, 0.3]).reshape(3, 1, 1, 1, 1)
        self.y_pred = (self.y_true + noise).astype("float32")

    def test_mean_of_per_example_psnr(self):
        metric = PeakSignalToNoiseRatio()
        metric.update_state(self.y_true[:2], self.y_pred[:2])
        metric.update_state(self.y_true[2:], self.y_pred[2:])
        per_example = numpy_psnr_per_example(self.y_true, self.y_pred)
        self.assertAllClose(metric.result(), np.float32(per_example.mean()), atol=1e-4)
        pooled = 10 * np.log10(1 / ((self.y_true.astype("float64") - self.y_pred) ** 2).mean())
        self.assertGreater(abs(per_example.mean() - pooled), 1.0)  # the averaging choice matters
        images = PeakSignalToNoiseRatio()
        images.update_state(self.y_true[:, 0], self.y_pred[:, 0])  # (B, H, W, C) images
        expected = tf.reduce_mean(tf.image.psnr(self.y_true[:, 0], self.y_pred[:, 0], max_val=1.0))
        self.assertAllClose(images.result(), expected, atol=1e-4)

    def test_max_value_and_sample_weight(self):
        metric = PeakSignalToNoiseRatio(max_value=255.0)
        weights = np.array([1.0, 0.0, 3.0], "float32")
        metric.update_state(self.y_true * 255, self.y_pred * 255, sample_weight=weights)
        per_example = numpy_psnr_per_example(self.y_true, self.y_pred)
        self.assertAllClose(metric.result(), np.float32((per_example * weights).sum() / 4), atol=1e-3)

    def test_identical_inputs_give_the_finite_cap(self):
        metric = PeakSignalToNoiseRatio(max_value=255.0)
        metric.update_state(self.y_true, self.y_true)
        self.assertAllClose(metric.result(), np.float32(100.0), atol=1e-4)
        capped = PeakSignalToNoiseRatio(epsilon=1e-6)
        capped.update_state(self.y_true, self.y_true)
        self.assertAllClose(capped.result(), np.float32(60.0), atol=1e-4)
        self.assertEqual(float(PeakSignalToNoiseRatio().result()), 0.0)  # nothing seen yet

    def test_config_round_trip(self):
        restored = self.run_config_round_trip(PeakSignalToNoiseRatio(max_value=255.0, epsilon=1e-8))
        self.assertEqual((restored.max_value, restored.epsilon), (255.0, 1e-8))

    def test_compile_and_evaluate(self):
        inputs = keras.Input((2, 4, 4, 3))
        model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
        model.compile(loss="mse", metrics=[PeakSignalToNoiseRatio()])
        results = model.evaluate(self.y_true, self.y_true, batch_size=3, verbose=0)
        predictions = keras.ops.convert_to_numpy(model(self.y_true))
        expected = numpy_psnr_per_example(self.y_true, predictions).mean()
        self.assertAllClose(results[1], expected, atol=1e-4, rtol=1e-5)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"Received: max_value=0"):
            PeakSignalToNoiseRatio(max_value=0)
        with self.assertRaisesRegex(ValueError, r"Received: epsilon=-1"):
            PeakSignalToNoiseRatio(epsilon=-1)
        metric = PeakSignalToNoiseRatio()
        with self.assertRaisesRegex(
            ValueError, r"y_true.shape=\(3, 2, 4, 4, 3\), y_pred.shape=\(3, 2, 4, 4, 2\)"
        ):
            metric.update_state(self.y_true, self.y_pred[..., :2])
        with self.assertRaisesRegex(ValueError, r"\(B,\) = \(3,\).*sample_weight.shape=\(3, 2\)"):
            metric.update_state(self.y_true, self.y_pred, sample_weight=np.ones((3, 2)))
