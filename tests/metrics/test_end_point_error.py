import keras
import numpy as np

from keras_perceiver.metrics import EndPointError
from tests.test_case import TestCase


def numpy_epe(flow_true, flow_pred, valid):
    error = np.sqrt(((flow_pred.astype("float64") - flow_true) ** 2).sum(-1))
    return error[valid].mean()


class EndPointErrorTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.flow_true = rng.normal(size=(2, 4, 5, 2)).astype("float32") * 3
        self.flow_pred = rng.normal(size=(2, 4, 5, 2)).astype("float32") * 3
        self.valid = rng.random((2, 4, 5)) < 0.6

    def test_matches_numpy_with_and_without_valid_mask(self):
        metric = EndPointError()
        metric.update_state(self.flow_true, self.flow_pred)
        self.assertAllClose(metric.result(), np.float32(numpy_epe(self.flow_true, self.flow_pred, True)))
        masked = EndPointError()
        masked.update_state(self.flow_true, self.flow_pred, sample_weight=self.valid.astype("float32"))
        expected = numpy_epe(self.flow_true, self.flow_pred, self.valid)
        self.assertAllClose(masked.result(), np.float32(expected), atol=1e-5)

    def test_pixel_average_over_batches(self):
        metric = EndPointError()
        metric.update_state(self.flow_true[:1], self.flow_pred[:1], sample_weight=self.valid[:1])
        metric.update_state(self.flow_true[1:], self.flow_pred[1:], sample_weight=self.valid[1:])
        expected = numpy_epe(self.flow_true, self.flow_pred, self.valid)
        self.assertAllClose(metric.result(), np.float32(expected), atol=1e-5)

    def test_non_finite_ground_truth_is_invalid(self):
        flow_true = self.flow_true.copy()
        flow_true[0, 0, 0, 0] = np.inf  # e.g. Middlebury's unknown flow
        flow_true[1, 2, 3, 1] = np.nan
        flow_pred = self.flow_pred.copy()
        flow_pred[0, 1, 1] = np.nan  # a NaN prediction at an invalid pixel is excluded too
        valid = self.valid.copy()
        valid[0, 1, 1] = False
        metric = EndPointError()
        metric.update_state(flow_true, flow_pred, sample_weight=valid)
        finite = valid & np.isfinite(flow_true).all(-1)
        self.assertAllFinite(metric.result())
        self.assertAllClose(metric.result(), np.float32(numpy_epe(flow_true, flow_pred, finite)), atol=1e-5)
        nothing_valid = EndPointError()
        nothing_valid.update_state(np.full_like(flow_true, np.nan), flow_pred)
        self.assertEqual(float(nothing_valid.result()), 0.0)

    def test_config_round_trip(self):
        self.run_config_round_trip(EndPointError(name="epe"))

    def test_compile_and_evaluate_with_valid_mask(self):
        frames = np.random.default_rng(1).normal(size=(2, 4, 5, 3)).astype("float32")
        inputs = keras.Input((4, 5, 3))
        model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
        model.compile(loss="mse", weighted_metrics=[EndPointError()])
        results = model.evaluate(frames, self.flow_true, sample_weight=self.valid, batch_size=2, verbose=0)
        predictions = keras.ops.convert_to_numpy(model(frames))
        self.assertAllClose(results[1], numpy_epe(self.flow_true, predictions, self.valid), atol=1e-5)

    def test_errors_name_expected_and_received_shapes(self):
        metric = EndPointError()
        with self.assertRaisesRegex(ValueError, r"\(B, H, W, 2\).*y_pred.shape=\(2, 4, 5, 3\)"):
            metric.update_state(self.flow_true, np.zeros((2, 4, 5, 3)))
        with self.assertRaisesRegex(
            ValueError, r"Expected: \(2, 4, 5, 2\), received: y_true.shape=\(2, 4, 4, 2\)"
        ):
            metric.update_state(self.flow_true[:, :, :4], self.flow_pred)
        with self.assertRaisesRegex(
            ValueError, r"Expected: \(2, 4, 5\), received: sample_weight.shape=\(2,\)"
        ):
            metric.update_state(self.flow_true, self.flow_pred, sample_weight=np.ones(2))
