"""Tests of the masked language model: a masked-LM head on a text `PerceiverBackbone`."""

import inspect

import keras
import numpy as np

from keras_perceiver.models import PerceiverBackbone, PerceiverMaskedLM
from keras_perceiver.models.perceiver_backbone import STACK_ARGUMENTS
from keras_perceiver.preprocessors import TextPreprocessor
from tests.test_case import TestCase

TEXT = {"max_sequence_length": 16, "embedding_dim": 8}
STACK = {
    "num_latents": 4,
    "latent_dim": 12,
    "num_self_attends_per_block": 1,
    "num_cross_attention_heads": 2,
    "num_self_attention_heads": 2,
    "qk_channels": 8,
    "v_channels": 12,
}
HEAD = {"decoder_num_cross_attention_heads": 2, "decoder_qk_channels": 4}


def tiny_backbone(dtype=None, initializer_range=0.02, vocab_size=262, **stack):
    preprocessor = TextPreprocessor(
        vocab_size,
        embeddings_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
        dtype=dtype,
        name="text_preprocessor",
        **TEXT,
    )
    return PerceiverBackbone(
        input_shape=(None,),
        input_name="token_ids",
        input_dtype="int32",
        input_preprocessor=preprocessor,
        initializer_range=initializer_range,
        dtype=dtype,
        **{**STACK, **stack},
    )


def build_model(dtype=None, initializer_range=0.02, **head):
    backbone = tiny_backbone(dtype=dtype, initializer_range=initializer_range)
    return PerceiverMaskedLM(backbone, dtype=dtype, **{**HEAD, **head})


def make_inputs(batch=3, length=12, seed=0):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(6, 262, size=(batch, length)).astype("int32")
    padding_mask = np.ones((batch, length), bool)
    padding_mask[1, 7:] = False
    token_ids[~padding_mask] = 0
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def _randomize_output_bias(model, seed=3):
    bias = model.get_layer("output_bias").bias
    bias.assign(np.random.default_rng(seed).normal(size=bias.shape).astype("float32"))


