"""Tests of PerceiverEntityEncoder (entity sets, the paper's StarCraft II setting)."""

import numpy as np

from keras_perceiver.models.perceiver_entity_set import PerceiverEntityEncoder
from tests.test_case import TestCase

TINY = dict(
    input_channels=7,
    embedding_dim=16,
    output_channels=6,
    num_latents=4,
    latent_dim=16,
    num_self_attends_per_block=1,
    num_self_attention_heads=2,
    num_cross_attention_heads=1,
    decoder_num_heads=1,
    self_attention_widening_factor=2,
    initializer_range=0.2,
)


def make_inputs(batch=3, num_entities=10, seed=0, mask_dtype=bool):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, num_entities), bool)
    mask[1, 6:] = False
    mask[2, :3] = False
    return {
        "entities": rng.normal(size=(batch, num_entities, 7)).astype("float32"),
        "padding_mask": mask.astype(mask_dtype),
    }


class PerceiverEntityEncoderTest(TestCase):
    def test_shapes_and_padded_rows(self):
        model = PerceiverEntityEncoder(**TINY)
        inputs = make_inputs()
        outputs = np.asarray(model(inputs))
        self.assertEqual(outputs.shape, (3, 10, 6))
        self.assertAllFinite(outputs)
        self.assertAllZero(outputs[~inputs["padding_mask"]])
        self.assertTrue(np.all(np.abs(outputs[inputs["padding_mask"]]).sum(-1) > 0))
        # The number of entities may change from batch to batch; the mask is optional.
        self.assertEqual(tuple(model({"entities": inputs["entities"][:, :4]}).shape), (3, 4, 6))
        no_projection = PerceiverEntityEncoder(**{**TINY, "output_channels": None})
        self.assertEqual(tuple(no_projection(inputs).shape), (3, 10, 16))
        # Configuration values reach the built layers.
        self.assertEqual(tuple(model.get_layer("encoder").latents.shape), (4, 16))
        self.assertEqual(model.get_layer("entity_projection").units, 16)
        self.assertTrue(model.get_layer("decoder").use_query_residual)

    def test_permutation_equivariance_with_padding(self):
        model = PerceiverEntityEncoder(**TINY)
        inputs = make_inputs()
        outputs = np.asarray(model(inputs))
        rng = np.random.default_rng(5)
        max_diff = 0.0
        for _ in range(3):
            permutation = rng.permutation(10)
            permuted = {k: v[:, permutation] for k, v in inputs.items()}
            permuted_outputs = np.asarray(model(permuted))
            self.assertAllClose(permuted_outputs, outputs[:, permutation], atol=1e-5, rtol=1e-5)
            max_diff = max(max_diff, float(np.max(np.abs(permuted_outputs - outputs[:, permutation]))))
        print(f"permutation equivariance: max |f(P x) - P f(x)| = {max_diff:.2e}")
        # A non-equivariant function fails this check (guards the test itself).
        self.assertGreater(np.max(np.abs(outputs[:, permutation] - outputs)), 1e-3)

    def test_padding_does_not_change_real_entities(self):
        model = PerceiverEntityEncoder(**TINY)
        inputs = make_inputs()
        outputs = np.asarray(model(inputs))
        garbage = np.random.default_rng(9).normal(scale=50.0, size=(3, 5, 7)).astype("float32")
        padded = {
            "entities": np.concatenate([inputs["entities"], garbage], axis=1),
            "padding_mask": np.concatenate([inputs["padding_mask"], np.zeros((3, 5), bool)], axis=1),
        }
        padded_outputs = np.asarray(model(padded))
        self.assertAllClose(padded_outputs[:, :10], outputs, atol=1e-5, rtol=1e-5)
        self.assertAllZero(padded_outputs[:, 10:])

    def test_round_trips_mixed_precision_and_dataset(self):
        model = PerceiverEntityEncoder(**TINY)
        inputs = make_inputs()
        self.run_config_round_trip(model)
        self.run_model_saving_test(model, inputs)
        self.run_predict_on_dataset(model, make_inputs(batch=5), batch_size=2)
        self.run_mixed_precision_test(
            lambda dtype: PerceiverEntityEncoder(**TINY, dtype=dtype),
            inputs=inputs,
            zero_rows=~inputs["padding_mask"],
        )

    def test_distributed_fit_step(self):
        inputs = make_inputs(batch=4, mask_dtype="int32")  # bool tensors fail Keras' distributed build
        targets = np.random.default_rng(3).normal(size=(4, 10, 6)).astype("float32")
        self.run_distributed_fit_step(lambda: PerceiverEntityEncoder(**TINY), inputs, targets, loss="mse")

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "input_channels.*Received: input_channels=0"):
            PerceiverEntityEncoder(**{**TINY, "input_channels": 0})
        with self.assertRaisesRegex(ValueError, "num_latents.*Received: num_latents=-1"):
            PerceiverEntityEncoder(**{**TINY, "num_latents": -1})
        model = PerceiverEntityEncoder(**TINY)
        with self.assertRaisesRegex(ValueError, "entities"):
            model({"entities": np.zeros((2, 5, 8), "float32")})
        with self.assertRaisesRegex(ValueError, "padding_mask"):
            model({"entities": np.zeros((2, 5, 7), "float32"), "padding_mask": np.ones((2, 4), bool)})
