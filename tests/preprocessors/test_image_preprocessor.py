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
        ({"prep_type": "pixels", "temporal_downsample": 2}, "temporal_downsample"),
        ({"prep_type": "conv", "conv_padding": "valid"}, "conv_padding"),
        ({"prep_type": "conv1x1", "output_channels": 0}, "output_channels"),
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


def test_other_image_sizes_get_the_positions_of_their_grid():
    """Built at 8x6, called at 6x10: as a layer built at 6x10 with the built layer's max_resolution."""
    layer = ImagePreprocessor(num_bands=3)
    layer(images((2, 8, 6, 3)))
    other = images((2, 6, 10, 3))
    expected = ImagePreprocessor(num_bands=3, max_resolution=(8, 6))(other)
    np.testing.assert_array_equal(np.asarray(layer(other)), np.asarray(expected))
    assert layer.compute_output_shape((2, 6, 10, 3)) == expected.shape
    conv = ImagePreprocessor(prep_type="conv1x1", spatial_downsample=2, output_channels=4, num_bands=2)
    conv(images((1, 8, 8, 3)))
    assert tuple(conv(images((1, 12, 4, 3))).shape) == (1, 6 * 2, 4 + 2 + 2 * 2 * 2)


def test_invalid_inputs():
    layer = ImagePreprocessor(num_bands=2)
    with pytest.raises(ValueError, match="rank 4"):
        ImagePreprocessor(num_bands=2)(np.ones((2, 16, 3), "float32"))
    with pytest.raises(ValueError, match="must be known"):
        layer(keras.Input((None, None, 3)))
    layer(images((2, 8, 6, 3)))
    with pytest.raises(ValueError, match=r"Received: inputs.shape=\(2, 8, 6, 1\)"):
        layer(images((2, 8, 6, 1)))
    video = ImagePreprocessor(prep_type="patches", spatial_downsample=2, num_bands=2)
    video(images((1, 2, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W, 3\).*Received: inputs.shape=\(1, 4, 4, 4, 3\)"):
        video(images((1, 4, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"not divisible"):
        video(images((1, 2, 4, 5, 3)))
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


# ---------------------------------------------------------------------------------------------
# prep_type="patches": space-to-depth of images and videos.


def _set_dense(dense, linear):
    """Copy a torch `nn.Linear` into a Keras Dense (kernel [in, out])."""
    dense.set_weights([linear.weight.detach().numpy().T, linear.bias.detach().numpy()])


def _reference_patches(torch, modeling, in_channels, **kwargs):
    from transformers import PerceiverConfig

    torch.manual_seed(0)
    reference = modeling.PerceiverImagePreprocessor(
        PerceiverConfig(), prep_type="patches", in_channels=in_channels, **kwargs
    )
    for parameter in reference.parameters():  # O(1) weights so that differences show
        torch.nn.init.normal_(parameter, std=1.0)
    return reference


PATCH_CASES = [
    # name, input shape (channels last), our kwargs, transformers kwargs
    (
        "image_fourier",
        (2, 8, 12, 3),
        {"spatial_downsample": 4, "num_bands": 5, "max_resolution": (16, 24)},
        {
            "spatial_downsample": 4,
            "fourier_position_encoding_kwargs": {"num_bands": 5, "max_resolution": (16, 24)},
        },
    ),
    (
        "video_fourier_thw",
        (2, 4, 8, 8, 3),
        {"spatial_downsample": 4, "temporal_downsample": 2, "num_bands": 6, "max_resolution": (4, 32, 32)},
        {
            "spatial_downsample": 4,
            "temporal_downsample": 2,
            "fourier_position_encoding_kwargs": {"num_bands": 6, "max_resolution": (4, 32, 32)},
        },
    ),
    (
        "video_fourier_t1_projected",  # the published multimodal layout: 4x4 patches, t=1
        (1, 3, 8, 4, 2),
        {"spatial_downsample": 4, "num_bands": 3, "max_resolution": (3, 8, 4), "project_pos_dim": 7},
        {
            "spatial_downsample": 4,
            "project_pos_dim": 7,
            "out_channels": 3 + 3 * 2 * 3,
            "fourier_position_encoding_kwargs": {"num_bands": 3, "max_resolution": (3, 8, 4)},
        },
    ),
    (
        "flow_conv_after_patching",  # two frames -> one 2-D grid (T/t = 1), Dense after patching
        (2, 2, 4, 6, 3),
        {
            "spatial_downsample": 1,
            "temporal_downsample": 2,
            "conv_after_patching": True,
            "out_channels": 8,
            "num_bands": 4,
            "max_resolution": (4, 6),
        },
        {
            "spatial_downsample": 1,
            "temporal_downsample": 2,
            "conv_after_patching": True,
            "conv_after_patching_in_channels": 6,
            "out_channels": 8,
            "fourier_position_encoding_kwargs": {"num_bands": 4, "max_resolution": (4, 6)},
        },
    ),
    (
        "video_trainable_added",
        (2, 2, 4, 4, 1),
        {
            "spatial_downsample": 2,
            "position_encoding_type": "trainable",
            "num_channels": 5,
            "project_pos_dim": 4,
            "concat_or_add_pos": "add",
        },
        {
            "spatial_downsample": 2,
            "position_encoding_type": "trainable",
            "out_channels": 5,
            "project_pos_dim": 4,
            "concat_or_add_pos": "add",
            "trainable_position_encoding_kwargs": {"index_dims": (2, 2, 2), "num_channels": 5},
        },
    ),
]


@pytest.mark.parametrize(
    "name, shape, kwargs, reference_kwargs", PATCH_CASES, ids=[c[0] for c in PATCH_CASES]
)
def test_patches_match_transformers(name, shape, kwargs, reference_kwargs):
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    reference = _reference_patches(torch, modeling, in_channels=shape[-1], **reference_kwargs)
    channels_first = torch.from_numpy(np.moveaxis(x, -1, -3).copy())
    with torch.no_grad():
        expected, _, _ = reference(channels_first)
    layer = ImagePreprocessor(prep_type="patches", **kwargs)
    layer.build(x.shape)
    if layer.patch_projection is not None:
        _set_dense(layer.patch_projection, reference.conv_after_patches)
    if layer.position_combiner.projection is not None:
        _set_dense(layer.position_combiner.projection, reference.positions_projection)
    if kwargs.get("position_encoding_type") == "trainable":
        layer.position_encoding.set_weights(
            [reference.position_embeddings.position_embeddings.detach().numpy()]
        )
    outputs = keras.ops.convert_to_numpy(layer(x))
    assert outputs.shape == tuple(expected.shape) == layer.compute_output_shape(x.shape)
    assert outputs.shape[-1] == reference.num_channels
    max_diff = float(np.max(np.abs(outputs - expected.numpy())))
    print(f"{name}: max |keras - transformers| = {max_diff:.2e} (max |output| {np.max(np.abs(outputs)):.1f})")
    assert max_diff <= 1e-4


def test_patches_layout_and_grid():
    video = np.arange(2 * 4 * 4 * 6 * 3, dtype="float32").reshape(2, 4, 4, 6, 3)
    layer = ImagePreprocessor(prep_type="patches", spatial_downsample=2, temporal_downsample=2, num_bands=2)
    outputs = keras.ops.convert_to_numpy(layer(video))
    assert layer.index_dims == (2, 2, 3)
    assert outputs.shape == (2, 12, 2 * 2 * 2 * 3 + 3 + 3 * 2 * 2)
    # Position (t=1, y=0, x=2) is row 1*6 + 0*3 + 2 = 8; its patch holds frames 2-3, rows 0-1, columns 4-5,
    # in (frame, row, column, channel) order.
    np.testing.assert_array_equal(outputs[1, 8, :24], video[1, 2:4, 0:2, 4:6, :].reshape(-1))
    np.testing.assert_allclose(outputs[1, 8, 24:27], [1.0, -1.0, 1.0], atol=1e-6)


class ImagePatchesLayerTest(TestCase):
    @parameterized.named_parameters(
        (
            "video_fourier",
            {"spatial_downsample": 2, "num_bands": 3, "conv_after_patching": True, "out_channels": 6},
            (2, 2, 4, 4, 3),
            (2, 8, 6 + 3 + 18),
            2,
        ),
        (
            "image_trainable",
            {
                "spatial_downsample": 2,
                "position_encoding_type": "trainable",
                "num_channels": 4,
                "project_pos_dim": 5,
            },
            (2, 4, 6, 1),
            (2, 6, 4 + 5),
            3,
        ),
    )
    def test_layer(self, kwargs, shape, expected_shape, num_weights):
        x = np.random.default_rng(0).uniform(size=shape).astype("float32")
        self.run_layer_test(
            ImagePreprocessor,
            {"prep_type": "patches", **kwargs},
            x,
            expected_output_shape=expected_shape,
            expected_num_trainable_weights=num_weights,
        )


def test_patches_errors():
    with pytest.raises(ValueError, match=r"H=6 is not divisible by its patch size 4.*shape=\(1, 6, 8, 3\)"):
        ImagePreprocessor(prep_type="patches", spatial_downsample=4)(np.zeros((1, 6, 8, 3), "float32"))
    with pytest.raises(ValueError, match=r"T=3 is not divisible"):
        ImagePreprocessor(prep_type="patches", temporal_downsample=2)(np.zeros((1, 3, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"one entry per axis of the 3-D position grid"):
        ImagePreprocessor(prep_type="patches", max_resolution=(4, 4))(np.zeros((1, 2, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="rank 4 \\(B, H, W, C\\) or 5"):
        ImagePreprocessor(prep_type="patches")(np.zeros((1, 4, 3), "float32"))
    with pytest.raises(ValueError, match="rank 4 \\(B, H, W, C\\) for prep_type='pixels'"):
        ImagePreprocessor()(np.zeros((1, 2, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="must be known"):
        ImagePreprocessor(prep_type="patches")(keras.Input((None, 4, 4, 3)))


def test_old_argument_name_out_channels_is_accepted():
    """`out_channels` (the name before `output_channels`) still works, in calls and in saved configs."""
    layer = ImagePreprocessor(prep_type="conv1x1", out_channels=8)
    assert layer.output_channels == 8
    config = {**layer.get_config(), "out_channels": 8}
    del config["output_channels"]
    assert ImagePreprocessor.from_config(config).output_channels == 8
    with pytest.raises(TypeError, match="out_channels=8, output_channels=4"):
        ImagePreprocessor(prep_type="conv1x1", out_channels=8, output_channels=4)
