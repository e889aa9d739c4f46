"""Tests of the generic Perceiver IO model."""

import inspect

import keras
import numpy as np

from keras_perceiver.layers import TrainableQueries
from keras_perceiver.models import PerceiverBackbone, PerceiverIO
from tests.test_case import TestCase

STACK = {
    "num_latents": 4,
    "latent_dim": 8,
    "num_self_attends_per_block": 1,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 2,
}


def tiny_backbone(input_shape=(10, 3), dtype=None, **overrides):
    return PerceiverBackbone(input_shape=input_shape, dtype=dtype, **{**STACK, **overrides})


def build_model(
    dtype=None, num_queries=3, input_shape=(10, 3), initializer_range=0.02, preprocessor=None, **head
):
    """A PerceiverIO with `num_queries` learned queries decoded to 5 channels."""
    backbone = tiny_backbone(
        input_shape, dtype=dtype, initializer_range=initializer_range, input_preprocessor=preprocessor
    )
    queries = TrainableQueries(num_queries, 6, dtype=dtype, name="queries")
    head = {"query_builder": queries, "decoder_output_channels": 5, **head}
    return PerceiverIO(backbone, dtype=dtype, **head)


def make_inputs(batch=3, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, 10), bool)
    mask[1, 6:] = False
    return {"inputs": rng.normal(size=(batch, 10, 3)).astype("float32"), "padding_mask": mask}


