import numpy as np

from keras_perceiver.layers.position_selection import select_positions
from tests.test_case import TestCase


class SelectPositionsTest(TestCase):
    def setUp(self):
        super().setUp()
        self.table = np.arange(15, dtype="float32").reshape(5, 3)

    def test_broadcast_over_the_batch(self):
        outputs = np.asarray(select_positions(self.table, 2))
        np.testing.assert_array_equal(outputs, np.stack([self.table, self.table]))

    def test_shared_indices(self):
        outputs = np.asarray(select_positions(self.table, 3, np.array([4, 0, 4], "int32")))
        np.testing.assert_array_equal(outputs, np.stack([self.table[[4, 0, 4]]] * 3))

    def test_per_example_indices(self):
        indices = np.array([[1, 2], [3, 3]], "int64")
        outputs = np.asarray(select_positions(self.table, 2, indices))
        np.testing.assert_array_equal(outputs, self.table[indices])
