"""The one shared `TestCase` of keras_perceiver, with one-call helpers.

Per-file tests stay short by calling these helpers (keras-hub's TestCase pattern):

- `run_layer_test`: output shape and dtype, symbolic (KerasTensor) shape,
  weight counts, config round trip with equal outputs, gradients reach every
  trainable weight, mixed precision.
- `run_config_round_trip`: `from_config(get_config())` gives an equal config
  and the class is registered for Keras serialization.
- `run_model_saving_test`: `.keras` save and `keras.saving.load_model` give
  equal outputs.
- `run_mixed_precision_test`: `mixed_float16` and `mixed_bfloat16` outputs are
  finite, of the compute dtype and close to the float32 outputs of the same
  weights; optionally rows that must be exactly zero (masks) stay zero.
- `run_predict_on_dataset`: `predict` on a batched `tf.data.Dataset` equals a
  direct call.
- `run_distributed_fit_step`: one `fit` step under `MirroredStrategy` on two
  logical CPUs (set up in `conftest.py`): finite loss equal to the loss of a
  direct call, and every trainable weight updated.

Inputs given to the helpers are a tensor/array (one positional argument), a
tuple or list (positional arguments) or a dict (keyword arguments) for layers;
models are always called with their input as is (a dict for the task models).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")
# Tolerance relative to the largest magnitude of the float32 output.
MIXED_PRECISION_TOLERANCES = {"mixed_float16": 1e-2, "mixed_bfloat16": 5e-2}


def to_numpy(x):
    """Nested structure of tensors -> same structure of numpy arrays."""
    return tf.nest.map_structure(lambda t: np.asarray(keras.ops.convert_to_numpy(t)), x)


def call_with(obj, inputs, **kwargs):
    """Call a layer or model on inputs given as one tensor, positional tuple or keyword dict."""
    if isinstance(obj, keras.Model):
        return obj(inputs, **kwargs)
    if isinstance(inputs, dict):
        return obj(**inputs, **kwargs)
    if isinstance(inputs, (tuple, list)):
        return obj(*inputs, **kwargs)
    return obj(inputs, **kwargs)


def symbolic_like(inputs):
    """The same structure with each array replaced by a `keras.KerasTensor` of its shape and dtype."""

    def convert(x):
        if x is None:
            return None
        x = keras.ops.convert_to_tensor(x)
        return keras.KerasTensor(tuple(x.shape), dtype=keras.backend.standardize_dtype(x.dtype))

    return tf.nest.map_structure(convert, inputs)


_MIRRORED_STRATEGY = []


def mirrored_strategy():
    """One `MirroredStrategy(["/cpu:0", "/cpu:1"])` for the whole test session.

    Two strategies in one process reuse the same collective instance keys, so a
    second strategy's all-reduce can meet the first one's and fail with a shape
    mismatch; sharing one strategy keeps the keys unique.
    """
    if not _MIRRORED_STRATEGY:
        _MIRRORED_STRATEGY.append(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    return _MIRRORED_STRATEGY[0]


def as_json(config):
    """A config as it reads back from JSON (tuples become lists), for comparisons after saving."""
    return json.loads(json.dumps(config))


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_on_backend(backend, script, *args, timeout=300):
    """Runs `python -c script *args` with `KERAS_BACKEND=backend` (JAX on the CPU) from the repository root;
    returns the `subprocess.CompletedProcess` (text output captured)."""
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO_ROOT}
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=timeout,
        check=False,
    )


class TestCase(parameterized.TestCase):
    """`absl` parameterized TestCase (pytest compatible) with the project's one-call helpers."""

    def setUp(self):
        super().setUp()
        keras.backend.clear_session()
        keras.config.set_dtype_policy("float32")
        keras.utils.set_random_seed(1337)

    def tearDown(self):
        keras.config.set_dtype_policy("float32")
        super().tearDown()

    # ------------------------------------------------------------------ utilities

    def make_temp_dir(self):
        """A fresh temporary directory removed after the test."""
        path = tempfile.mkdtemp(prefix="keras_perceiver_test_")
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path

    def assertAllClose(self, actual, expected, atol=1e-6, rtol=1e-6, msg=None):
        """Element-wise closeness of two (nested) structures of tensors or arrays."""
        actual, expected = to_numpy(actual), to_numpy(expected)
        tf.nest.assert_same_structure(actual, expected)
        for a, e in zip(tf.nest.flatten(actual), tf.nest.flatten(expected)):
            self.assertEqual(a.shape, e.shape, msg=msg)
            np.testing.assert_allclose(
                a.astype("float64"), e.astype("float64"), atol=atol, rtol=rtol, err_msg=msg or ""
            )

    def assertOutputsVisible(self, outputs, atol):
        """The outputs vary by far more than `atol` (x 1000), so that a comparison at `atol` can see a wrong
        result: a model with the default 0.02 initialization gives outputs near 1e-4, where a save, export or
        predict path that dropped an input (a mask, a block) would still agree within 1e-5. Use O(1) weights
        (e.g. `initializer_range=0.5`)."""
        leaves = [to_numpy(x).astype("float64") for x in keras.tree.flatten(outputs) if x is not None]
        spread = max(float(np.max(leaf) - np.min(leaf)) for leaf in leaves if leaf.size)
        message = f"outputs span only {spread:.3g}: too small for a comparison at atol={atol}"
        self.assertGreater(spread, 1000 * atol, msg=message)

    def assertAllFinite(self, x, msg=None):
        for a in tf.nest.flatten(to_numpy(x)):
            if np.issubdtype(a.dtype, np.floating) or a.dtype.name == "bfloat16":
                self.assertTrue(
                    np.all(np.isfinite(a.astype("float32"))), msg=msg or f"non-finite values: {a}"
                )

    def assertAllZero(self, x, msg=None):
        x = np.asarray(to_numpy(x)).astype("float32")
        self.assertTrue(x.size > 0, msg="nothing to check")
        np.testing.assert_array_equal(x, np.zeros_like(x), err_msg=msg or "")

    def assertDtype(self, x, dtype, msg=None):
        self.assertEqual(
            keras.backend.standardize_dtype(x.dtype), keras.backend.standardize_dtype(dtype), msg
        )

    def assertWeightsChange(self, before, after, names):
        unchanged = [n for n, b, a in zip(names, before, after) if np.array_equal(b, a)]
        self.assertEqual(unchanged, [], msg=f"weights not updated: {unchanged}")

    # ------------------------------------------------------------------ helpers

    def run_config_round_trip(self, obj):
        """`from_config(get_config())` gives an equal config; the class is registered.

        Returns:
            The object rebuilt from the config (not built, for layers).
        """
        config = obj.get_config()
        json.dumps(keras.saving.serialize_keras_object(obj))  # the config must be JSON-serializable
        restored = obj.__class__.from_config(config)
        self.assertIs(type(restored), type(obj))
        self.assertEqual(restored.get_config(), config)
        serialized = keras.saving.serialize_keras_object(obj)
        self.assertEqual(serialized["registered_name"], f"keras_perceiver>{type(obj).__name__}")
        revived = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
        self.assertIs(type(revived), type(obj))
        return restored

    def run_layer_test(
        self,
        cls,
        init_kwargs,
        input_data,
        expected_output_shape,
        expected_output_dtype="float32",
        expected_num_trainable_weights=None,
        expected_num_non_trainable_weights=0,
        call_kwargs=None,
        run_symbolic_test=True,
        run_gradient_test=True,
        run_mixed_precision_test=True,
        zero_rows=None,
    ):
        """One call that exercises a layer end to end.

        Args:
            cls: the layer class.
            init_kwargs: dict of constructor arguments.
            input_data: tensor, tuple (positional) or dict (keyword) inputs.
            expected_output_shape: tuple, the full output shape with batch.
            expected_output_dtype: dtype of the output in float32 policy.
            expected_num_trainable_weights: int or None (not checked).
            expected_num_non_trainable_weights: int.
            call_kwargs: extra keyword arguments of `call` (e.g. masks).
            run_symbolic_test: call on `KerasTensor`s and check the shape.
            run_gradient_test: every trainable weight gets a non-zero gradient.
            run_mixed_precision_test: run `run_mixed_precision_test` too.
            zero_rows: optional bool array broadcastable to the output shape
                without channels; those rows must be exactly zero in every
                dtype policy (masks).

        Returns:
            (layer, outputs) in float32.
        """
        call_kwargs = call_kwargs or {}
        layer = cls(**init_kwargs)
        outputs = call_with(layer, input_data, **call_kwargs)
        self.assertEqual(tuple(outputs.shape), tuple(expected_output_shape))
        self.assertDtype(outputs, expected_output_dtype)
        self.assertAllFinite(outputs)
        if expected_num_trainable_weights is not None:
            self.assertLen(layer.trainable_weights, expected_num_trainable_weights)
        self.assertLen(layer.non_trainable_weights, expected_num_non_trainable_weights)
        if zero_rows is not None:
            self.assertAllZero(np.asarray(outputs)[np.broadcast_to(zero_rows, outputs.shape[:-1])])

        if run_symbolic_test:
            symbolic_layer = cls(**init_kwargs)
            symbolic_out = call_with(symbolic_layer, symbolic_like(input_data), **symbolic_like(call_kwargs))
            self.assertEqual(tuple(symbolic_out.shape), tuple(expected_output_shape))
            self.assertDtype(symbolic_out, expected_output_dtype)

        restored = self.run_config_round_trip(layer)
        call_with(restored, input_data, **call_kwargs)
        self.assertEqual([tuple(w.shape) for w in restored.weights], [tuple(w.shape) for w in layer.weights])
        restored.set_weights(layer.get_weights())
        self.assertAllClose(call_with(restored, input_data, **call_kwargs), outputs, atol=1e-6)

        if run_gradient_test and layer.trainable_weights:
            self._check_gradients(layer, input_data, call_kwargs)

        if run_mixed_precision_test:
            self.run_mixed_precision_test(
                cls, init_kwargs, input_data, call_kwargs=call_kwargs, zero_rows=zero_rows
            )
        return layer, outputs

    def _check_gradients(self, obj, inputs, call_kwargs=None):
        """Every trainable weight receives a gradient with a non-zero entry."""
        variables = obj.trainable_variables
        with tf.GradientTape() as tape:
            outputs = call_with(obj, inputs, **(call_kwargs or {}))
            weights = tf.random.stateless_normal(tf.shape(outputs), seed=(1, 2), dtype=outputs.dtype)
            loss = tf.reduce_sum(outputs * weights)
        grads = tape.gradient(loss, [v.value for v in variables])
        missing = [v.path for v, g in zip(variables, grads) if g is None]
        self.assertEqual(missing, [], msg=f"no gradient reaches {missing}")
        zero = [v.path for v, g in zip(variables, grads) if not np.any(tf.convert_to_tensor(g).numpy())]
        self.assertEqual(zero, [], msg=f"zero gradient for {zero}")

    def run_mixed_precision_test(
        self,
        cls_or_builder,
        init_kwargs=None,
        inputs=None,
        call_kwargs=None,
        zero_rows=None,
        policies=MIXED_PRECISION_POLICIES,
        tolerances=None,
    ):
        """Outputs under mixed precision are finite, of the compute dtype and close to float32.

        The float32 model's kernels (trainable weights of rank >= 2) are first
        set to O(1) random values (std 1/sqrt(fan-in)), so that what the
        blocks add is of the order of the residual path and a comparison at
        the tolerance sees a block that the half-precision path got wrong.

        Args:
            cls_or_builder: a layer class (built with `init_kwargs` and
                `dtype=policy`) or a function `builder(dtype=policy)` that
                returns a layer or model.
            init_kwargs: constructor arguments when a class is given.
            inputs: inputs, as for `call_with`.
            call_kwargs: extra keyword arguments of the call.
            zero_rows: optional bool mask over the output without channels:
                those rows must be exactly zero in every policy.
            policies: dtype policies to test.
            tolerances: dict policy -> tolerance relative to the largest
                magnitude of the float32 output.
        """
        call_kwargs = call_kwargs or {}
        tolerances = {**MIXED_PRECISION_TOLERANCES, **(tolerances or {})}
        if isinstance(cls_or_builder, type):
            cls = cls_or_builder

            def builder(dtype):
                return cls(**{**(init_kwargs or {}), "dtype": dtype})

        else:
            builder = cls_or_builder
        reference_obj = builder(dtype="float32")
        call_with(reference_obj, inputs, **call_kwargs)  # builds
        # O(1) weights: with the default 0.02 initializers the residual path dominates every output, and a
        # half-precision path that skipped its blocks would still agree within the tolerance.
        rng = np.random.default_rng(0)
        for weight in reference_obj.trainable_weights:
            if len(weight.shape) >= 2:
                scale = 1.0 / np.sqrt(weight.shape[0])
                weight.assign(rng.normal(0.0, scale, size=weight.shape).astype(weight.dtype))
        reference = to_numpy(call_with(reference_obj, inputs, **call_kwargs))
        if zero_rows is not None:
            for ref in tf.nest.flatten(reference):
                self.assertAllZero(ref[np.broadcast_to(zero_rows, ref.shape[:-1])], msg="float32")
        for policy in policies:
            obj = builder(dtype=policy)
            call_with(obj, inputs, **call_kwargs)  # builds
            obj.set_weights(reference_obj.get_weights())
            outputs = call_with(obj, inputs, **call_kwargs)
            compute_dtype = keras.DTypePolicy(policy).compute_dtype
            for out, ref in zip(tf.nest.flatten(outputs), tf.nest.flatten(reference)):
                if not np.issubdtype(ref.dtype, np.floating):
                    continue
                self.assertDtype(out, compute_dtype, msg=f"{policy}: output dtype")
                out = np.asarray(to_numpy(out)).astype("float32")
                self.assertAllFinite(out, msg=f"{policy}: non-finite outputs")
                # Relative to the output's own magnitude, so that small outputs (default
                # initializers) are still compared meaningfully.
                tol = tolerances[policy] * max(float(np.max(np.abs(ref))), 1e-6)
                np.testing.assert_allclose(out, ref, atol=tol, rtol=0, err_msg=f"{policy} vs float32")
                if zero_rows is not None:
                    self.assertAllZero(out[np.broadcast_to(zero_rows, out.shape[:-1])], msg=policy)
        return reference_obj

    def run_model_saving_test(self, model, inputs, atol=1e-6):
        """`.keras` save + `keras.saving.load_model` restore the same class and outputs."""
        expected = model(inputs)
        path = os.path.join(self.make_temp_dir(), "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertIs(type(restored), type(model))
        self.assertEqual(as_json(restored.get_config()), as_json(model.get_config()))
        self.assertOutputsVisible(expected, atol)
        self.assertAllClose(restored(inputs), expected, atol=atol, rtol=0)
        return restored

    def run_predict_on_dataset(self, model, inputs, batch_size=2, atol=2e-5):
        """`model.predict` on a batched `tf.data.Dataset` equals calling the model directly.

        Use a number of examples that is not a multiple of `batch_size` to
        cover the partial last batch. The tolerance is `atol` times max(1,
        the largest |output|): another batch size runs other CPU kernels
        (a masked LM's logits up to ~2 differed by 1.7e-5 on an AMD EPYC).
        """
        dataset = tf.data.Dataset.from_tensor_slices(inputs).batch(batch_size)
        predicted = model.predict(dataset, verbose=0)
        expected = model(inputs)
        self.assertOutputsVisible(expected, atol)
        scale = max([1.0] + [float(np.max(np.abs(x))) for x in tf.nest.flatten(to_numpy(expected)) if x.size])
        self.assertAllClose(predicted, expected, atol=atol * scale, rtol=1e-5)
        return predicted

    def run_distributed_fit_step(self, build_model_fn, inputs, targets, loss, optimizer=None):
        """One `fit` step under `MirroredStrategy(["/cpu:0", "/cpu:1"])`.

        The model is built and compiled inside the strategy scope, its
        variables must be mirrored, the reported loss must be finite and equal
        to the loss of a direct call with the initial weights, and every
        trainable weight must change.

        Args:
            build_model_fn: function of no arguments returning the model.
            inputs, targets: arrays (or dicts of arrays); the number of
                examples is the global batch and must be even.
            loss: a Keras loss (name or instance).
            optimizer: defaults to Adam(1e-3).

        Returns:
            The trained model.
        """
        devices = tf.config.list_logical_devices("CPU")
        self.assertGreaterEqual(len(devices), 2, msg="conftest.py must split the CPU in two")
        strategy = mirrored_strategy()
        self.assertEqual(strategy.num_replicas_in_sync, 2)
        with strategy.scope():
            model = build_model_fn()
            model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), loss=loss)
        for w in model.trainable_weights:
            self.assertIsInstance(w.value, tf.distribute.DistributedValues, msg=w.path)
        num_examples = len(tf.nest.flatten(targets)[0])
        self.assertEqual(num_examples % 2, 0, msg="use an even global batch")
        expected_loss = float(np.mean(keras.losses.get(loss)(targets, model(inputs))))
        names = [w.path for w in model.trainable_weights]
        before = [w.numpy() for w in model.trainable_weights]
        dataset = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(num_examples)
        history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
        losses = history.history["loss"]
        self.assertLen(losses, 1)
        self.assertTrue(np.isfinite(losses[0]), msg=f"loss={losses[0]}")
        self.assertAllClose(losses[0], expected_loss, atol=1e-5, rtol=1e-4)
        self.assertWeightsChange(before, [w.numpy() for w in model.trainable_weights], names)
        return model