class PerceiverIOTest(TestCase):
    def test_outputs_and_padding(self):
        model = build_model(initializer_range=0.5)  # outputs well above float32 round-off
        inputs = make_inputs()
        outputs = model(inputs).numpy()
        self.assertEqual(outputs.shape, (3, 3, 5))
        self.assertAllFinite(outputs)
        changed = {**inputs, "inputs": inputs["inputs"].copy()}
        changed["inputs"][1, 6:] = 50.0
        self.assertAllClose(model(changed), outputs, atol=1e-6)
        changed["inputs"][1, 0] = 50.0
        self.assertGreater(np.abs(model(changed).numpy()[1] - outputs[1]).max(), 1e-6)

    def test_predict_on_an_empty_batch(self):
        # Keras' own predict loop ends in an UnboundLocalError without a batch; the task models return empty
        # outputs of the right shape.
        model = build_model()
        empty = {"inputs": np.zeros((0, 10, 3), "float32"), "padding_mask": np.zeros((0, 10), bool)}
        self.assertEqual(model.predict(empty, verbose=0).shape, (0, 3, 5))
        self.assertEqual(model.predict({"inputs": empty["inputs"]}, verbose=0).shape, (0, 3, 5))
        self.assertEqual(model.predict(make_inputs(batch=2), verbose=0).shape, (2, 3, 5))

    def test_padding_mask_is_optional(self):
        model = build_model()
        inputs = make_inputs()
        all_real = {**inputs, "padding_mask": np.ones((3, 10), bool)}
        self.assertAllClose(model({"inputs": inputs["inputs"]}), model(all_real), atol=1e-6)
        self.assertFalse(np.allclose(model({"inputs": inputs["inputs"]}), model(inputs), atol=1e-7))

    def test_without_query_builder_returns_latents(self):
        model = PerceiverIO(tiny_backbone())
        latents = model({"inputs": make_inputs()["inputs"]})
        self.assertEqual(tuple(latents.shape), (3, 4, 8))
        self.assertIsNone(model.get_config()["query_builder"])
        self.assertAllClose(latents, model.backbone({"inputs": make_inputs()["inputs"]})["latents"], atol=0)

    def test_unknown_input_length(self):
        model = build_model(input_shape=(None, 3))
        inputs = make_inputs()
        self.assertEqual(tuple(model(inputs).shape), (3, 3, 5))
        self.assertEqual(tuple(model({"inputs": inputs["inputs"][:, :7]}).shape), (3, 3, 5))

    def test_config_equals_constructor_arguments(self):
        arguments = {"query_mask_mode": "ignore", "decoder_num_cross_attention_heads": 2}
        model = PerceiverIO(tiny_backbone(num_blocks=2, dropout=0.1), **arguments)
        config = model.get_config()
        parameters = set(inspect.signature(PerceiverIO.__init__).parameters) - {"self", "kwargs"}
        self.assertEqual(set(config), parameters | {"name", "trainable"})
        for key, value in arguments.items():
            self.assertEqual(config[key], value, msg=key)
        self.assertEqual(config["backbone"]["config"]["num_blocks"], 2)
        self.assertEqual(config["backbone"]["config"]["dropout"], 0.1)
        restored = self.run_config_round_trip(model)
        self.assertEqual([tuple(w.shape) for w in restored.weights], [tuple(w.shape) for w in model.weights])

    def test_config_round_trip_with_layer_arguments(self):
        model = build_model(
            preprocessor=keras.layers.Dense(5, name="pre"), postprocessor=keras.layers.Dense(2, name="post")
        )
        restored = self.run_config_round_trip(model)
        self.assertIsInstance(restored.get_layer("queries"), TrainableQueries)
        self.assertEqual(restored.get_layer("pre").units, 5)
        self.assertEqual(restored.get_layer("post").units, 2)
        restored.set_weights(model.get_weights())
        inputs = make_inputs()
        self.assertAllClose(restored(inputs), model(inputs), atol=1e-6)

    def test_saving(self):
        query_mask = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], bool)
        self.run_model_saving_test(
            build_model(use_query_mask=True, initializer_range=0.5),
            {**make_inputs(), "query_mask": query_mask},
        )

    def test_mixed_precision(self):
        self.run_mixed_precision_test(build_model, inputs=make_inputs())

    def test_predict_on_dataset(self):
        model = build_model(initializer_range=0.5)  # outputs of O(1): a dropped mask would show
        self.run_predict_on_dataset(model, make_inputs(batch=3))
        # A dataset without the optional padding mask.
        self.run_predict_on_dataset(model, {"inputs": make_inputs(batch=3)["inputs"]})

    def test_distributed_fit_step(self):
        inputs = make_inputs(batch=4)
        # Keras 3.15 averages the first batch over replicas to build the model under a
        # tf.distribute strategy, which fails on bool tensors: the mask goes in as 0/1 ints.
        inputs["padding_mask"] = inputs["padding_mask"].astype("int32")
        targets = np.random.default_rng(1).normal(size=(4, 3, 5)).astype("float32")
        self.run_distributed_fit_step(build_model, inputs, targets, loss="mean_squared_error")

    def test_query_mask(self):
        query_mask = np.array([[1, 1, 0], [0, 0, 0], [1, 1, 1]], bool)
        zero = build_model(use_query_mask=True)
        inputs = make_inputs()
        unmasked = zero({**inputs, "query_mask": np.ones((3, 3), bool)}).numpy()
        masked = zero({**inputs, "query_mask": query_mask}).numpy()
        self.assertAllZero(masked[~query_mask])
        self.assertFalse(np.any(np.all(unmasked[~query_mask] == 0, axis=-1)))
        self.assertAllClose(masked[query_mask], unmasked[query_mask], atol=1e-6)
        ignore = build_model(use_query_mask=True, query_mask_mode="ignore")
        self.assertAllClose(
            ignore({**inputs, "query_mask": query_mask}),
            ignore({**inputs, "query_mask": np.ones((3, 3), bool)}),
            atol=0,
        )

    def test_output_indices_decode_a_subset_of_the_queries(self):
        model = build_model(num_queries=6, use_output_indices=True)
        inputs = make_inputs()
        everything = np.tile(np.arange(6, dtype="int32"), (3, 1))
        full = model({**inputs, "output_indices": everything}).numpy()
        self.assertEqual(full.shape, (3, 6, 5))
        indices = np.array([[5, 0], [2, 2], [1, 4]], "int32")
        subset = model({**inputs, "output_indices": indices}).numpy()
        self.assertAllClose(subset, np.take_along_axis(full, indices[..., None], axis=1), atol=1e-6)

    def test_every_config_value_reaches_the_model(self):
        """Every head argument reaches the built model (backbone arguments: test_perceiver_backbone.py)."""
        backbone = tiny_backbone(
            (7, 4), input_preprocessor=keras.layers.Dense(8, name="pre"), latent_dim=12, dtype="float64"
        )
        arguments = {
            "backbone": backbone,
            "query_builder": TrainableQueries(3, 6, name="queries"),
            "postprocessor": keras.layers.Dense(2, name="head"),
            "decoder_num_cross_attention_heads": 2,
            "decoder_qk_channels": 4,
            "decoder_v_channels": 2,
            "decoder_cross_attention_widening_factor": 4,
            "decoder_use_query_residual": True,
            "decoder_output_channels": 9,
            "query_mask_mode": "ignore",
            "use_query_mask": True,
            "use_output_indices": True,
            "dtype": "float64",
        }
        parameters = set(inspect.signature(PerceiverIO.__init__).parameters) - {"self", "kwargs"}
        self.assertEqual(set(arguments), parameters, msg="test every constructor argument")
        model = PerceiverIO(**arguments)
        decoder = model.get_layer("decoder")
        decoder_attention = decoder.cross_attention.attention
        checks = {
            "backbone": model.backbone is backbone and model.get_layer("encoder") is backbone.encoder,
            "query_builder": model.get_layer("queries") is arguments["query_builder"],
            "postprocessor": model.get_layer("head") is arguments["postprocessor"],
            "decoder_num_cross_attention_heads": decoder_attention.num_heads == 2,
            "decoder_qk_channels": tuple(decoder_attention.query_dense.kernel.shape) == (6, 2, 2),
            "decoder_v_channels": tuple(decoder_attention.value_dense.kernel.shape) == (12, 2, 1),
            "decoder_cross_attention_widening_factor": tuple(decoder.cross_attention.mlp.dense_1.kernel.shape)
            == (6, 24),
            "decoder_use_query_residual": decoder.cross_attention.use_query_residual is True,
            "decoder_output_channels": tuple(decoder.output_projection.kernel.shape) == (6, 9),
            "query_mask_mode": decoder.query_mask_mode == "ignore",
            "use_query_mask": "query_mask" in model.input,
            "use_output_indices": "output_indices" in model.input,
            "dtype": decoder.dtype_policy.name == "float64",
        }
        self.assertEqual(set(checks), parameters)
        failed = [name for name, ok in checks.items() if not ok]
        self.assertEqual(failed, [], msg=f"config values that do not reach the model: {failed}")
        outputs = model(
            {
                "inputs": np.ones((2, 7, 4), "float32"),
                "query_mask": np.ones((2, 3), bool),
                "output_indices": np.zeros((2, 3), "int32"),
            }
        )
        self.assertEqual(tuple(outputs.shape), (2, 3, 2))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, r"use_query_mask=True.*query_builder=None"):
            PerceiverIO(tiny_backbone(), use_query_mask=True)
        with self.assertRaisesRegex(TypeError, r"PerceiverBackbone.*Received: NoneType"):
            PerceiverIO(None)
        with self.assertRaisesRegex(ValueError, r"query_mask_mode.*Received: query_mask_mode='zeros'"):
            build_model(query_mask_mode="zeros")

    def test_bad_inputs_name_expected_and_received_values(self):
        model = build_model()
        inputs = make_inputs()
        with self.assertRaisesRegex(
            ValueError, r"`padding_mask` must have shape \(B, 10\).*Received: padding_mask.shape=\(3, 9\)"
        ):
            model({**inputs, "padding_mask": inputs["padding_mask"][:, :9]})
