"""Tests of the generic Perceiver IO model."""

import inspect

import keras
import numpy as np

from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.perceiver_io import PerceiverIO
from tests.test_case import TestCase

TINY = {
    "input_shape": (10, 3),
    "num_latents": 4,
    "latent_dim": 8,
    "num_self_attends_per_block": 1,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 2,
    "output_channels": 5,
}


def build_model(dtype=None, num_queries=3, **overrides):
    queries = TrainableQueries(num_queries, 6, dtype=dtype, name="queries")
    return PerceiverIO(**{**TINY, "query_builder": queries, "dtype": dtype, **overrides})


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
        model = PerceiverIO(**TINY)
        latents = model({"inputs": make_inputs()["inputs"]})
        self.assertEqual(tuple(latents.shape), (3, 4, 8))
        self.assertIsNone(model.get_config()["query_builder"])

    def test_unknown_input_length(self):
        model = build_model(input_shape=(None, 3))
        inputs = make_inputs()
        self.assertEqual(tuple(model(inputs).shape), (3, 3, 5))
        self.assertEqual(tuple(model({"inputs": inputs["inputs"][:, :7]}).shape), (3, 3, 5))

    def test_config_equals_constructor_arguments(self):
        arguments = {**TINY, "num_blocks": 2, "query_mask_mode": "ignore", "dropout": 0.1}
        model = PerceiverIO(**arguments)
        config = model.get_config()
        parameters = set(inspect.signature(PerceiverIO.__init__).parameters) - {"self", "kwargs"}
        self.assertEqual(set(config), parameters | {"name", "trainable"})
        for key, value in arguments.items():
            self.assertEqual(config[key], value, msg=key)
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
        arguments = {
            "input_shape": (7, 4),
            "num_latents": 5,
            "latent_dim": 12,
            "num_blocks": 3,
            "num_self_attends_per_block": 2,
            "num_cross_attention_heads": 2,
            "num_self_attention_heads": 3,
            "qk_channels": 6,
            "v_channels": 12,
            "cross_attention_shape_for_attention": "q",
            "cross_attention_widening_factor": 2,
            "self_attention_widening_factor": 3,
            "use_query_residual": False,
            "decoder_num_heads": 2,
            "decoder_qk_channels": 4,
            "decoder_v_channels": 2,
            "decoder_widening_factor": 4,
            "decoder_use_query_residual": True,
            "output_channels": 9,
            "query_mask_mode": "ignore",
            "activation": "gelu_approximate",
            "dropout": 0.25,
            "attention_dropout": 0.125,
            "initializer_range": 0.5,
            "preprocessor": keras.layers.Dense(8, name="pre"),
            "query_builder": TrainableQueries(3, 6, name="queries"),
            "postprocessor": keras.layers.Dense(2, name="head"),
            "input_dtype": "float16",
            "use_query_mask": True,
            "use_output_indices": True,
            "dtype": "float64",
        }
        parameters = set(inspect.signature(PerceiverIO.__init__).parameters) - {"self", "kwargs"}
        self.assertEqual(set(arguments), parameters, msg="test every constructor argument")
        model = PerceiverIO(**arguments)
        encoder, processor, decoder = (model.get_layer(n) for n in ("encoder", "processor", "decoder"))
        self_attends = processor.self_attends
        encoder_attention = encoder.cross_attention.attention
        decoder_attention = decoder.cross_attention.attention
        checks = {
            "input_shape": model.inputs[0].shape[1:] == (7, 4) and encoder._inputs_channels == 8,
            "num_latents": tuple(encoder.latents.shape) == (5, 12),
            "latent_dim": self_attends[0].attention.value_dense.kernel.shape[0] == 12,
            "num_blocks": processor.num_blocks == 3,
            "num_self_attends_per_block": len(self_attends) == 2,
            "num_cross_attention_heads": encoder_attention.num_heads == 2,
            "num_self_attention_heads": all(s.attention.num_heads == 3 for s in self_attends),
            "qk_channels": encoder_attention.qk_channels == 6 and self_attends[1].attention.qk_channels == 6,
            "v_channels": tuple(encoder_attention.value_dense.kernel.shape) == (8, 2, 6),
            "cross_attention_shape_for_attention": encoder.cross_attention.shape_for_attention == "q",
            "cross_attention_widening_factor": tuple(encoder.cross_attention.mlp.dense_1.kernel.shape)
            == (12, 24),
            "self_attention_widening_factor": tuple(self_attends[1].mlp.dense_1.kernel.shape) == (12, 36),
            "use_query_residual": encoder.cross_attention.use_query_residual is False,
            "decoder_num_heads": decoder_attention.num_heads == 2,
            "decoder_qk_channels": tuple(decoder_attention.query_dense.kernel.shape) == (6, 2, 2),
            "decoder_v_channels": tuple(decoder_attention.value_dense.kernel.shape) == (12, 2, 1),
            "decoder_widening_factor": tuple(decoder.cross_attention.mlp.dense_1.kernel.shape) == (6, 24),
            "decoder_use_query_residual": decoder.cross_attention.use_query_residual is True,
            "output_channels": tuple(decoder.output_projection.kernel.shape) == (6, 9),
            "query_mask_mode": decoder.query_mask_mode == "ignore",
            "activation": all(
                block.mlp.activation == "gelu_approximate"
                for block in [encoder.cross_attention, decoder.cross_attention, *self_attends]
            ),
            "dropout": all(
                block.dropout == 0.25 and block.mlp.dropout_layer.rate == 0.25
                for block in [encoder.cross_attention, decoder.cross_attention, *self_attends]
            ),
            "attention_dropout": all(
                block.attention.dropout_layer.rate == 0.125
                for block in [encoder.cross_attention, decoder.cross_attention, *self_attends]
            ),
            "preprocessor": model.get_layer("pre") is arguments["preprocessor"],
            "query_builder": model.get_layer("queries") is arguments["query_builder"],
            "postprocessor": model.get_layer("head") is arguments["postprocessor"],
            "input_dtype": model.input["inputs"].dtype == "float16",
            "use_query_mask": "query_mask" in model.input,
            "use_output_indices": "output_indices" in model.input,
            "initializer_range": all(
                layer.kernel_initializer.stddev == 0.5 for layer in (encoder, processor, decoder)
            )
            and encoder.latent_initializer.stddev == 0.5,
            "dtype": all(layer.dtype_policy.name == "float64" for layer in (encoder, processor, decoder)),
        }
        self.assertEqual(set(checks), parameters)
        failed = [name for name, ok in checks.items() if not ok]
        self.assertEqual(failed, [], msg=f"config values that do not reach the model: {failed}")
        outputs = model(
            {
                "inputs": np.ones((2, 7, 4), "float16"),
                "query_mask": np.ones((2, 3), bool),
                "output_indices": np.zeros((2, 3), "int32"),
            }
        )
        self.assertEqual(tuple(outputs.shape), (2, 3, 2))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, r"num_latents=0"):
            PerceiverIO(**{**TINY, "num_latents": 0})
        with self.assertRaisesRegex(ValueError, r"latent_dim=-4"):
            PerceiverIO(**{**TINY, "latent_dim": -4})
        with self.assertRaisesRegex(ValueError, r"input_shape=\(\)"):
            PerceiverIO(**{**TINY, "input_shape": ()})
        with self.assertRaisesRegex(ValueError, r"use_query_mask=True.*query_builder=None"):
            PerceiverIO(**TINY, use_query_mask=True)
        with self.assertRaisesRegex(ValueError, r"query_mask_mode.*Received: query_mask_mode='zeros'"):
            build_model(query_mask_mode="zeros")

    def test_bad_inputs_name_expected_and_received_values(self):
        model = build_model()
        inputs = make_inputs()
        with self.assertRaisesRegex(
            ValueError, r"padding_mask.*expected shape=\(None, 10\), found shape=\(3, 9\)"
        ):
            model({**inputs, "padding_mask": inputs["padding_mask"][:, :9]})
