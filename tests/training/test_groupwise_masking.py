import numpy as np
import tensorflow as tf

from keras_perceiver.layers.modality_grouper import ModalityGrouper
from tests.test_case import TestCase
from training.groupwise_masking import GroupwiseMasking


def grouped_mask(masking, masks):
    """The modality masks grouped as HiP groups its inputs: (G, N) floats, 1 = masked, 0 = not or padding."""
    grouper = ModalityGrouper(masking.num_groups, masking.index_dims)
    inputs = {m: tf.cast(mask, tf.float32)[None, :, None] for m, mask in masks.items()}
    return np.asarray(grouper(inputs))[0, :, :, 0]


class GroupwiseMaskingTest(TestCase):
    def test_the_same_positions_are_masked_in_every_group(self):
        # 1024 image elements and 32 label elements in 16 groups: 15 image groups and 1 label group of N = 69
        # (the official grouper's worked example); the label group is 37 positions of zero padding.
        masking = GroupwiseMasking(16, {"image": 1024, "label": 32}, mask_ratio=0.75)
        self.assertEqual((masking.group_size, masking.num_masked), (69, 52))
        for step in range(3):
            seed = tf.constant([7, step], tf.int64)
            masks = masking(seed)
            shapes = {m: tuple(x.shape) for m, x in masks.items()}
            self.assertEqual(shapes, {"image": (1024,), "label": (32,)})
            group_mask = masking.group_mask(seed).numpy()
            self.assertEqual(int(group_mask.sum()), 52)
            grouped = grouped_mask(masking, masks)
            # Every image group carries exactly the group mask (the last one is padded at its end).
            for group in range(14):
                np.testing.assert_array_equal(grouped[group], group_mask.astype(np.float32))
            # The label group: its 32 elements take the first 32 positions of the same mask.
            np.testing.assert_array_equal(grouped[15, :32], group_mask[:32].astype(np.float32))
            np.testing.assert_array_equal(grouped[15, 32:], np.zeros(37))

    def test_ratio_and_determinism(self):
        masking = GroupwiseMasking(4, {"pixels": 784}, mask_ratio=0.5)
        first = masking(tf.constant([0, 1], tf.int64))["pixels"].numpy()
        again = masking(tf.constant([0, 1], tf.int64))["pixels"].numpy()
        other = masking(tf.constant([0, 2], tf.int64))["pixels"].numpy()
        np.testing.assert_array_equal(first, again)  # stateless: the seed decides
        self.assertFalse(np.array_equal(first, other))
        self.assertEqual(int(first.sum()), 4 * 98)  # half of the 196 positions of each of the 4 groups
        # In tf.data with per-example seeds: the same masks on every pass.
        dataset = tf.data.Dataset.range(5).map(
            lambda i: masking(tf.stack([tf.constant(3, tf.int64), i]))["pixels"]
        )
        passes = [np.stack(list(dataset.as_numpy_iterator())) for _ in range(2)]
        np.testing.assert_array_equal(passes[0], passes[1])
        self.assertEqual(len({row.tobytes() for row in passes[0]}), 5)

    def test_ratio_is_rounded_and_kept_inside_the_group(self):
        self.assertEqual(GroupwiseMasking(2, {"x": 10}, 0.01).num_masked, 1)
        self.assertEqual(GroupwiseMasking(2, {"x": 10}, 0.99).num_masked, 4)

    def test_errors_name_the_received_value(self):
        with self.assertRaisesRegex(ValueError, r"mask_ratio.*\(0, 1\).*Received: mask_ratio=1.0"):
            GroupwiseMasking(4, {"x": 8}, 1.0)
        with self.assertRaisesRegex(ValueError, r"more modalities than groups.*Received: 3 modalities"):
            GroupwiseMasking(2, {"a": 4, "b": 4, "c": 4}, 0.5)
        with self.assertRaisesRegex(ValueError, r"index_dims.*Received"):
            GroupwiseMasking(2, {}, 0.5)
