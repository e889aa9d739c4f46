import keras
import numpy as np

from keras_perceiver.layers.trainable_position_encoding import TrainablePositionEncoding
from tests.test_case import TestCase


class TrainablePositionEncodingTest(TestCase):
    def test_layer_basics(self):
        self.run_layer_test(
            TrainablePositionEncoding,
            {"index_dims": 16, "num_channels": 8},
            np.ones((2, 10, 3), "float32"),
            expected_output_shape=(2, 10, 8),
            expected_num_trainable_weights=1,
            # The gradient test would fail by design: rows 10..15 of the table are unused.
            run_gradient_test=False,
        )

    def test_shorter_text_uses_the_first_rows(self):
        layer = TrainablePositionEncoding(index_dims=16, num_channels=8)
        outputs = layer(np.ones((3, 10, 2), "float32")).numpy()
        table = layer.position_embeddings.numpy()
        self.assertEqual(table.shape, (16, 8))
        for example in outputs:
            np.testing.assert_array_equal(example, table[:10])
        np.testing.assert_array_equal(layer(np.ones((1, 16, 2), "float32"))[0], table)

    def test_grid_index_dims(self):
        layer = TrainablePositionEncoding(index_dims=(3, 4), num_channels=5)
        outputs = layer(np.ones((2, 3, 4, 1), "float32"))
        self.assertEqual(tuple(outputs.shape), (2, 12, 5))
        np.testing.assert_array_equal(outputs[1], layer.position_embeddings.numpy())

    def test_other_2d_grid_resamples_as_torch_bicubic(self):
        import torch

        layer = TrainablePositionEncoding(index_dims=(6, 5), num_channels=4)
        layer.build()
        table = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
        layer.position_embeddings.assign(table)
        for height, width in [(9, 7), (3, 4), (6, 5)]:
            outputs = np.asarray(layer(np.ones((2, height, width, 1), "float32")))
            self.assertEqual(outputs.shape, (2, height * width, 4))
            grid = torch.from_numpy(table.reshape(1, 6, 5, 4)).permute(0, 3, 1, 2)
            expected = torch.nn.functional.interpolate(
                grid, size=(height, width), mode="bicubic", align_corners=False
            )
            expected = expected.reshape(4, -1).T.numpy()
            np.testing.assert_allclose(outputs[1], expected, atol=1e-5)
        self.assertEqual(layer.compute_output_shape((2, 9, 7, 1)), (2, 63, 4))

    def test_output_indices(self):
        layer = TrainablePositionEncoding(index_dims=16, num_channels=8)
        layer(np.ones((2, 16, 1), "float32"))
        table = layer.position_embeddings.numpy()
        shared = np.array([15, 3, 3], "int32")
        outputs = layer(np.ones((2, 16, 1), "float32"), output_indices=shared).numpy()
        np.testing.assert_array_equal(outputs, np.stack([table[shared]] * 2))
        per_example = np.array([[0, 1], [9, 2]], "int32")
        outputs = layer(np.ones((2, 16, 1), "float32"), output_indices=per_example).numpy()
        np.testing.assert_array_equal(outputs, table[per_example])

    def test_functional_with_unknown_length(self):
        layer = TrainablePositionEncoding(index_dims=16, num_channels=8)
        inputs = keras.Input((None, 3))
        self.assertEqual(tuple(layer(inputs).shape), (None, None, 8))
        model = keras.Model(inputs, layer(inputs))
        self.assertEqual(tuple(model(np.ones((2, 7, 3), "float32")).shape), (2, 7, 8))

    def test_errors_name_expected_and_received_values(self):
        layer = TrainablePositionEncoding(index_dims=16, num_channels=8)
        with self.assertRaisesRegex(
            ValueError, r"inputs have 17 positions but the table holds 16.*\(2, 17, 3\)"
        ):
            layer(np.ones((2, 17, 3), "float32"))
        grid = TrainablePositionEncoding(index_dims=(2, 3, 4), num_channels=5)
        with self.assertRaisesRegex(ValueError, r"index_dims=\(2, 3, 4\).*inputs\.shape=\(2, 2, 4, 3, 1\)"):
            grid(np.ones((2, 2, 4, 3, 1), "float32"))
        with self.assertRaisesRegex(ValueError, r"index_dims\[1\]=0"):
            TrainablePositionEncoding(index_dims=(3, 0), num_channels=5)
        with self.assertRaisesRegex(ValueError, r"num_channels=0"):
            TrainablePositionEncoding(index_dims=3, num_channels=0)
