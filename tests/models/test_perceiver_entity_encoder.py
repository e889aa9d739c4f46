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

from keras_perceiver.models import PerceiverBackbone, PerceiverEntityEncoder
from keras_perceiver.models.perceiver_backbone import STACK_ARGUMENTS, truncated_normal
from keras_perceiver.models.perceiver_entity_encoder import ENTITY_STACK
from tests.models.reference_counts import transformers_config
from tests.test_case import TestCase

STACK = dict(
    num_latents=4,
    latent_dim=16,
    num_blocks=1,
    num_self_attends_per_block=1,
    num_cross_attention_heads=1,
    num_self_attention_heads=2,
    self_attention_widening_factor=2,
)
HEAD = dict(output_channels=6, decoder_num_cross_attention_heads=1)
# The same model as one flat argument list (`from_hyperparameters`, the form before the split).
FLAT = dict(STACK, **HEAD, input_channels=7, embedding_dim=16, initializer_range=0.2)


def tiny(input_channels=7, embedding_dim=16, dtype=None, initializer_range=0.2, stack=None, **head):
    """A small entity encoder: Dense(embedding_dim) entity projection backbone + the per-entity head."""
    projection = keras.layers.Dense(
        embedding_dim,
        kernel_initializer=truncated_normal(initializer_range),
        dtype=dtype,
        name="entity_projection",
    )
    backbone = PerceiverBackbone(
        input_shape=(None, input_channels),
        input_name="entities",
        input_preprocessor=projection,
        initializer_range=initializer_range,
        dtype=dtype,
        **{**STACK, **(stack or {})},
    )
    return PerceiverEntityEncoder(backbone, **{**HEAD, **head}, dtype=dtype)


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
        model = tiny()
        inputs = make_inputs()
        outputs = np.asarray(model(inputs))
        self.assertEqual(outputs.shape, (3, 10, 6))
        self.assertAllFinite(outputs)
        self.assertAllZero(outputs[~inputs["padding_mask"]])
        self.assertTrue(np.all(np.abs(outputs[inputs["padding_mask"]]).sum(-1) > 0))
        # The number of entities may change from batch to batch; the mask is optional.
        self.assertEqual(tuple(model({"entities": inputs["entities"][:, :4]}).shape), (3, 4, 6))
        no_projection = tiny(output_channels=None)
        self.assertEqual(tuple(no_projection(inputs).shape), (3, 10, 16))
        # Configuration values reach the built layers.
        self.assertEqual(tuple(model.get_layer("encoder").latents.shape), (4, 16))
        self.assertEqual(model.get_layer("entity_projection").units, 16)
        self.assertTrue(model.get_layer("decoder").use_query_residual)

    def test_permutation_equivariance_with_padding(self):
        model = tiny()
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
        model = tiny()
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
        model = tiny()
        inputs = make_inputs()
        self.run_config_round_trip(model)
        self.run_model_saving_test(model, inputs)
        self.run_predict_on_dataset(model, make_inputs(batch=5), batch_size=2)
        self.run_mixed_precision_test(
            lambda dtype: tiny(dtype=dtype),
            inputs=inputs,
            zero_rows=~inputs["padding_mask"],
        )

    def test_distributed_fit_step(self):
        inputs = make_inputs(batch=4, mask_dtype="int32")  # bool tensors fail Keras' distributed build
        targets = np.random.default_rng(3).normal(size=(4, 10, 6)).astype("float32")
        self.run_distributed_fit_step(tiny, inputs, targets, loss="mse")

    def test_errors(self):
        flat = PerceiverEntityEncoder.from_hyperparameters
        with self.assertRaisesRegex(ValueError, "input_channels.*Received: input_channels=0"):
            flat(**{**FLAT, "input_channels": 0})
        with self.assertRaisesRegex(ValueError, "num_latents.*Received: num_latents=-1"):
            flat(**{**FLAT, "num_latents": -1})
        with self.assertRaisesRegex(ValueError, "output_channels.*Received: output_channels=0"):
            tiny(output_channels=0)
        with self.assertRaisesRegex(TypeError, "PerceiverBackbone.*Received: dict"):
            PerceiverEntityEncoder({"num_latents": 4})
        model = tiny()
        with self.assertRaisesRegex(ValueError, "entities"):
            model({"entities": np.zeros((2, 5, 8), "float32")})
        with self.assertRaisesRegex(ValueError, "padding_mask"):
            model({"entities": np.zeros((2, 5, 7), "float32"), "padding_mask": np.ones((2, 4), bool)})