class PerceiverMaskedLMTest(TestCase):
    def test_logits_and_padding(self):
        model = build_model()
        inputs = make_inputs()
        logits = model(inputs).numpy()
        self.assertEqual(logits.shape, (3, 12, 262))
        self.assertAllFinite(logits)
        # Padded tokens never reach the latents, and the decoder queries are positions only.
        changed = {**inputs, "token_ids": inputs["token_ids"].copy()}
        changed["token_ids"][1, 7:] = 100
        self.assertAllClose(model(changed), logits, atol=1e-6)
        changed["token_ids"][1, 0] = 100
        self.assertGreater(np.abs(model(changed).numpy()[1] - logits[1]).max(), 1e-6)

    def test_query_patches_see_the_neighbours_but_not_the_padding(self):
        model = build_model(decoder_query_patch_size=3, initializer_range=0.5)
        inputs = make_inputs()
        logits = np.asarray(model(inputs))
        queries = keras.Model(model.inputs, model.get_layer("query_patch_features").output)
        base = np.asarray(queries(inputs))
        changed = {**inputs, "token_ids": inputs["token_ids"].copy()}
        changed["token_ids"][1, 7:] = 100  # padding: no output moves
        self.assertAllClose(model(changed), logits, atol=1e-6)
        changed["token_ids"][0, 5] = 100  # a real token: the queries at 4, 5, 6 move, no other
        delta = np.abs(np.asarray(queries(changed))[0] - base[0]).max(axis=-1)
        self.assertTrue((delta[4:7] > 1e-6).all(), msg=str(delta))
        np.testing.assert_array_equal(np.delete(delta, [4, 5, 6]), 0.0)

    def test_padding_mask_is_optional(self):
        model = build_model()
        inputs = make_inputs()
        all_real = {**inputs, "padding_mask": np.ones((3, 12), bool)}
        self.assertAllClose(model({"token_ids": inputs["token_ids"]}), model(all_real), atol=1e-6)
        # Shorter sequences than max_sequence_length use the first position embeddings.
        self.assertEqual(tuple(model({"token_ids": inputs["token_ids"][:, :5]}).shape), (3, 5, 262))

    def test_logits_use_the_tied_token_embeddings_and_the_head_bias(self):
        model = build_model()
        _randomize_output_bias(model)
        inputs = make_inputs()
        hidden_model = keras.Model(model.inputs, model.get_layer("decoder").output)
        hidden = hidden_model(inputs).numpy()
        preprocessor = model.get_layer("text_preprocessor")
        self.assertIs(preprocessor, model.backbone.input_preprocessors[0])
        self.assertIsNone(preprocessor.output_bias)  # the backbone carries no masked-LM weight
        bias = model.get_layer("output_bias").bias.numpy()
        expected = hidden @ preprocessor.token_embeddings.numpy().T + bias
        self.assertAllClose(model(inputs), expected, atol=1e-5)
        # No separate output kernel: the embedding table and the head's bias are the vocabulary-sized weights.
        vocab_sized = [w.path for w in model.weights if 262 in tuple(w.shape)]
        self.assertEqual(sorted(vocab_sized), ["output_bias/bias", "text_preprocessor/token_embeddings"])
        self.assertEqual(model.count_params(), model.backbone.count_params() + _head_count(model))

    def test_config_equals_constructor_arguments(self):
        model = build_model()
        config = model.get_config()
        parameters = set(inspect.signature(PerceiverMaskedLM.__init__).parameters) - {"self", "kwargs"}
        self.assertEqual(set(config), parameters | {"name", "trainable"})
        for key, value in HEAD.items():
            self.assertEqual(config[key], value, msg=key)
        self.assertEqual(config["backbone"]["config"]["num_latents"], 4)
        restored = self.run_config_round_trip(model)
        self.assertEqual([tuple(w.shape) for w in restored.weights], [tuple(w.shape) for w in model.weights])
        restored.set_weights(model.get_weights())
        inputs = make_inputs()
        self.assertAllClose(restored(inputs), model(inputs), atol=1e-6)

    def test_saving(self):
        model = build_model(initializer_range=0.5)
        _randomize_output_bias(model)
        self.run_model_saving_test(model, make_inputs())

    def test_mixed_precision(self):
        self.run_mixed_precision_test(build_model, inputs=make_inputs())

    def test_predict_on_dataset(self):
        model = build_model(initializer_range=0.5)  # logits of O(1): a dropped mask would show
        self.run_predict_on_dataset(model, make_inputs(batch=3))
        self.run_predict_on_dataset(model, {"token_ids": make_inputs(batch=3)["token_ids"]})

    def test_distributed_fit_step(self):
        inputs = make_inputs(batch=4)
        # Keras 3.15 averages the first batch over replicas to build the model under a
        # tf.distribute strategy, which fails on bool tensors: the mask goes in as 0/1 ints.
        inputs["padding_mask"] = inputs["padding_mask"].astype("int32")
        targets = np.random.default_rng(1).integers(6, 262, size=(4, 12)).astype("int32")
        self.run_distributed_fit_step(
            build_model,
            inputs,
            targets,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    def test_every_config_value_reaches_the_model(self):
        """Every argument of the flat form (`from_hyperparameters`) and of the head reaches its layer."""
        arguments = {
            "vocab_size": 300,
            "max_sequence_length": 20,
            "embedding_dim": 10,
            "num_latents": 3,
            "latent_dim": 12,
            "num_blocks": 2,
            "num_self_attends_per_block": 3,
            "num_cross_attention_heads": 2,
            "num_self_attention_heads": 3,
            "qk_channels": 6,
            "v_channels": 12,
            "cross_attention_shape_for_attention": "q",
            "cross_attention_widening_factor": 2,
            "self_attention_widening_factor": 3,
            "use_query_residual": False,
            "decoder_num_cross_attention_heads": 5,
            "decoder_qk_channels": 5,
            "decoder_v_channels": 15,
            "decoder_cross_attention_widening_factor": 4,
            "decoder_query_patch_size": 3,
            "activation": "gelu_approximate",
            "dropout": 0.25,
            "attention_dropout": 0.125,
            "initializer_range": 0.5,
            "dtype": "float64",
            "ngram_sizes": (2, 5),
            "num_ngram_buckets": 7,
            "ngram_embedding_dim": 4,
        }
        head = set(inspect.signature(PerceiverMaskedLM.__init__).parameters) - {"self", "kwargs", "backbone"}
        flat = set(inspect.signature(PerceiverMaskedLM.from_hyperparameters).parameters) - {"stack", "name"}
        self.assertLessEqual(head | flat, set(arguments), msg="test every head and flat argument")
        self.assertLessEqual(set(arguments), head | flat | set(STACK_ARGUMENTS))
        model = PerceiverMaskedLM.from_hyperparameters(**arguments)
        encoder, processor, decoder = (model.get_layer(n) for n in ("encoder", "processor", "decoder"))
        preprocessor = model.get_layer("text_preprocessor")
        self_attends = processor.self_attends
        encoder_attention = encoder.cross_attention.attention
        decoder_attention = decoder.cross_attention.attention
        blocks = [encoder.cross_attention, decoder.cross_attention, *self_attends]
        checks = {
            "vocab_size": tuple(preprocessor.token_embeddings.shape) == (300, 10),
            "ngram_sizes": preprocessor.ngram_embedding.ngram_sizes == (2, 5),
            "num_ngram_buckets": all(
                tuple(t.embeddings.shape) == (7, 4) for t in preprocessor.ngram_embedding.tables
            ),
            "ngram_embedding_dim": tuple(preprocessor.ngram_embedding.projection.kernel.shape) == (8, 10),
            "max_sequence_length": tuple(preprocessor.position_embeddings.shape) == (20, 10)
            and tuple(model.get_layer("decoder_queries").position_embeddings.shape) == (20, 10),
            "embedding_dim": encoder._inputs_channels == 10,
            "num_latents": tuple(encoder.latents.shape) == (3, 12),
            "latent_dim": self_attends[0].attention.value_dense.kernel.shape[0] == 12,
            "num_blocks": processor.num_blocks == 2,
            "num_self_attends_per_block": len(self_attends) == 3,
            "num_cross_attention_heads": encoder_attention.num_heads == 2,
            "num_self_attention_heads": all(s.attention.num_heads == 3 for s in self_attends),
            "qk_channels": encoder_attention.qk_channels == 6 and self_attends[2].attention.qk_channels == 6,
            "v_channels": tuple(encoder_attention.value_dense.kernel.shape) == (10, 2, 6),
            "cross_attention_shape_for_attention": encoder.cross_attention.shape_for_attention == "q",
            "cross_attention_widening_factor": tuple(encoder.cross_attention.mlp.dense_1.kernel.shape)
            == (12, 24),
            "self_attention_widening_factor": tuple(self_attends[1].mlp.dense_1.kernel.shape) == (12, 36),
            "use_query_residual": encoder.cross_attention.use_query_residual is False,
            "decoder_num_cross_attention_heads": decoder_attention.num_heads == 5,
            "decoder_qk_channels": tuple(decoder_attention.query_dense.kernel.shape) == (10, 5, 1),
            "decoder_v_channels": tuple(decoder_attention.value_dense.kernel.shape) == (12, 5, 3),
            "decoder_cross_attention_widening_factor": tuple(decoder.cross_attention.mlp.dense_1.kernel.shape)
            == (10, 40),
            "decoder_query_patch_size": tuple(model.get_layer("query_patches").kernel.shape) == (3, 10, 10),
            "activation": all(block.mlp.activation == "gelu_approximate" for block in blocks),
            "dropout": all(
                block.dropout == 0.25 and block.mlp.dropout_layer.rate == 0.25 for block in blocks
            ),
            "attention_dropout": all(block.attention.dropout_layer.rate == 0.125 for block in blocks),
            "initializer_range": all(
                layer.kernel_initializer.stddev == 0.5 for layer in (encoder, processor, decoder)
            )
            and encoder.latent_initializer.stddev == 0.5
            and preprocessor.embeddings_initializer.stddev == 0.5
            and preprocessor.ngram_embedding.embeddings_initializer.stddev == 0.5
            and model.get_layer("decoder_queries").initializer.stddev == 0.5
            and model.get_layer("query_patches").kernel_initializer.stddev == 0.5,
            "dtype": all(
                layer.dtype_policy.name == "float64"
                for layer in (
                    preprocessor,
                    encoder,
                    processor,
                    decoder,
                    model.get_layer("decoder_queries"),
                    model.get_layer("query_patches"),
                )
            )
            and preprocessor.ngram_embedding.dtype_policy.name == "float64",
        }
        self.assertEqual(set(checks), set(arguments))
        failed = [name for name, ok in checks.items() if not ok]
        self.assertEqual(failed, [], msg=f"config values that do not reach the model: {failed}")
        # The reference's language decoder: HF semantics, no query residual, no output projection.
        self.assertFalse(decoder.cross_attention.use_query_residual)
        self.assertIsNone(decoder.output_projection)
        self.assertEqual(decoder.query_mask_mode, "ignore")
        token_ids = np.full((2, 20), 299, "int32")
        self.assertEqual(tuple(model({"token_ids": token_ids}).shape), (2, 20, 300))

    def test_flat_form_keeps_the_version_1_layout(self):
        """`from_hyperparameters` puts the output bias in the preprocessor (files saved before the split)."""
        model = PerceiverMaskedLM.from_hyperparameters(**TEXT, **STACK, **HEAD)
        preprocessor = model.get_layer("text_preprocessor")
        self.assertTrue(preprocessor.use_output_bias)
        self.assertNotIn("output_bias", [layer.name for layer in model.layers])
        vocab_sized = sorted(w.path for w in model.weights if 262 in tuple(w.shape))
        self.assertEqual(vocab_sized, ["text_preprocessor/output_bias", "text_preprocessor/token_embeddings"])
        self.assertEqual(model.count_params(), build_model().count_params())  # the same weights, elsewhere
        wide = PerceiverMaskedLM.from_hyperparameters(**TEXT, **STACK, **HEAD, initializer_range=0.5)
        self.run_model_saving_test(wide, make_inputs())

    def test_language_perceiver_preset_parameter_count(self):
        preset = PerceiverMaskedLM.presets["language_perceiver"]
        self.assertIn("description", preset)
        self.assertEqual(preset["backbone"], "language_perceiver")
        # transformers' PerceiverForMaskedLM(deepmind/language-perceiver) has 201,108,230 parameters.
        self.assertEqual(preset["num_parameters"], 201_108_230)
        model = PerceiverMaskedLM.from_preset("language_perceiver")
        self.assertEqual(model.count_params(), 201_108_230)
        self.assertEqual(
            model.backbone.count_params(), PerceiverBackbone.presets["language_perceiver"]["num_parameters"]
        )
        self.assertEqual(
            {k: v for k, v in model.get_config().items() if k in preset["config"]}, preset["config"]
        )
        # The constructor defaults are the published head.
        parameters = inspect.signature(PerceiverMaskedLM.__init__).parameters
        self.assertEqual({k: parameters[k].default for k in preset["config"]}, preset["config"])

    def test_sentencepiece_preset_parameter_count_equals_transformers(self):
        from tests.models.reference_counts import preset_hyperparameters, transformers_text_parameter_count

        name = "language_perceiver_sentencepiece"
        preset = PerceiverMaskedLM.presets[name]
        expected = transformers_text_parameter_count(
            "PerceiverForMaskedLM", preset_hyperparameters(PerceiverMaskedLM, name)
        )
        self.assertEqual(preset["num_parameters"], expected)
        model = PerceiverMaskedLM.from_preset(name)
        self.assertEqual(model.count_params(), expected)
        self.assertEqual(model.backbone.count_params(), PerceiverBackbone.presets[name]["num_parameters"])
        config = model.get_config()
        self.assertEqual({k: v for k, v in config.items() if k in preset["config"]}, preset["config"])

    def test_from_preset_with_weights_and_overrides(self):
        model = build_model()
        path = self.make_temp_dir() + "/tiny.weights.h5"
        model.save_weights(path)
        tiny_backbone_preset = {
            "description": "tiny",
            "num_parameters": model.backbone.count_params(),
            "config": model.backbone.get_config(),
        }
        tiny_preset = {
            "description": "tiny",
            "num_parameters": model.count_params(),
            "backbone": "tiny_text",
            "config": HEAD,
        }
        for cls, name, entry in (
            (PerceiverBackbone, "tiny_text", tiny_backbone_preset),
            (PerceiverMaskedLM, "tiny", tiny_preset),
        ):
            original = cls.presets
            cls.presets = {**original, name: entry}
            self.addCleanup(setattr, cls, "presets", original)
        restored = PerceiverMaskedLM.from_preset("tiny", weights=path)
        inputs = make_inputs()
        self.assertAllClose(restored(inputs), model(inputs), atol=1e-6)
        overridden = PerceiverMaskedLM.from_preset("tiny", num_blocks=2, decoder_qk_channels=8)
        self.assertEqual(overridden.backbone.get_config()["num_blocks"], 2)
        self.assertEqual(overridden.get_config()["decoder_qk_channels"], 8)
        with self.assertRaisesRegex(
            ValueError,
            r"Unknown preset 'nope' for PerceiverMaskedLM\. Expected one of \[.*'language_perceiver'",
        ):
            PerceiverMaskedLM.from_preset("nope")

    def test_bad_token_ids_name_expected_and_received_values(self):
        model = build_model()
        inputs = make_inputs()
        with self.assertRaisesRegex(
            TypeError, r"`token_ids` must be an integer tensor.*Received: dtype=float32"
        ):
            model.get_layer("text_preprocessor")(inputs["token_ids"].astype("float32"))
        bad = inputs["token_ids"].copy()
        bad[0, 0] = 262
        with self.assertRaisesRegex(
            ValueError, r"token ids must lie in \[0, 262\)\. Received: min=0, max=262"
        ):
            model({"token_ids": bad})
        with self.assertRaisesRegex(ValueError, r"17 tokens exceed max_sequence_length=16"):
            model({"token_ids": np.ones((2, 17), "int32")})
        with self.assertRaisesRegex(ValueError, r"embedding_dim=0"):
            PerceiverMaskedLM.from_hyperparameters(**{**TEXT, "embedding_dim": 0}, **STACK)
        with self.assertRaisesRegex(ValueError, r"max_sequence_length=0"):
            PerceiverMaskedLM.from_hyperparameters(**{**TEXT, "max_sequence_length": 0}, **STACK)

    def test_backbone_errors(self):
        with self.assertRaisesRegex(TypeError, "PerceiverBackbone.*Received: dict"):
            PerceiverMaskedLM({"num_latents": 4})
        no_text = PerceiverBackbone(input_shape=(10, 3), **STACK)
        with self.assertRaisesRegex(
            ValueError, r"must be a `TextPreprocessor`.*Received: input_preprocessor=None"
        ):
            PerceiverMaskedLM(no_text)


def _head_count(model):
    """Parameters of the masked-LM head: decoder queries, decoder, output bias."""
    return sum(model.get_layer(name).count_params() for name in ("decoder_queries", "decoder", "output_bias"))
