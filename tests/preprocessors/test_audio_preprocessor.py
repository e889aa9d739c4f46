"""Tests of `AudioPreprocessor`: shapes, layout, parity with transformers, errors, serialization."""

import keras
import numpy as np
import pytest
from absl.testing import parameterized

from keras_perceiver.layers.fourier_position_encoding import FourierPositionEncoding
from keras_perceiver.preprocessors.audio_preprocessor import AudioPreprocessor
from tests.test_case import TestCase


def audio(shape=(2, 48), seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype("float32")


class AudioPreprocessorLayerTest(TestCase):
    @parameterized.named_parameters(
        ("fourier", {"samples_per_patch": 6, "num_bands": 4}, (2, 48), (2, 8, 6 + 9), 0),
        (
            "fourier_projected_3d_input",
            {"samples_per_patch": 8, "project_pos_dim": 5},
            (2, 48, 1),
            (2, 6, 13),
            2,
        ),
        (
            "trainable_added",
            {
                "samples_per_patch": 4,
                "position_encoding_type": "trainable",
                "num_channels": 4,
                "concat_or_add_pos": "add",
            },
            (2, 48),
            (2, 12, 4),
            1,
        ),
    )
    def test_layer(self, kwargs, shape, expected_shape, num_weights):
        self.run_layer_test(
            AudioPreprocessor,
            kwargs,
            audio(shape),
            expected_output_shape=expected_shape,
            expected_num_trainable_weights=num_weights,
        )

    def test_keras_saving_restores_weights_and_names(self):
        layer = AudioPreprocessor(
            samples_per_patch=4,
            position_encoding_type="trainable",
            num_channels=3,
            project_pos_dim=5,
            name="audio_preprocessor",
        )
        inputs = keras.Input((48,))
        model = keras.Model(inputs, layer(inputs))
        # Variable paths are checkpoint keys: the learned table and the projection keep their names.
        self.assertEqual(
            sorted(v.path for v in layer.weights),
            [
                "audio_preprocessor/position_combiner/projection/bias",
                "audio_preprocessor/position_combiner/projection/kernel",
                "audio_preprocessor/position_encoding/position_embeddings",
            ],
        )
        restored = self.run_model_saving_test(model, audio())
        self.assertEqual(restored.layers[-1].position_encoding.position_embeddings.shape, (12, 3))


def test_layout_is_patches_then_fourier_features_of_the_sample_count():
    x = audio((2, 24))
    layer = AudioPreprocessor(samples_per_patch=4, num_bands=3)
    outputs = keras.ops.convert_to_numpy(layer(x))
    assert layer.num_patches == 6
    np.testing.assert_array_equal(outputs[..., :4], x.reshape(2, 6, 4))
    # Default max_resolution: the number of samples (24), not the number of patches (6).
    expected = FourierPositionEncoding(num_bands=3, index_dims=(6,), max_resolution=(24,))(x)
    np.testing.assert_allclose(outputs[..., 4:], keras.ops.convert_to_numpy(expected), atol=1e-6)
    np.testing.assert_allclose(outputs[0, :, 4], np.linspace(-1, 1, 6), atol=1e-6)


AUDIO_CASES = [
    (
        "fourier_published_layout",
        {"samples_per_patch": 16, "num_bands": 12, "max_resolution": 128},
        {
            "samples_per_patch": 16,
            "fourier_position_encoding_kwargs": {
                "num_bands": 12,
                "max_resolution": (128,),
                "sine_only": False,
                "concat_pos": True,
            },
        },
    ),
    (
        "fourier_sine_projected",
        {
            "samples_per_patch": 8,
            "num_bands": 5,
            "max_resolution": 64,
            "sine_only": True,
            "project_pos_dim": 6,
        },
        {
            "samples_per_patch": 8,
            "out_channels": 6,
            "project_pos_dim": 6,
            "fourier_position_encoding_kwargs": {
                "num_bands": 5,
                "max_resolution": (64,),
                "sine_only": True,
                "concat_pos": True,
            },
        },
    ),
    (
        "trainable_added",
        {
            "samples_per_patch": 8,
            "position_encoding_type": "trainable",
            "num_channels": 5,
            "project_pos_dim": 8,
            "concat_or_add_pos": "add",
        },
        {
            "samples_per_patch": 8,
            "position_encoding_type": "trainable",
            "out_channels": 5,
            "project_pos_dim": 8,
            "concat_or_add_pos": "add",
            "trainable_position_encoding_kwargs": {"index_dims": 16, "num_channels": 5},
        },
    ),
]


@pytest.mark.parametrize("name, kwargs, reference_kwargs", AUDIO_CASES, ids=[c[0] for c in AUDIO_CASES])
def test_matches_transformers(name, kwargs, reference_kwargs):
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")
    from transformers import PerceiverConfig

    torch.manual_seed(0)
    reference = modeling.PerceiverAudioPreprocessor(PerceiverConfig(), **reference_kwargs)
    for parameter in reference.parameters():
        torch.nn.init.normal_(parameter, std=1.0)
    x = audio((2, 128, 1), seed=3)
    with torch.no_grad():
        expected, _, _ = reference(torch.from_numpy(x))
    layer = AudioPreprocessor(**kwargs)
    layer.build(x.shape)
    if layer.position_combiner.projection is not None:
        linear = reference.positions_projection
        layer.position_combiner.projection.set_weights(
            [linear.weight.detach().numpy().T, linear.bias.detach().numpy()]
        )
    if kwargs.get("position_encoding_type") == "trainable":
        layer.position_encoding.set_weights(
            [reference.position_embeddings.position_embeddings.detach().numpy()]
        )
    outputs = keras.ops.convert_to_numpy(layer(x))
    assert outputs.shape == tuple(expected.shape) == layer.compute_output_shape(x.shape)
    assert outputs.shape[-1] == reference.num_channels
    max_diff = float(np.max(np.abs(outputs - expected.numpy())))
    print(f"{name}: max |keras - transformers| = {max_diff:.2e}")
    assert max_diff <= 1e-4


def test_errors():
    with pytest.raises(
        ValueError, match=r"multiple of samples_per_patch=16. Received: S=40.*32 or 48 samples"
    ):
        AudioPreprocessor(samples_per_patch=16)(audio((2, 40)))
    with pytest.raises(ValueError, match=r"\(B, S\) or \(B, S, 1\).*Received: inputs.shape=\(2, 32, 2\)"):
        AudioPreprocessor(samples_per_patch=16)(audio((2, 32, 2)))
    with pytest.raises(ValueError, match="must be known"):
        AudioPreprocessor(samples_per_patch=16)(keras.Input((None,)))
    layer = AudioPreprocessor(samples_per_patch=16, num_bands=2)
    layer(audio((2, 32)))
    with pytest.raises(ValueError, match=r"expected \(B, 32\).*Received: inputs.shape=\(2, 48\)"):
        layer(audio((2, 48)))
    with pytest.raises(ValueError, match="max_resolution"):
        AudioPreprocessor(max_resolution=(8, 8))
    with pytest.raises(ValueError, match="samples_per_patch"):
        AudioPreprocessor(samples_per_patch=0)
    with pytest.raises(ValueError, match="position_encoding_type"):
        AudioPreprocessor(position_encoding_type="learned")
