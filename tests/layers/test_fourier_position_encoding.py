import keras
import numpy as np

from keras_perceiver.layers.fourier_position_encoding import FourierPositionEncoding
from tests.layers.reference import fourier_reference, grid_positions
from tests.test_case import TestCase


class FourierPositionEncodingTest(TestCase):
    def test_layer_basics(self):
        self.run_layer_test(
            FourierPositionEncoding,
            {"num_bands": 3, "index_dims": (4, 5)},
            np.ones((2, 20, 1), "float32"),
            expected_output_shape=(2, 20, 2 + 2 * 2 * 3),
            expected_num_trainable_weights=0,
        )

    def test_grid_positions_helper(self):
        # The helper itself: corners of a 3 x 2 grid, row-major.
        np.testing.assert_array_equal(grid_positions((3, 2))[[0, 1, 5]], [[-1, -1], [-1, 1], [1, 1]])

    def test_matches_reference_channel_order(self):
        for index_dims, max_resolution in [
            ((7,), None),
            ((4, 5), None),
            ((3, 4, 2), None),
            ((4, 6), (16, 9)),
        ]:
            layer = FourierPositionEncoding(num_bands=4, index_dims=index_dims, max_resolution=max_resolution)
            outputs = layer(np.ones((2, 1, 1), "float32")).numpy()
            expected = fourier_reference(grid_positions(index_dims), 4, max_resolution or index_dims)
            d = len(index_dims)
            self.assertEqual(outputs.shape, (2, int(np.prod(index_dims)), d + 2 * d * 4))
            self.assertEqual(layer.output_channels, outputs.shape[-1])
            for example in outputs:
                self.assertAllClose(example, expected, atol=2e-5, rtol=0, msg=str(index_dims))

    def test_matches_transformers(self):
        import torch
        from transformers.models.perceiver.modeling_perceiver import (
            build_linear_positions,
            generate_fourier_features,
        )

        for sine_only, concat_pos in [(False, True), (True, False)]:
            index_dims, num_bands = (6, 5), 3
            layer = FourierPositionEncoding(
                num_bands, index_dims=index_dims, concat_pos=concat_pos, sine_only=sine_only
            )
            positions = build_linear_positions(index_dims).reshape(1, -1, 2)
            expected = generate_fourier_features(
                positions, num_bands, index_dims, concat_pos=concat_pos, sine_only=sine_only
            )
            self.assertIsInstance(expected, torch.Tensor)
            # transformers drops the batch axis when concat_pos=False: compare (O, C) arrays.
            expected = expected.numpy().reshape(-1, layer.output_channels)
            self.assertAllClose(layer(np.ones((1, 1), "float32"))[0], expected, atol=1e-5, rtol=0)

    def test_sine_only_and_without_positions(self):
        positions = grid_positions((3, 4))
        for concat_pos, sine_only in [(False, False), (True, True), (False, True)]:
            layer = FourierPositionEncoding(
                num_bands=2, index_dims=(3, 4), concat_pos=concat_pos, sine_only=sine_only
            )
            outputs = layer(np.ones((1, 1), "float32")).numpy()[0]
            expected = fourier_reference(positions, 2, (3, 4), concat_pos=concat_pos, sine_only=sine_only)
            width = 2 * 2 * (1 if sine_only else 2) + (2 if concat_pos else 0)
            self.assertEqual(outputs.shape, (12, width))
            self.assertEqual(layer.output_channels, width)
            self.assertAllClose(outputs, expected, atol=2e-5, rtol=0)

    def test_output_indices_gather_the_full_grid(self):
        layer = FourierPositionEncoding(num_bands=3, index_dims=(4, 5))
        full = layer(np.ones((2, 1), "float32")).numpy()
        shared = np.array([19, 0, 7], "int32")
        self.assertAllClose(layer(np.ones((2, 1), "float32"), output_indices=shared), full[:, shared], atol=0)
        per_example = np.array([[1, 2], [18, 3]], "int32")
        expected = np.stack([full[0, [1, 2]], full[1, [18, 3]]])
        self.assertAllClose(layer(np.ones((2, 1), "float32"), output_indices=per_example), expected, atol=0)

    def test_arbitrary_positions(self):
        rng = np.random.default_rng(0)
        layer = FourierPositionEncoding(num_bands=3, max_resolution=(10, 6))
        shared = rng.uniform(-1, 1, size=(5, 2)).astype("float32")
        outputs = layer(np.ones((3, 1), "float32"), positions=shared)
        self.assertEqual(tuple(outputs.shape), (3, 5, 14))
        expected = fourier_reference(shared, 3, (10, 6))
        for example in outputs.numpy():
            self.assertAllClose(example, expected, atol=2e-5, rtol=0)
        per_example = rng.uniform(-1, 1, size=(3, 4, 2)).astype("float32")
        self.assertAllClose(
            layer(np.ones((3, 1), "float32"), positions=per_example),
            fourier_reference(per_example, 3, (10, 6)),
            atol=2e-5,
            rtol=0,
        )

    def test_symbolic_shapes(self):
        layer = FourierPositionEncoding(num_bands=3, index_dims=(4, 5))
        self.assertEqual(tuple(layer(keras.Input((20, 1))).shape), (None, 20, 14))
        indices = keras.Input((7,), dtype="int32")
        self.assertEqual(tuple(layer(keras.Input((20, 1)), output_indices=indices).shape), (None, 7, 14))

    def test_errors_name_expected_and_received_values(self):
        with self.assertRaisesRegex(ValueError, r"needs `index_dims` or `max_resolution`.*index_dims=None"):
            FourierPositionEncoding(num_bands=4)
        with self.assertRaisesRegex(ValueError, r"num_bands=0"):
            FourierPositionEncoding(num_bands=0, index_dims=(4,))
        with self.assertRaisesRegex(ValueError, r"at least one dimension\. Received: index_dims=\(\)"):
            FourierPositionEncoding(num_bands=2, index_dims=())
        with self.assertRaisesRegex(ValueError, r"index_dims\[0\]=0"):
            FourierPositionEncoding(num_bands=2, index_dims=(0, 4))
        with self.assertRaisesRegex(ValueError, r"max_resolution\[1\]=-2"):
            FourierPositionEncoding(num_bands=2, max_resolution=(4, -2))
        with self.assertRaisesRegex(ValueError, r"index_dims=\(4, 5\), max_resolution=\(8,\)"):
            FourierPositionEncoding(num_bands=2, index_dims=(4, 5), max_resolution=(8,))
        layer = FourierPositionEncoding(num_bands=2, index_dims=(4, 5))
        with self.assertRaisesRegex(ValueError, r"must have 2 coordinates.*positions\.shape=\(6, 3\)"):
            layer(np.ones((2, 1), "float32"), positions=np.zeros((6, 3), "float32"))
        with self.assertRaisesRegex(ValueError, r"`positions` must have rank 2 or 3.*\(6,\)"):
            layer(np.ones((2, 1), "float32"), positions=np.zeros((6,), "float32"))
        with self.assertRaisesRegex(ValueError, r"pass `positions`.*index_dims=None, positions=None"):
            FourierPositionEncoding(num_bands=2, max_resolution=(4, 5))(np.ones((2, 1), "float32"))


def test_224x224_features_equal_transformers_within_6e8():
    """The README's figure: the Fourier features of a 224x224 image with 64 bands (the vision preset's) equal
    transformers' (`PerceiverFourierPositionEncoding`, torch float32 `linspace`) to 6e-8."""
    import pytest

    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")
    reference = modeling.PerceiverFourierPositionEncoding(num_bands=64, max_resolution=(224, 224))
    with torch.no_grad():
        expected = reference(index_dims=(224, 224), batch_size=1, device="cpu", dtype=torch.float32).numpy()
    layer = FourierPositionEncoding(num_bands=64, index_dims=(224, 224))
    ours = keras.ops.convert_to_numpy(layer(np.zeros((1, 224 * 224, 1), "float32")))
    assert ours.shape == expected.shape == (1, 224 * 224, 2 + 2 * 2 * 64)
    difference = float(np.max(np.abs(ours - expected)))
    print(f"Fourier features 224x224, 64 bands: max |ours - transformers| = {difference:.2g}")
    assert difference <= 6e-8
