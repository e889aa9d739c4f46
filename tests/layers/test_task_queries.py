import numpy as np

from keras_perceiver.layers.task_queries import TaskQueries
from tests.test_case import TestCase


class TaskQueriesTest(TestCase):
    def test_layer_basics(self):
        self.run_layer_test(
            TaskQueries,
            {"task_names": ["sst2", "mnli", "qqp"], "num_channels": 8},
            np.ones((2, 5, 3), "float32"),
            expected_output_shape=(2, 3, 8),
            expected_num_trainable_weights=1,
        )

    def test_one_row_per_task_in_order(self):
        layer = TaskQueries(("video", "audio"), num_channels=4)
        outputs = layer(np.ones((3, 7, 2), "float32")).numpy()
        self.assertEqual(layer.task_names, ["video", "audio"])
        self.assertEqual(outputs.shape, (3, 2, 4))
        np.testing.assert_array_equal(outputs[2], layer.position_embeddings.numpy())
        config = layer.get_config()
        self.assertEqual(config["task_names"], ["video", "audio"])
        self.assertNotIn("num_queries", config)

    def test_invalid_task_names(self):
        with self.assertRaisesRegex(ValueError, r"non-empty list of unique names\. Received: \[\]"):
            TaskQueries([], num_channels=4)
        with self.assertRaisesRegex(ValueError, r"unique names\. Received: \['a', 'b', 'a'\]"):
            TaskQueries(["a", "b", "a"], num_channels=4)
