import numpy as np

from keras_perceiver.layers.input_queries import InputQueries
from tests.test_case import TestCase


class InputQueriesTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.inputs = rng.normal(size=(2, 5, 3)).astype("float32")
        self.positions = rng.normal(size=(2, 5, 4)).astype("float32")

    def test_layer_basics(self):
        self.run_layer_test(
            InputQueries,
            {},
            {"inputs": self.inputs, "position_encodings": self.positions},
            expected_output_shape=(2, 5, 7),
            expected_num_trainable_weights=0,
        )

    def test_queries_are_the_inputs_with_positions(self):
        layer = InputQueries()
        np.testing.assert_array_equal(layer(self.inputs), self.inputs)
        np.testing.assert_array_equal(
            layer(self.inputs, position_encodings=self.positions),
            np.concatenate([self.inputs, self.positions], axis=-1),
        )

    def test_output_indices(self):
        layer = InputQueries()
        shared = np.array([4, 1], "int32")
        np.testing.assert_array_equal(layer(self.inputs, output_indices=shared), self.inputs[:, shared])
        per_example = np.array([[0, 3, 3], [2, 4, 1]], "int32")
        expected = np.stack([self.inputs[0, [0, 3, 3]], self.inputs[1, [2, 4, 1]]])
        np.testing.assert_array_equal(layer(self.inputs, output_indices=per_example), expected)

    def test_errors_name_expected_and_received_values(self):
        layer = InputQueries()
        with self.assertRaisesRegex(ValueError, r"rank 3\. Received: inputs\.shape=\(5, 3\)"):
            layer(self.inputs[0])
        with self.assertRaisesRegex(
            ValueError, r"position_encodings\.shape=\(2, 4, 4\), inputs\.shape=\(2, 5, 3\)"
        ):
            layer(self.inputs, position_encodings=self.positions[:, :4])
