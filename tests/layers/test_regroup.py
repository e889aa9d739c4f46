import keras
import numpy as np

from keras_perceiver.layers.regroup import Regroup, fold_groups, regroup, unfold_groups
from tests.test_case import TestCase


class RegroupTest(TestCase):
    def setUp(self):
        super().setUp()
        self.x = np.arange(2 * 4 * 3 * 2, dtype="float32").reshape(2, 4, 3, 2)

    def test_layer_basics(self):
        self.run_layer_test(
            Regroup,
            {"num_groups": 2},
            self.x,
            expected_output_shape=(2, 2, 6, 2),
            expected_num_trainable_weights=0,
            run_gradient_test=False,
        )

    def test_reshape_merges_and_splits_consecutive_groups(self):
        merged = Regroup(2)(self.x).numpy()
        self.assertAllClose(merged[:, 0], np.concatenate([self.x[:, 0], self.x[:, 1]], axis=1))
        self.assertAllClose(merged[:, 1], np.concatenate([self.x[:, 2], self.x[:, 3]], axis=1))
        split = Regroup(12)(self.x).numpy()
        self.assertEqual(split.shape, (2, 12, 1, 2))
        self.assertAllClose(split.reshape(2, 4, 3, 2), self.x)

    def test_transpose_reshape_mixes_all_groups(self):
        out = Regroup(2, regroup_type="transpose_reshape")(self.x).numpy()
        expected = np.swapaxes(self.x, 1, 2).reshape(2, 2, 6, 2)
        self.assertAllClose(out, expected)
        # New group 0 holds elements of every old group.
        first_group = set(out[0, 0, :, 0].tolist())
        self.assertTrue(all(any(v in first_group for v in self.x[0, g, :, 0]) for g in range(4)))

    def test_masks_and_folding(self):
        mask = np.ones((2, 4, 3), bool)
        self.assertEqual(tuple(regroup(mask, 1).shape), (2, 1, 12))
        folded = fold_groups(self.x)
        self.assertEqual(tuple(folded.shape), (8, 3, 2))
        self.assertAllClose(folded[5], self.x[1, 1])  # row b*G + g
        self.assertAllClose(unfold_groups(folded, 4), self.x)

    def test_symbolic_batch(self):
        inputs = keras.Input((4, 3, 2))
        self.assertEqual(tuple(Regroup(6)(inputs).shape), (None, 6, 2, 2))

    def test_errors_name_expected_and_received_values(self):
        with self.assertRaisesRegex(ValueError, r"`regroup_type` must be one of.*Received: regroup_type='x'"):
            Regroup(2, regroup_type="x")
        with self.assertRaisesRegex(ValueError, r"G=4, N=3, num_groups=5"):
            Regroup(5)(self.x)
        with self.assertRaisesRegex(ValueError, r"rank 3 or 4"):
            Regroup(2)(self.x[0, 0])
