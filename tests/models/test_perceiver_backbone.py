"""Tests of PerceiverBackbone: every argument reaches the layers, outputs, repeated cross-attends, presets."""

import inspect

import keras
import numpy as np
import pytest

from keras_perceiver.models import PerceiverBackbone
from keras_perceiver.models.perceiver_backbone import STACK_ARGUMENTS
from tests.test_case import TestCase

STACK = {
    "num_latents": 4,
    "latent_dim": 8,
    "num_self_attends_per_block": 1,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 2,
}


def _inputs(batch=3, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, 10), bool)
    mask[1, 6:] = False
    return {"inputs": rng.normal(size=(batch, 10, 3)).astype("float32"), "padding_mask": mask}


class PerceiverBackboneTest(TestCase):
    def test_outputs_round_trips_and_padding(self):
        backbone = PerceiverBackbone(input_shape=(10, 3), initializer_range=0.5, **STACK)
        outputs = backbone(_inputs())
        self.assertEqual(tuple(outputs["latents"].shape), (3, 4, 8))
        self.assertAllClose(outputs["encoder_inputs"], _inputs()["inputs"], atol=0)
        changed = _inputs()
        changed["inputs"][1, 6:] = 50.0  # padded: no effect
        self.assertAllClose(backbone(changed)["latents"], outputs["latents"], atol=1e-6)
        self.assertEqual(backbone.get_config()["num_latents"], 4)
        self.run_config_round_trip(backbone)
        self.run_model_saving_test(backbone, _inputs())

    def test_every_config_value_reaches_the_model(self):
        arguments = {
            "input_shape": (7, 4),
            "input_preprocessor": [keras.layers.Dense(8, name="pre"), keras.layers.Dense(6, name="pre_2")],
            "input_name": "points",
            "input_dtype": "float16",
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
            "num_cross_attends": 3,
            "share_cross_attend_weights": False,
            "activation": "gelu_approximate",
            "dropout": 0.25,
            "attention_dropout": 0.125,
            "initializer_range": 0.5,
            "dtype": "float64",
        }
        parameters = set(inspect.signature(PerceiverBackbone.__init__).parameters) - {"self", "kwargs"}
        self.assertEqual(set(arguments), parameters, msg="test every constructor argument")
        self.assertEqual(
            set(STACK_ARGUMENTS)
            | {"input_shape", "input_preprocessor", "input_name", "input_dtype", "dtype"},
            parameters,
        )
        model = PerceiverBackbone(**arguments)
        encoder, processor = model.encoder, model.processor
        self_attends = processor.self_attends
        encoder_attention = encoder.cross_attention.attention
        repeats = [model.get_layer(f"cross_attention_{r}") for r in (1, 2)]
        blocks = [encoder.cross_attention, *repeats, *self_attends]
        checks = {
            "input_shape": model.input["points"].shape[1:] == (7, 4),
            "input_preprocessor": model.input_preprocessors == arguments["input_preprocessor"]
            and encoder._inputs_channels == 6,
            "input_name": set(model.input) == {"points", "padding_mask"},
            "input_dtype": model.input["points"].dtype == "float16",
            "num_latents": tuple(encoder.latents.shape) == (5, 12),
            "latent_dim": self_attends[0].attention.value_dense.kernel.shape[0] == 12,
            "num_blocks": processor.num_blocks == 3,
            "num_self_attends_per_block": len(self_attends) == 2,
            "num_cross_attention_heads": encoder_attention.num_heads == 2
            and repeats[0].attention.num_heads == 2,
            "num_self_attention_heads": all(s.attention.num_heads == 3 for s in self_attends),
            "qk_channels": encoder_attention.qk_channels == 6 and self_attends[1].attention.qk_channels == 6,
            "v_channels": tuple(encoder_attention.value_dense.kernel.shape) == (6, 2, 6),
            "cross_attention_shape_for_attention": all(b.shape_for_attention == "q" for b in blocks[:3]),
            "cross_attention_widening_factor": tuple(encoder.cross_attention.mlp.dense_1.kernel.shape)
            == (12, 24),
            "self_attention_widening_factor": tuple(self_attends[1].mlp.dense_1.kernel.shape) == (12, 36),
            "use_query_residual": all(b.use_query_residual is False for b in blocks[:3]),
            "num_cross_attends": len([layer for layer in model.layers if "cross_attention_" in layer.name])
            == 2,
            "share_cross_attend_weights": repeats[0] is not repeats[1],
            "activation": all(block.mlp.activation == "gelu_approximate" for block in blocks),
            "dropout": all(
                block.dropout == 0.25 and block.mlp.dropout_layer.rate == 0.25 for block in blocks
            ),
            "attention_dropout": all(block.attention.dropout_layer.rate == 0.125 for block in blocks),
            "initializer_range": all(layer.kernel_initializer.stddev == 0.5 for layer in (encoder, processor))
            and encoder.latent_initializer.stddev == 0.5,
            "dtype": all(layer.dtype_policy.name == "float64" for layer in (encoder, processor, *repeats)),
        }
        self.assertEqual(set(checks), parameters)
        failed = [name for name, ok in checks.items() if not ok]
        self.assertEqual(failed, [], msg=f"config values that do not reach the model: {failed}")
        outputs = model({"points": np.ones((2, 7, 4), "float16")})
        self.assertEqual(tuple(outputs["latents"].shape), (2, 5, 12))

    def test_shared_cross_attends_reuse_one_block(self):
        shared = PerceiverBackbone(input_shape=(10, 3), num_cross_attends=4, **STACK)
        separate = PerceiverBackbone(
            input_shape=(10, 3), num_cross_attends=4, share_cross_attend_weights=False, **STACK
        )
        one = PerceiverBackbone(input_shape=(10, 3), **STACK)
        extra = shared.count_params() - one.count_params()
        self.assertGreater(extra, 0)
        self.assertEqual(separate.count_params() - one.count_params(), 3 * extra)

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, r"num_latents=0"):
            PerceiverBackbone(input_shape=(10, 3), **{**STACK, "num_latents": 0})
        with self.assertRaisesRegex(ValueError, r"latent_dim=-4"):
            PerceiverBackbone(input_shape=(10, 3), **{**STACK, "latent_dim": -4})
        with self.assertRaisesRegex(ValueError, r"input_shape=\(\)"):
            PerceiverBackbone(input_shape=(), **STACK)
        with self.assertRaisesRegex(ValueError, r"num_cross_attends=0"):
            PerceiverBackbone(input_shape=(10, 3), num_cross_attends=0, **STACK)
        with self.assertRaisesRegex(ValueError, "Unknown preset 'vision'"):
            PerceiverBackbone.from_preset("vision")


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(PerceiverBackbone.presets))
def test_backbone_presets_build_with_their_parameter_counts(preset):
    backbone = PerceiverBackbone.from_preset(preset)
    trainable = sum(int(np.prod(w.shape)) for w in backbone.trainable_weights)
    assert trainable == PerceiverBackbone.presets[preset]["num_parameters"]
