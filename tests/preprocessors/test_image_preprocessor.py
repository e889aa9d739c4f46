"""Tests of `ImagePreprocessor`: shapes, channel layout, parity with transformers, errors, serialization."""

import keras
import numpy as np
import pytest
from absl.testing import parameterized

from keras_perceiver.layers.fourier_position_encoding import FourierPositionEncoding
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from tests.test_case import TestCase


def images(shape=(2, 8, 6, 3), seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


class ImagePreprocessorLayerTest(TestCase):
    """Shapes, symbolic call, config round trip, gradients and mixed precision (shared helper)."""

    @parameterized.named_parameters(
        ("fourier", {"num_bands": 4}, 3 + 2 + 16, 0),
        ("fourier_projected", {"num_bands": 4, "project_pos_dim": 5}, 3 + 5, 2),
        ("trainable", {"position_encoding_type": "trainable", "num_channels": 7}, 3 + 7, 1),
        (
            "trainable_added",
            {
                "position_encoding_type": "trainable",
                "num_channels": 8,
                "project_pos_dim": 3,
                "concat_or_add_pos": "add",
            },
            3,
            3,
        ),
    )
    def test_layer(self, init_kwargs, channels, num_weights):
        self.run_layer_test(
            ImagePreprocessor,
            init_kwargs,
            images(),
            expected_output_shape=(2, 48, channels),
            expected_num_trainable_weights=num_weights,
        )


@pytest.mark.parametrize(
    "kwargs, channels",
    [
        ({"num_bands": 4}, 3 + 2 + 2 * 2 * 4),
        ({"num_bands": 4, "concat_pos": False}, 3 + 2 * 2 * 4),
        ({"num_bands": 4, "sine_only": True}, 3 + 2 + 2 * 4),
        ({"num_bands": 4, "project_pos_dim": 5}, 3 + 5),
        ({"num_bands": 4, "concat_or_add_pos": "add", "project_pos_dim": 3}, 3),
        ({"position_encoding_type": "trainable", "num_channels": 7}, 3 + 7),
        ({"position_encoding_type": "trainable", "num_channels": 3, "concat_or_add_pos": "add"}, 3),
    ],
)
def test_output_shape(kwargs, channels):
    layer = ImagePreprocessor(**kwargs)
    outputs = layer(images())
    assert tuple(outputs.shape) == (2, 8 * 6, channels)
    symbolic = layer(keras.Input((8, 6, 3)))
    assert tuple(symbolic.shape) == (None, 8 * 6, channels)


def test_concat_layout_is_pixels_then_fourier_features():
    x = images()
    outputs = keras.ops.convert_to_numpy(ImagePreprocessor(num_bands=4, max_resolution=(16, 12))(x))
    np.testing.assert_array_equal(outputs[..., :3], x.reshape(2, 48, 3))
    expected = FourierPositionEncoding(num_bands=4, index_dims=(8, 6), max_resolution=(16, 12))(x)
    np.testing.assert_allclose(outputs[..., 3:], keras.ops.convert_to_numpy(expected), atol=1e-6)
    # Row-major grid: element 1 is (row 0, column 1); the raw positions come first.
    np.testing.assert_allclose(outputs[0, 1, 3:5], [-1.0, -1.0 + 2.0 / 5], atol=1e-6)


def test_trainable_encoding_is_learned_and_shared_over_the_batch():
    layer = ImagePreprocessor(position_encoding_type="trainable", num_channels=4)
    outputs = keras.ops.convert_to_numpy(layer(images()))
    assert [w.name for w in layer.trainable_weights] == ["position_embeddings"]
    np.testing.assert_array_equal(outputs[0, :, 3:], outputs[1, :, 3:])
    np.testing.assert_allclose(
        outputs[0, :, 3:], keras.ops.convert_to_numpy(layer.trainable_weights[0]), atol=1e-7
    )


def test_integer_images_are_cast():
    x = np.arange(2 * 4 * 4, dtype="uint8").reshape(2, 4, 4, 1)
    outputs = ImagePreprocessor(num_bands=2)(x)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(outputs)[..., 0], x.reshape(2, 16))


def test_matches_transformers_pixels_preprocessor():
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")
    from transformers import PerceiverConfig

    x = images((2, 8, 6, 3))
    reference = modeling.PerceiverImagePreprocessor(
        PerceiverConfig(),
        prep_type="pixels",
        spatial_downsample=1,
        position_encoding_type="fourier",
        in_channels=3,
        fourier_position_encoding_kwargs={
            "num_bands": 5,
            "max_resolution": (8, 6),
            "concat_pos": True,
            "sine_only": False,
        },
    )
    with torch.no_grad():
        expected, _, _ = reference(torch.from_numpy(x).permute(0, 3, 1, 2))
    outputs = ImagePreprocessor(num_bands=5)(x)
    assert reference.num_channels == outputs.shape[-1]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(outputs), expected.numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prep_type": "patches"}, "not implemented yet"),
        ({"prep_type": "conv", "conv_padding": "valid"}, "conv_padding"),
        ({"prep_type": "conv1x1", "out_channels": 0}, "out_channels"),
        ({"prep_type": "bytes"}, "prep_type"),
        ({"position_encoding_type": "sinusoidal"}, "position_encoding_type"),
        ({"concat_or_add_pos": "stack"}, "concat_or_add_pos"),
        ({"num_bands": 0}, "num_bands"),
        ({"max_resolution": (8,)}, "max_resolution"),
        ({"project_pos_dim": -1}, "project_pos_dim"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImagePreprocessor(**kwargs)


def test_invalid_inputs():
    layer = ImagePreprocessor(num_bands=2)
    with pytest.raises(ValueError, match="rank 4"):
        ImagePreprocessor(num_bands=2)(np.ones((2, 16, 3), "float32"))
    with pytest.raises(ValueError, match="must be known"):
        layer(keras.Input((None, None, 3)))
    layer(images((2, 8, 6, 3)))
    with pytest.raises(ValueError, match=r"Received: inputs.shape=\(2, 8, 6, 1\)"):
        layer(images((2, 8, 6, 1)))
    with pytest.raises(ValueError, match=r"8x6 .*Received: inputs.shape=\(2, 6, 8, 3\)"):
        layer(images((2, 6, 8, 3)))
    with pytest.raises(ValueError, match="rank 4"):
        layer(np.ones((2, 48, 3), "float32"))
    with pytest.raises(ValueError, match="as wide as the inputs"):
        ImagePreprocessor(num_bands=2, concat_or_add_pos="add")(images())


def test_config_round_trip_and_saving(tmp_path):
    layer = ImagePreprocessor(
        position_encoding_type="trainable", num_channels=4, project_pos_dim=6, name="image_preprocessor"
    )
    config = layer.get_config()
    assert ImagePreprocessor.from_config(config).get_config() == config
    inputs = keras.Input((8, 6, 3))
    model = keras.Model(inputs, layer(inputs))
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    x = images()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6
    )
