"""Learning-rate schedules and optimizers of the reference recipe."""

import math

import keras
import numpy as np

from tests.test_case import TestCase
from training.optimization import WarmupConstantCosineDecay, build_optimizer, build_schedule


def _schedule_values(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


class ScheduleTest(TestCase):
    def test_warmup_constant_cosine_shape(self):
        schedule = WarmupConstantCosineDecay(
            2.0, total_steps=100, warmup_steps=10, constant_steps=30, alpha=0.1
        )
        steps = np.arange(0, 121)
        values = _schedule_values(schedule, steps)
        # The three phases, from their definitions.
        np.testing.assert_allclose(values[:10], 2.0 * (steps[:10] + 1) / 10, rtol=1e-6)
        np.testing.assert_allclose(values[10:41], 2.0, rtol=1e-6)
        progress = (steps[40:101] - 40) / 60
        expected = 2.0 * (0.1 + 0.9 * 0.5 * (1 + np.cos(math.pi * progress)))
        np.testing.assert_allclose(values[40:101], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values[100:], 0.2, rtol=1e-5)  # alpha * peak after the end
        self.assertTrue(np.all(np.diff(values[40:]) <= 1e-7), msg="not non-increasing after the plateau")

    def test_schedule_round_trip_and_errors(self):
        schedule = WarmupConstantCosineDecay(1e-3, total_steps=50, warmup_steps=5, constant_steps=10)
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
        self.assertEqual(restored.get_config(), schedule.get_config())
        self.assertEqual(float(restored(7)), float(schedule(7)))
        with self.assertRaisesRegex(ValueError, "must not exceed `total_steps`"):
            WarmupConstantCosineDecay(1.0, total_steps=10, warmup_steps=6, constant_steps=5)
        with self.assertRaisesRegex(ValueError, "peak_learning_rate"):
            WarmupConstantCosineDecay(0.0, total_steps=10)
        with self.assertRaisesRegex(ValueError, "schedule.*Received: schedule='step'"):
            build_schedule("step", 1.0, 10)

    def test_named_schedules(self):
        self.assertEqual(build_schedule("constant", 0.5, 100), 0.5)
        cosine = build_schedule("cosine", 1.0, 100, warmup_steps=10)
        self.assertAlmostEqual(float(cosine(0)), 1.0, places=6)  # no warm-up for plain cosine
        self.assertAlmostEqual(float(cosine(50)), 0.5, places=5)
        constant_cosine = build_schedule(
            "constant_cosine", 1.0, 90, warmup_steps=6, decay_start_fraction=2 / 3
        )
        values = _schedule_values(constant_cosine, range(91))
        self.assertAlmostEqual(values[0], 1 / 6, places=6)
        np.testing.assert_allclose(values[6:61], 1.0, rtol=1e-6)  # constant until 2/3 of the steps
        self.assertLess(values[61], 1.0)
        self.assertAlmostEqual(values[90], 0.0, places=6)
        linear = _schedule_values(build_schedule("linear", 3e-5, 100), (0, 25, 50, 100, 120))
        np.testing.assert_allclose(linear, [3e-5, 2.25e-5, 1.5e-5, 0.0, 0.0], rtol=1e-5, atol=1e-12)


class OptimizerTest(TestCase):
    def _model(self):
        inputs = keras.Input((4,))
        outputs = keras.layers.LayerNormalization(name="norm")(keras.layers.Dense(3, name="dense")(inputs))
        model = keras.Model(inputs, outputs)
        for weight in model.weights:
            weight.assign(np.full(weight.shape, 0.5, "float32"))
        return model

    def test_lamb_weight_decay_skips_biases_and_norms(self):
        model = self._model()
        optimizer = build_optimizer("lamb", learning_rate=0.1, weight_decay=0.2)
        self.assertIsInstance(optimizer, keras.optimizers.Lamb)
        zeros = [np.zeros(w.shape, "float32") for w in model.trainable_weights]
        optimizer.apply_gradients(zip(zeros, model.trainable_weights))
        after = {w.path: w.numpy() for w in model.trainable_weights}
        # With zero gradients only the decoupled decay moves a weight: w <- w - lr * wd * w.
        np.testing.assert_allclose(after["dense/kernel"], 0.5 * (1 - 0.1 * 0.2), rtol=1e-6)
        for name in ("dense/bias", "norm/gamma", "norm/beta"):
            np.testing.assert_array_equal(after[name], 0.5, err_msg=name)

    def test_adamw_without_exclusions_decays_everything(self):
        model = self._model()
        optimizer = build_optimizer("adamw", 0.1, weight_decay=0.2, exclude_from_weight_decay=())
        zeros = [np.zeros(w.shape, "float32") for w in model.trainable_weights]
        optimizer.apply_gradients(zip(zeros, model.trainable_weights))
        for weight in model.trainable_weights:
            np.testing.assert_allclose(weight.numpy(), 0.5 * (1 - 0.1 * 0.2), rtol=1e-6, err_msg=weight.path)

    def test_global_norm_clipping(self):
        variable = keras.Variable(np.zeros(4, "float32"))
        optimizer = build_optimizer("sgd", learning_rate=0.5, global_clipnorm=1.0, beta_1=0.0)
        optimizer.apply_gradients([(np.array([30.0, 40.0, 0.0, 0.0], "float32"), variable)])
        # The gradient (norm 50) is rescaled to norm 1 before the step of 0.5.
        np.testing.assert_allclose(variable.numpy(), [-0.3, -0.4, 0.0, 0.0], rtol=1e-6)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "must be one of"):
            build_optimizer("rmsprop")
        with self.assertRaisesRegex(ValueError, "no decoupled weight decay"):
            build_optimizer("adam", weight_decay=0.1)
        with self.assertRaisesRegex(ValueError, "global_clipnorm"):
            build_optimizer("lamb", global_clipnorm=0.0)
        with self.assertRaisesRegex(ValueError, "weight_decay"):
            build_optimizer("lamb", weight_decay=-1.0)
