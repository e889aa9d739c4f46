"""Tests of PerceiverEntityEncoder (entity sets, the paper's StarCraft II setting).

transformers has no entity-set model, so the reference is assembled from its
parts the way its optical-flow model queries with its own inputs: a torch
Linear (the entity projection) -> `PerceiverModel` whose decoder is
`PerceiverOpticalFlowDecoder` (queries = the decoder's inputs; flat output
shape, no rescaling), with the decoder's query/key width set to the latent
width as DeepMind's `BasicDecoder` does (`shape_for_attn="kv"`).
"""

import importlib
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_perceiver.models.perceiver_entity_set import PerceiverEntityEncoder
from tests.models.reference_counts import transformers_config
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


def _transformers_reference(config, num_entities):
    """torch Linear + transformers `PerceiverModel` with a queries-are-inputs decoder, for `config`."""
    import torch
    from transformers.models.perceiver import modeling_perceiver

    c = {**PerceiverEntityEncoder(input_channels=1).get_config(), **config}  # our defaults + config
    reference_config = transformers_config(c, d_model=c["embedding_dim"], hidden_act="gelu")
    decoder = modeling_perceiver.PerceiverOpticalFlowDecoder(
        reference_config,
        output_image_shape=(num_entities,),
        output_num_channels=c["output_channels"],
        rescale_factor=1.0,
        num_channels=c["embedding_dim"],
        qk_channels=c["decoder_qk_channels"] or c["latent_dim"],
        v_channels=c["decoder_v_channels"] or c["decoder_qk_channels"] or c["latent_dim"],
        num_heads=c["decoder_num_heads"],
        widening_factor=c["decoder_widening_factor"],
        use_query_residual=c["decoder_use_query_residual"],
        position_encoding_type="none",
    )

    class EntityReference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.projection = torch.nn.Linear(c["input_channels"], c["embedding_dim"])
            self.perceiver = modeling_perceiver.PerceiverModel(reference_config, decoder=decoder)

        def forward(self, entities, mask):
            return self.perceiver(inputs=self.projection(entities), attention_mask=mask).logits

    return EntityReference()


def test_parity_with_transformers_parts():
    torch = pytest.importorskip("torch")
    convert = importlib.import_module("keras_perceiver.convert.from_transformers")  # its layer loaders

    config = {**TINY, "latent_dim": 24, "num_self_attends_per_block": 2, "decoder_num_heads": 2}
    reference = _transformers_reference(config, num_entities=10)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # O(1) random weights: a harder test than the tiny initial ones
        for name, param in reference.named_parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * (1.0 if "latents" in name else 0.3))
            if "layernorm" in name and name.endswith("weight"):
                param.add_(1.0)
    reference.eval()
    model = PerceiverEntityEncoder(**config)
    weights = {name: p.detach().numpy() for name, p in reference.named_parameters()}
    reader = convert._WeightReader(weights)
    convert._load_dense(model.get_layer("entity_projection"), reader, "projection")
    convert._load_encoder_and_processor(model, reader, "perceiver.")
    decoder, prefix = model.get_layer("decoder"), "perceiver.decoder.decoder"
    convert._load_cross_attention(decoder.cross_attention, reader, f"{prefix}.decoding_cross_attention")
    convert._load_dense(decoder.output_projection, reader, f"{prefix}.final_layer")
    assert not reader.weights, f"unconverted reference weights: {sorted(reader.weights)}"

    inputs = make_inputs()
    with torch.no_grad():
        expected = reference(
            torch.from_numpy(inputs["entities"]), torch.from_numpy(inputs["padding_mask"].astype("float32"))
        ).numpy()
    outputs = np.asarray(model(inputs))
    real = inputs["padding_mask"]  # transformers ignores the decoder query mask; ours zeroes padded rows
    max_diff = float(np.max(np.abs(outputs[real] - expected[real])))
    print(f"entity encoder vs transformers parts: max |keras - torch| = {max_diff:.2e}")
    assert max_diff <= 1e-4
    assert np.all(outputs[~real] == 0)


PRESET = "starcraft_entity_perceiver"


def test_preset_parameter_count_equals_the_transformers_reference():
    torch = pytest.importorskip("torch")
    preset = PerceiverEntityEncoder.presets[PRESET]
    model = PerceiverEntityEncoder.from_preset(PRESET)
    assert model.count_params() == preset["num_parameters"]
    with torch.device("meta"):  # shapes only, no memory
        reference = _transformers_reference(preset["config"], num_entities=512)
    assert sum(p.numel() for p in reference.parameters()) == preset["num_parameters"]
    # Every preset value reaches the built model.
    c = preset["config"]
    assert tuple(model.get_layer("encoder").latents.shape) == (c["num_latents"], c["latent_dim"])
    assert len(model.get_layer("processor").self_attends) == c["num_self_attends_per_block"]
    assert model.get_layer("entity_projection").units == c["embedding_dim"]
    assert model.get_layer("decoder").output_projection.units == c["output_channels"]


def test_preset_cost_matches_the_papers_table_9():
    """The derived latent width: 512 entities cost 0.93B FLOPs (multiply and add counted separately)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    def flops(model):
        function = tf.function(lambda entities: model({"entities": entities}))
        concrete = function.get_concrete_function(tf.TensorSpec((1, 512, 256), tf.float32))
        graph = convert_variables_to_constants_v2(concrete).graph
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        profile = tf.compat.v1.profiler.profile(
            graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options
        )
        return profile.total_float_ops

    preset_flops = flops(PerceiverEntityEncoder.from_preset(PRESET))
    narrower = flops(PerceiverEntityEncoder.from_preset(PRESET, latent_dim=512))
    print(f"{PRESET}: {preset_flops / 1e9:.3f} GFLOPs (paper 0.93); latent_dim 512: {narrower / 1e9:.3f}")
    assert abs(preset_flops / 0.93e9 - 1) < 0.01
    assert abs(narrower / 0.93e9 - 1) > 0.2  # the check can tell widths apart


def test_preset_fits_saves_and_reloads():
    model = PerceiverEntityEncoder.from_preset(PRESET)
    rng = np.random.default_rng(0)
    mask = np.ones((2, 24), "int32")
    mask[1, 20:] = 0  # unused entity slots are masked, as in AlphaStar
    inputs = {"entities": rng.normal(size=(2, 24, 256)).astype("float32"), "padding_mask": mask}
    targets = rng.normal(size=(2, 24, 128)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(inputs, targets, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(np.any(b != w.numpy()) for b, w in zip(before, model.trainable_weights))
    expected = np.asarray(model(inputs))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "entity.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(inputs)), expected, atol=1e-6)