# ---------------------------------------------------------------------------------------------
# Self-tests: each helper fails on a layer that breaks the property it checks.


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ScaleForHelperTests(keras.layers.Layer):
    """x * w (+ an optional unused weight), with switchable defects."""

    def __init__(
        self, factor=2.0, unused_weight=False, drop_factor_from_config=False, float32_output=False, **kwargs
    ):
        super().__init__(**kwargs)
        self.factor = factor
        self.unused_weight = unused_weight
        self.drop_factor_from_config = drop_factor_from_config
        self.float32_output = float32_output

    def build(self, x_shape):
        self.w = self.add_weight(shape=(x_shape[-1],), initializer="ones", name="w")
        if self.unused_weight:
            self.unused = self.add_weight(shape=(1,), initializer="ones", name="unused")

    def call(self, x):
        y = x * keras.ops.cast(self.w, self.compute_dtype) * self.factor
        return keras.ops.cast(y, "float32") if self.float32_output else y

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "unused_weight": self.unused_weight,
                "drop_factor_from_config": self.drop_factor_from_config,
                "float32_output": self.float32_output,
            }
        )
        if not self.drop_factor_from_config:
            config["factor"] = self.factor
        return config


class TestCaseHelpersTest(TestCase):
    """The helpers catch what they claim to check."""

    def setUp(self):
        super().setUp()
        self.x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")

    def test_outputs_visible_refuses_outputs_near_zero(self):
        # Outputs of an untrained model with the reference's 0.02 initialization span ~1e-4: a comparison
        # at 1e-5 could not see a dropped mask there.
        near_zero = np.random.default_rng(0).normal(scale=1e-4, size=(3, 5))
        with self.assertRaisesRegex(AssertionError, "too small for a comparison at atol=1e-05"):
            self.assertOutputsVisible(near_zero, atol=1e-5)
        self.assertOutputsVisible({"a": near_zero * 1e5, "b": None}, atol=1e-5)

    def test_layer_test_passes_on_a_correct_layer(self):
        self.run_layer_test(
            ScaleForHelperTests,
            {"factor": 3.0},
            self.x,
            (2, 3, 4),
            expected_num_trainable_weights=1,
            run_mixed_precision_test=False,
        )

    def test_config_round_trip_needs_every_argument(self):
        with self.assertRaisesRegex(AssertionError, "tolerance"):
            self.run_layer_test(
                ScaleForHelperTests,
                {"factor": 3.0, "drop_factor_from_config": True},
                self.x,
                (2, 3, 4),
                run_mixed_precision_test=False,
            )

    def test_config_round_trip_needs_the_project_package(self):
        @keras.saving.register_keras_serializable(package="elsewhere")
        class ScaleElsewhere(ScaleForHelperTests):
            pass

        with self.assertRaisesRegex(AssertionError, "keras_perceiver>"):
            self.run_config_round_trip(ScaleElsewhere())

    def test_layer_test_checks_the_output_shape(self):
        with self.assertRaises(AssertionError):
            self.run_layer_test(ScaleForHelperTests, {}, self.x, (2, 3, 5), run_mixed_precision_test=False)

    def test_gradient_check_finds_unused_weights(self):
        with self.assertRaisesRegex(AssertionError, "unused"):
            self.run_layer_test(
                ScaleForHelperTests,
                {"unused_weight": True},
                self.x,
                (2, 3, 4),
                run_mixed_precision_test=False,
            )

    def test_mixed_precision_checks_the_output_dtype(self):
        self.run_mixed_precision_test(ScaleForHelperTests, {}, self.x)
        with self.assertRaisesRegex(AssertionError, "output dtype"):
            self.run_mixed_precision_test(ScaleForHelperTests, {"float32_output": True}, self.x)

    def test_mixed_precision_checks_zero_rows(self):
        with self.assertRaises(AssertionError):
            self.run_mixed_precision_test(
                ScaleForHelperTests, {}, self.x, zero_rows=np.array([[True, False, False]])
            )
        zeroed = self.x.copy()
        zeroed[:, 0] = 0.0
        self.run_mixed_precision_test(
            ScaleForHelperTests, {}, zeroed, zero_rows=np.array([[True, False, False]])
        )

    def test_mixed_precision_sees_a_skipped_block(self):
        def builder(dtype):
            # x + Dense(x), but under mixed precision the block is skipped (x only): with small (std 0.002)
            # kernels the residual would dominate and hide it.
            inputs = keras.Input((3, 4))
            dense = keras.layers.Dense(
                4, kernel_initializer=keras.initializers.RandomNormal(stddev=0.002), dtype=dtype
            )
            block = dense(inputs)
            outputs = inputs + block if dtype == "float32" else inputs + 0.0 * block
            return keras.Model(inputs, keras.layers.Activation("linear", dtype=dtype)(outputs))

        with self.assertRaisesRegex(AssertionError, "vs float32"):
            self.run_mixed_precision_test(builder, inputs=self.x)

    def test_mixed_precision_compares_with_float32(self):
        def builder(dtype):
            # A different function under mixed precision: factor 2 vs 2.5.
            return ScaleForHelperTests(factor=2.0 if dtype == "float32" else 2.5, dtype=dtype)

        with self.assertRaisesRegex(AssertionError, "vs float32"):
            self.run_mixed_precision_test(builder, inputs=self.x)
