import numpy as np

from keras_perceiver.layers.position_combiner import PositionCombiner
from tests.test_case import TestCase


class PositionCombinerTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.inputs = rng.normal(size=(2, 5, 3)).astype("float32")
        self.positions = rng.normal(size=(2, 5, 4)).astype("float32")

    def test_layer_basics_concat_with_projection(self):
        self.run_layer_test(
            PositionCombiner,
            {"project_pos_dim": 6},
            (self.inputs, self.positions),
            expected_output_shape=(2, 5, 9),
            expected_num_trainable_weights=2,
        )

    def test_layer_basics_add(self):
        self.run_layer_test(
            PositionCombiner,
            {"concat_or_add_pos": "add", "project_pos_dim": 3},
            (self.inputs, self.positions),
            expected_output_shape=(2, 5, 3),
            expected_num_trainable_weights=2,
        )

    def test_values(self):
        concat = PositionCombiner()
        np.testing.assert_array_equal(
            concat(self.inputs, self.positions), np.concatenate([self.inputs, self.positions], -1)
        )
        add = PositionCombiner(concat_or_add_pos="add")
        np.testing.assert_allclose(
            add(self.inputs, self.positions[..., :3]), self.inputs + self.positions[..., :3]
        )
        projected = PositionCombiner(concat_or_add_pos="add", project_pos_dim=3)
        outputs = projected(self.inputs, self.positions)
        kernel, bias = projected.projection.get_weights()
        self.assertAllClose(outputs, self.inputs + self.positions @ kernel + bias, atol=1e-6)

    def test_errors_name_expected_and_received_values(self):
        with self.assertRaisesRegex(ValueError, r"Expected 3 channels, received 4"):
            PositionCombiner(concat_or_add_pos="add")(self.inputs, self.positions)
        with self.assertRaisesRegex(ValueError, r"Expected 3 channels, received 2"):
            PositionCombiner(concat_or_add_pos="add", project_pos_dim=2)(self.inputs, self.positions)
        with self.assertRaisesRegex(ValueError, r"concat_or_add_pos.*Received: concat_or_add_pos='sum'"):
            PositionCombiner(concat_or_add_pos="sum")
        with self.assertRaisesRegex(ValueError, r"project_pos_dim=-1"):
            PositionCombiner(project_pos_dim=-1)
