import numpy as np

from keras_perceiver.layers.trainable_queries import TrainableQueries
from tests.test_case import TestCase


class TrainableQueriesTest(TestCase):
    def test_layer_basics(self):
        self.run_layer_test(
            TrainableQueries,
            {"num_queries": 3, "num_channels": 8},
            np.ones((2, 10, 3), "float32"),
            expected_output_shape=(2, 3, 8),
            expected_num_trainable_weights=1,
        )

    def test_queries_do_not_depend_on_the_inputs(self):
        layer = TrainableQueries(num_queries=3, num_channels=8)
        outputs = layer(np.random.default_rng(0).normal(size=(2, 50, 4)).astype("float32")).numpy()
        np.testing.assert_array_equal(outputs[0], layer.position_embeddings.numpy())
        np.testing.assert_array_equal(outputs[1], layer.position_embeddings.numpy())
        # The length of the inputs does not matter (more inputs than queries, or fewer).
        self.assertEqual(tuple(layer(np.ones((4, 1, 4), "float32")).shape), (4, 3, 8))

    def test_output_indices(self):
        layer = TrainableQueries(num_queries=5, num_channels=4)
        layer(np.ones((2, 1, 1), "float32"))
        table = layer.position_embeddings.numpy()
        per_example = np.array([[4, 0], [1, 1]], "int32")
        np.testing.assert_array_equal(
            layer(np.ones((2, 1, 1), "float32"), output_indices=per_example), table[per_example]
        )

    def test_config_names_num_queries(self):
        config = TrainableQueries(num_queries=5, num_channels=4).get_config()
        self.assertEqual(config["num_queries"], 5)
        self.assertNotIn("index_dims", config)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, r"num_queries=0"):
            TrainableQueries(num_queries=0, num_channels=4)
