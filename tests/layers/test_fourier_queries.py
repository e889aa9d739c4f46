import numpy as np

from keras_perceiver.layers.fourier_position_encoding import FourierPositionEncoding
from keras_perceiver.layers.fourier_queries import FourierQueries
from tests.layers.reference import fourier_reference, grid_positions
from tests.test_case import TestCase


class FourierQueriesTest(TestCase):
    def test_layer_basics_with_projection(self):
        self.run_layer_test(
            FourierQueries,
            {"index_dims": (4, 5), "num_bands": 3, "project_pos_dim": 6},
            np.ones((2, 7, 1), "float32"),
            expected_output_shape=(2, 20, 6),
            expected_num_trainable_weights=2,
        )

    def test_layer_basics_without_projection(self):
        self.run_layer_test(
            FourierQueries,
            {"index_dims": (4, 5), "num_bands": 3, "sine_only": True, "concat_pos": False},
            np.ones((2, 7, 1), "float32"),
            expected_output_shape=(2, 20, 6),
            expected_num_trainable_weights=0,
        )

    def test_queries_are_fourier_features_of_the_output_grid(self):
        layer = FourierQueries(index_dims=(3, 4), num_bands=2, max_resolution=(8, 8))
        outputs = layer(np.ones((2, 1), "float32")).numpy()
        expected = fourier_reference(grid_positions((3, 4)), 2, (8, 8))
        self.assertAllClose(outputs[0], expected, atol=2e-5, rtol=0)

    def test_projection_and_output_indices(self):
        layer = FourierQueries(index_dims=(3, 4), num_bands=2, project_pos_dim=5)
        full = layer(np.ones((2, 1), "float32")).numpy()
        kernel, bias = layer.projection.get_weights()
        features = FourierPositionEncoding(2, index_dims=(3, 4))(np.ones((1, 1), "float32")).numpy()[0]
        self.assertAllClose(full[0], features @ kernel + bias, atol=1e-5)
        indices = np.array([[11, 0], [5, 6]], "int32")
        self.assertAllClose(
            layer(np.ones((2, 1), "float32"), output_indices=indices),
            np.stack([full[0, [11, 0]], full[1, [5, 6]]]),
            atol=1e-6,
        )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, r"project_pos_dim=0"):
            FourierQueries(index_dims=(3, 4), num_bands=2, project_pos_dim=0)
        with self.assertRaisesRegex(ValueError, r"index_dims\[1\]=0"):
            FourierQueries(index_dims=(3, 0), num_bands=2)
