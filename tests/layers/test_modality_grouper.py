import keras
import numpy as np

from keras_perceiver.layers.modality_grouper import (
    ModalityConcatenation,
    ModalityGrouper,
    ModalityUngrouper,
    assign_groups_to_modalities,
    group_layout,
)
from tests.test_case import TestCase


def official_group(inputs, groups_per_modality, index_dim):
    """The official `ConstNumGrouper.group`, re-written with numpy from its description (HIP.md A.2.8)."""
    out = []
    for x, count in zip(inputs.values(), groups_per_modality):
        final = count * int(np.ceil(x.shape[1] / count)) - x.shape[1]
        x = np.pad(x, [(0, 0), (0, final)] + [(0, 0)] * (x.ndim - 2))
        x = x.reshape((x.shape[0], count, -1) + x.shape[2:])
        x = np.pad(x, [(0, 0), (0, 0), (0, index_dim - x.shape[2])] + [(0, 0)] * (x.ndim - 3))
        out.append(x)
    return np.concatenate(out, axis=1)


class AssignGroupsTest(TestCase):
    def test_official_examples(self):
        self.assertEqual(assign_groups_to_modalities(16, [1024, 32]), ([15, 1], 69))
        self.assertEqual(assign_groups_to_modalities(8, [200, 10]), ([7, 1], 29))
        self.assertEqual(assign_groups_to_modalities(3, [5, 5, 5]), ([1, 1, 1], 5))
        # Greedy: each extra group to the modality with the most elements per group (first on ties).
        self.assertEqual(assign_groups_to_modalities(4, [10, 10]), ([2, 2], 5))

    def test_worked_example_paddings(self):
        rows, index_dim = group_layout(16, {"image": 1024, "label": 32})
        self.assertEqual(index_dim, 69)
        self.assertEqual(
            [(r["num_groups"], r["final_padding"], r["group_padding"]) for r in rows],
            [(15, 11, 0), (1, 0, 37)],
        )

    def test_more_modalities_than_groups(self):
        with self.assertRaisesRegex(ValueError, r"at most num_groups=2 modalities\. Received: 3 modalities"):
            assign_groups_to_modalities(2, [4, 4, 4])


class ModalityGrouperTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.index_dims = {"image": 200, "label": 10}
        self.inputs = {
            "image": rng.normal(size=(2, 200, 4)).astype("float32"),
            "label": rng.normal(size=(2, 10, 4)).astype("float32"),
        }

    def test_layer_basics(self):
        self.run_layer_test(
            ModalityGrouper,
            {"num_groups": 8, "index_dims": self.index_dims},
            (self.inputs,),
            expected_output_shape=(2, 8, 29, 4),
            expected_num_trainable_weights=0,
            run_gradient_test=False,
        )

    def test_matches_the_official_grouping(self):
        grouped = ModalityGrouper(8, self.index_dims)(self.inputs)
        self.assertAllClose(grouped, official_group(self.inputs, [7, 1], 29))
        # Zero padding: 3 elements at the end of the image's last group, 19 in the label's group.
        self.assertAllZero(grouped[:, 6, -3:])
        self.assertAllZero(grouped[:, 7, 10:])

    def test_group_order_is_index_dims_order(self):
        swapped = {"label": self.inputs["label"], "image": self.inputs["image"]}
        grouper = ModalityGrouper(8, self.index_dims)
        self.assertAllClose(grouper(swapped), grouper(self.inputs))  # the call's dict order does not matter
        label_first = ModalityGrouper(8, {"label": 10, "image": 200})(self.inputs).numpy()
        self.assertAllClose(label_first[:, 0, :10], self.inputs["label"])

    def test_ungroup_inverts_group(self):
        grouper = ModalityGrouper(8, self.index_dims)
        ungrouper = ModalityUngrouper(8, self.index_dims)
        restored = ungrouper(grouper(self.inputs))
        self.assertEqual(list(restored), ["image", "label"])
        self.assertAllClose(restored, self.inputs)

    def test_ungroup_of_other_index_sizes_slices_as_python(self):
        # The official `ungroup` of the final latents (16 per group): image 7 x 16 - 3 = 109 rows; the label
        # keeps x[:, :16 - 19] = x[:, :-3], 13 rows (not aligned with the inputs).
        latents = np.random.default_rng(1).normal(size=(2, 8, 16, 5)).astype("float32")
        out = ModalityUngrouper(8, self.index_dims)(latents)
        self.assertAllClose(out["image"], latents[:, :7].reshape(2, 112, 5)[:, :109])
        self.assertAllClose(out["label"], latents[:, 7, :13])
        shapes = ModalityUngrouper(8, self.index_dims).compute_output_shape((None, 8, 16, 5))
        self.assertEqual(shapes, {"image": (None, 109, 5), "label": (None, 13, 5)})

    def test_padding_masks_are_grouped_with_the_padding_masked(self):
        grouper = ModalityGrouper(8, self.index_dims)
        label_mask = np.array([[True] * 6 + [False] * 4] * 2)
        grouped, mask = grouper(self.inputs, padding_mask={"image": None, "label": label_mask})
        self.assertAllClose(grouped, grouper(self.inputs))
        mask = mask.numpy()
        self.assertEqual(mask.shape, (2, 8, 29))
        self.assertEqual(mask.sum(axis=-1).tolist(), [[29] * 6 + [26, 6]] * 2)
        self.assertTrue(mask[:, 7, :6].all() and not mask[:, 7, 6:].any())
        # No mask given: the official behaviour, nothing masked.
        grouped, mask = grouper(self.inputs, padding_mask={"image": None, "label": None})
        self.assertIsNone(mask)
        # Masks group like any rank-2 input (padding False).
        self.assertEqual(grouper({"image": np.ones((2, 200), bool), "label": label_mask}).dtype, "bool")

    def test_config_round_trip_keeps_the_order(self):
        grouper = ModalityGrouper(8, {"label": 10, "image": 200})
        restored = self.run_config_round_trip(grouper)
        self.assertEqual(list(restored.index_dims), ["label", "image"])
        restored = self.run_config_round_trip(ModalityUngrouper(8, {"label": 10, "image": 200}))
        self.assertEqual(list(restored.index_dims), ["label", "image"])

    def test_symbolic_inputs(self):
        inputs = {m: keras.Input((size, 4)) for m, size in self.index_dims.items()}
        masks = {m: keras.Input((size,), dtype="bool") for m, size in self.index_dims.items()}
        grouped, mask = ModalityGrouper(8, self.index_dims)(inputs, padding_mask=masks)
        self.assertEqual((tuple(grouped.shape), tuple(mask.shape)), ((None, 8, 29, 4), (None, 8, 29)))

    def test_errors_name_expected_and_received_values(self):
        grouper = ModalityGrouper(8, self.index_dims)
        with self.assertRaisesRegex(ValueError, r"\['image', 'label'\]\. Received: \['image'\]"):
            grouper({"image": self.inputs["image"]})
        with self.assertRaisesRegex(
            ValueError, r"must have M=200 elements.*Received: inputs\[.image.\]\.shape=\(2, 199, 4\)"
        ):
            grouper({**self.inputs, "image": self.inputs["image"][:, :199]})
        with self.assertRaisesRegex(ValueError, r"at most num_groups=1 modalities\. Received: 2"):
            ModalityGrouper(1, self.index_dims)
        with self.assertRaisesRegex(ValueError, r"must have num_groups=8 groups.*\(2, 4, 29, 4\)"):
            ModalityUngrouper(8, self.index_dims)(np.zeros((2, 4, 29, 4), "float32"))
        with self.assertRaisesRegex(ValueError, r"non-empty dict"):
            ModalityGrouper(8, {})


class ModalityConcatenationTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.index_dims = {"label": 3, "tag": 1}
        self.latents = rng.normal(size=(2, 1, 5, 4)).astype("float32")
        self.inputs = {
            "label": rng.normal(size=(2, 3, 4)).astype("float32"),
            "tag": rng.normal(size=(2, 1, 4)).astype("float32"),
        }

    def test_layer_basics(self):
        self.run_layer_test(
            ModalityConcatenation,
            {"index_dims": self.index_dims},
            (self.latents, self.inputs),
            expected_output_shape=(2, 1, 9, 4),
            expected_num_trainable_weights=0,
            run_gradient_test=False,
        )

    def test_appends_each_modality_as_one_group_in_index_dims_order(self):
        swapped = {"tag": self.inputs["tag"], "label": self.inputs["label"]}
        out = ModalityConcatenation(self.index_dims)(self.latents, swapped).numpy()
        expected = np.concatenate(
            [self.latents, self.inputs["label"][:, None], self.inputs["tag"][:, None]], axis=2
        )
        self.assertAllClose(out, expected)

    def test_padding_masks(self):
        layer = ModalityConcatenation(self.index_dims)
        out, mask = layer(self.latents, self.inputs, padding_mask={"label": None, "tag": None})
        self.assertIsNone(mask)
        label_mask = np.array([[True, False, True], [True, True, True]])
        out, mask = layer(self.latents, self.inputs, padding_mask={"label": label_mask})
        self.assertAllClose(out, layer(self.latents, self.inputs))
        expected = np.ones((2, 1, 9), bool)
        expected[0, 0, 6] = False
        self.assertEqual(mask.numpy().tolist(), expected.tolist())
        symbolic = {m: keras.Input((size, 4)) for m, size in self.index_dims.items()}
        masks = {m: keras.Input((size,), dtype="bool") for m, size in self.index_dims.items()}
        out, mask = layer(keras.Input((1, 5, 4)), symbolic, padding_mask=masks)
        self.assertEqual((tuple(out.shape), tuple(mask.shape)), ((None, 1, 9, 4), (None, 1, 9)))

    def test_config_round_trip_keeps_the_order(self):
        restored = self.run_config_round_trip(ModalityConcatenation({"tag": 1, "label": 3}))
        self.assertEqual(list(restored.index_dims), ["tag", "label"])

    def test_errors_name_expected_and_received_values(self):
        layer = ModalityConcatenation(self.index_dims)
        with self.assertRaisesRegex(ValueError, r"must have 1 group.*\(2, 2, 5, 4\)"):
            layer(np.zeros((2, 2, 5, 4), "float32"), self.inputs)
        with self.assertRaisesRegex(ValueError, r"\['label', 'tag'\]\. Received: \['label'\]"):
            layer(self.latents, {"label": self.inputs["label"]})
        with self.assertRaisesRegex(
            ValueError, r"must have M=3 elements.*Received: inputs\['label'\]\.shape=\(2, 2, 4\)"
        ):
            layer(self.latents, {**self.inputs, "label": self.inputs["label"][:, :2]})
        with self.assertRaisesRegex(
            ValueError,
            r"has 3 channels but the layer was built for 4\. Received: inputs\['tag'\]\.shape=\(2, 1, 3\)",
        ):
            layer(self.latents, {**self.inputs, "tag": np.zeros((2, 1, 3), "float32")})
        with self.assertRaisesRegex(ValueError, r"names modalities \['image'\]"):
            layer(self.latents, self.inputs, padding_mask={"image": None})