def _flat_config(model):
    """One flat dict of a built entity encoder: the backbone's stack and input width, projection, head."""
    backbone = model.backbone.get_config()
    head = {key: value for key, value in model.get_config().items() if key not in ("name", "trainable")}
    return {
        **{key: backbone[key] for key in STACK_ARGUMENTS},
        "input_channels": backbone["input_shape"][-1],
        "embedding_dim": model.backbone.input_preprocessors[0].units,
        **{key: value for key, value in head.items() if key not in ("backbone", "dtype")},
    }


def _transformers_reference(c, num_entities):
    """torch Linear + transformers `PerceiverModel`, decoder queries = its inputs, for `_flat_config` c."""
    import torch
    from transformers.models.perceiver import modeling_perceiver

    reference_config = transformers_config(c, d_model=c["embedding_dim"], hidden_act="gelu")
    decoder = modeling_perceiver.PerceiverOpticalFlowDecoder(
        reference_config,
        output_image_shape=(num_entities,),
        output_num_channels=c["output_channels"],
        rescale_factor=1.0,
        num_channels=c["embedding_dim"],
        qk_channels=c["decoder_qk_channels"] or c["latent_dim"],
        v_channels=c["decoder_v_channels"] or c["decoder_qk_channels"] or c["latent_dim"],
        num_heads=c["decoder_num_cross_attention_heads"],
        widening_factor=c["decoder_cross_attention_widening_factor"],
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

    stack = {"latent_dim": 24, "num_self_attends_per_block": 2}
    model = tiny(stack=stack, decoder_num_cross_attention_heads=2)
    reference = _transformers_reference(_flat_config(model), num_entities=10)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # O(1) random weights: a harder test than the tiny initial ones
        for name, param in reference.named_parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * (1.0 if "latents" in name else 0.3))
            if "layernorm" in name and name.endswith("weight"):
                param.add_(1.0)
    reference.eval()
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
    backbone = PerceiverBackbone.presets[preset["backbone"]]
    assert model.backbone.count_params() == backbone["num_parameters"]
    with torch.device("meta"):  # shapes only, no memory
        reference = _transformers_reference(_flat_config(model), num_entities=512)
    assert sum(p.numel() for p in reference.parameters()) == preset["num_parameters"]
    # Every preset value reaches the built model.
    b, c = backbone["config"], preset["config"]
    assert tuple(model.get_layer("encoder").latents.shape) == (b["num_latents"], b["latent_dim"])
    assert len(model.get_layer("processor").self_attends) == b["num_self_attends_per_block"]
    assert model.get_layer("entity_projection").units == b["input_preprocessor"]["config"]["units"]
    assert model.get_layer("entity_projection").kernel.shape == (b["input_shape"][-1], 128)
    decoder = model.get_layer("decoder")
    assert decoder.output_projection.units == c["output_channels"]
    assert decoder.num_cross_attention_heads == c["decoder_num_cross_attention_heads"]
    assert decoder.query_mask_mode == "zero"


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


def test_from_hyperparameters_matches_the_explicit_build_and_the_old_defaults():
    flat = PerceiverEntityEncoder.from_hyperparameters(**FLAT)
    explicit = tiny()
    assert flat.count_params() == explicit.count_params()
    assert _flat_config(flat) == _flat_config(explicit)
    # Old argument names are accepted; the old defaults are the flat form's defaults.
    renamed = PerceiverEntityEncoder.from_hyperparameters(
        **{**FLAT, "decoder_num_heads": 2, "decoder_widening_factor": 2}
    ).get_config()
    assert renamed["decoder_num_cross_attention_heads"] == 2
    assert renamed["decoder_cross_attention_widening_factor"] == 2
    defaults = _flat_config(PerceiverEntityEncoder.from_hyperparameters(input_channels=3))
    assert {key: defaults[key] for key in ENTITY_STACK} == ENTITY_STACK
    assert defaults["embedding_dim"] == 256 and defaults["output_channels"] is None
    assert defaults["decoder_num_cross_attention_heads"] == 2 and defaults["decoder_use_query_residual"]


def test_pretrained_backbone_moves_to_a_new_head():
    """An encoder's backbone, weights included, gets a new head (here: another output width)."""
    first = tiny()
    second = PerceiverEntityEncoder(first.backbone, output_channels=3)
    inputs = make_inputs()
    np.testing.assert_array_equal(
        first.backbone.predict(inputs, verbose=0)["latents"],
        second.backbone.predict(inputs, verbose=0)["latents"],
    )
    outputs = np.asarray(second(inputs))
    assert outputs.shape == (3, 10, 3)
    assert np.all(outputs[~inputs["padding_mask"]] == 0)
    assert second.get_layer("entity_projection") is first.get_layer("entity_projection")
    assert second.get_layer("decoder") is not first.get_layer("decoder")
