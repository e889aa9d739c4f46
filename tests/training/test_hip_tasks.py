"""The `hip_*` tasks: masked inputs, loss on masked positions only, `--init_from`, point augmentation."""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_perceiver.models.hierarchical_perceiver import HierarchicalPerceiver
from keras_perceiver.models.hip_classifier import HiPClassifier
from tests.test_case import TestCase
from training import train
from training.init_from import MODEL_FILE, load_matching_weights
from training.tasks import hip
from training.tasks.modality_sets import augment_point_cloud

# A tiny HiP over Fashion-MNIST's 784-pixel set: 4 groups of 196 pixels in the first block.
TINY = {
    "num_groups": (4, 1, 4),
    "num_latents": (4, 8, 4),
    "latent_dim": (8, 16, 8),
    "num_self_attends_per_block": (1, 1, 1),
    "num_self_attention_heads": (1, 2, 1),
    "num_embedding_channels": 8,
    "num_cross_attention_heads": 1,
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 1,
}
NUM_PIXELS = 784


def tiny_params(task="hip_mae", **overrides):
    return train.resolve_params(task=task, dataset="fashion_mnist", overrides=dict(TINY), **overrides)


def example(seed=0):
    pixels = np.random.default_rng(seed).normal(size=(NUM_PIXELS, 1)).astype(np.float32)
    return {"inputs": {"pixels": tf.constant(pixels)}, "label": tf.constant(3, tf.int64)}


def mae_batch(params, batch_size=2):
    _, to_inputs, _ = hip.make_mae_inputs(params)
    rows = [to_inputs(example(i), True, tf.constant([7, i])) for i in range(batch_size)]
    return tf.nest.map_structure(lambda *xs: tf.stack(xs), *rows)


class MaeInputsTest(TestCase):
    def test_padding_mask_hides_the_masked_pixels_and_weights_score_them(self):
        params = tiny_params(mask_ratio=0.75)
        _, to_inputs, _ = hip.make_mae_inputs(params)
        features, targets, weights = to_inputs(example(), True, tf.constant([1, 2]))
        mask = weights[hip.RECONSTRUCTION]["pixels"].numpy()
        np.testing.assert_array_equal(features["pixels_padding_mask"].numpy(), mask == 0)
        np.testing.assert_array_equal(features["pixels"], example()["inputs"]["pixels"])
        np.testing.assert_array_equal(targets[hip.RECONSTRUCTION]["pixels"], example()["inputs"]["pixels"])
        # 4 groups of 196: round(0.75 * 196) = 147 masked in each, the same positions in every group.
        self.assertEqual(int(mask.sum()), 4 * 147)
        groups = mask.reshape(4, 196)
        for group in groups[1:]:
            np.testing.assert_array_equal(group, groups[0])

    def test_zero_hiding_and_scoring_every_element(self):
        params = tiny_params(mae_hide="zero", mae_loss="all")
        _, to_inputs, _ = hip.make_mae_inputs(params)
        features, _, weights = to_inputs(example(), True, tf.constant([1, 2]))
        self.assertNotIn("pixels_padding_mask", features)
        np.testing.assert_array_equal(weights[hip.RECONSTRUCTION]["pixels"], np.ones(NUM_PIXELS))
        masked_params = tiny_params(mae_hide="zero")
        _, masked_weights = hip.make_mae_inputs(masked_params)[1](example(), True, tf.constant([1, 2]))[1:]
        hidden = masked_weights[hip.RECONSTRUCTION]["pixels"].numpy() > 0
        pixels = features["pixels"].numpy()[:, 0]
        np.testing.assert_array_equal(pixels[hidden], 0.0)
        np.testing.assert_array_equal(pixels[~hidden], example()["inputs"]["pixels"].numpy()[~hidden, 0])

    def test_unknown_choices_name_the_received_value(self):
        with self.assertRaisesRegex(ValueError, "mae_hide=.*'noise'"):
            hip.make_mae_inputs(tiny_params(mae_hide="noise"))
        with self.assertRaisesRegex(ValueError, "mae_loss=.*'visible'"):
            hip.make_mae_inputs(tiny_params(mae_loss="visible"))


class MaeLossTest(TestCase):
    def test_loss_counts_masked_positions_only(self):
        params = tiny_params()
        _, targets, weights = mae_batch(params)
        y = targets[hip.RECONSTRUCTION]["pixels"]
        w = weights[hip.RECONSTRUCTION]["pixels"]
        loss = hip.mae_loss(params)[hip.RECONSTRUCTION]["pixels"]
        wrong_where_visible = tf.where(w[..., None] > 0, y, y + 5.0)
        self.assertEqual(float(loss(y, wrong_where_visible, sample_weight=w)), 0.0)
        wrong_where_masked = tf.where(w[..., None] > 0, y + 2.0, y)
        self.assertAllClose(float(loss(y, wrong_where_masked, sample_weight=w)), 4.0)

    def test_fit_and_evaluate_report_the_masked_mse(self):
        params = tiny_params()
        model = hip.build_mae_model(params)
        model.compile(optimizer=keras.optimizers.SGD(0.0), loss=hip.mae_loss(params))
        features, targets, weights = mae_batch(params)
        predicted = model(features)[hip.RECONSTRUCTION]["pixels"]
        y, w = targets[hip.RECONSTRUCTION]["pixels"], weights[hip.RECONSTRUCTION]["pixels"]
        errors = tf.reduce_mean(tf.square(predicted - y), axis=-1)
        expected = float(tf.reduce_sum(errors * w) / tf.reduce_sum(w))
        history = model.fit(features, targets, sample_weight=weights, batch_size=2, epochs=1, verbose=0)
        self.assertAllClose(history.history["loss"][0], expected, rtol=1e-5)
        evaluated = model.evaluate(features, targets, sample_weight=weights, verbose=0)
        self.assertAllClose(evaluated, expected, rtol=1e-5)


class InitFromTest(TestCase):
    def test_classifier_takes_the_pretrained_backbone_and_keeps_its_head_new(self):
        config = {"input_shapes": {"pixels": (NUM_PIXELS, 1)}, **TINY}
        pretrained = HierarchicalPerceiver(**config)
        directory = tempfile.mkdtemp()
        self.addCleanup(lambda: __import__("shutil").rmtree(directory))
        pretrained.save(os.path.join(directory, MODEL_FILE))
        classifier = HiPClassifier(**config, num_classes=10)
        report = load_matching_weights(classifier, directory)
        source = {v.path: v.numpy() for v in pretrained.weights}
        self.assertTrue(report["loaded"])
        for variable in classifier.weights:
            if variable.path in report["loaded"]:
                np.testing.assert_array_equal(variable.numpy(), source[variable.path])
        self.assertTrue(any("position" in path for path in report["loaded"]))
        self.assertTrue(report["new"])
        self.assertFalse(set(report["new"]) & set(source))
        # The reconstruction head has no counterpart in the classifier.
        self.assertTrue(report["unused"])

    def test_errors(self):
        classifier = HiPClassifier(input_shapes={"pixels": (NUM_PIXELS, 1)}, **TINY, num_classes=10)
        empty = tempfile.mkdtemp()
        with self.assertRaisesRegex(FileNotFoundError, "init_from="):
            load_matching_weights(classifier, empty)
        other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="unrelated")])
        other.save(os.path.join(empty, MODEL_FILE))
        with self.assertRaisesRegex(ValueError, "no weight"):
            load_matching_weights(classifier, empty)


class PointCloudAugmentationTest(TestCase):
    def test_rotation_about_y_scale_and_subsampling_keep_the_cloud(self):
        points = np.random.default_rng(0).uniform(-1, 1, size=(256, 3)).astype(np.float32)
        seed = tf.constant([3, 4])
        first = augment_point_cloud({"points": tf.constant(points)}, seed)["points"].numpy()
        again = augment_point_cloud({"points": tf.constant(points)}, seed)["points"].numpy()
        np.testing.assert_array_equal(first, again)
        self.assertEqual(first.shape, points.shape)
        other = augment_point_cloud({"points": tf.constant(points)}, tf.constant([3, 5]))["points"].numpy()
        self.assertFalse(np.allclose(first, other))
        # A rotation about y keeps every height; the scale s multiplies it and the jitter moves it by at most
        # 0.05: for the best s of a fine grid, every output height is s times an input height, within that.
        scales = np.linspace(0.8, 1.2, 401)
        gaps = np.abs(first[None, :, 1, None] - scales[:, None, None] * points[None, None, :, 1]).min(axis=2)
        self.assertLessEqual(gaps.max(axis=1).min(), 0.05 + 1e-3)
        # 25% of the points are copies of kept points.
        unique = np.unique(first.round(6), axis=0)
        self.assertEqual(len(unique), 256 - 64)


class SegmentationTaskTest(TestCase):
    def test_per_pixel_logits_loss_and_mean_iou(self):
        from training.tasks.modality_sets import get_modality_set

        params = train.resolve_params(task="hip_segmentation", overrides=dict(TINY))
        modality_set = get_modality_set("tuxpaint_segmentation")
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        mask = np.zeros((64, 64), np.uint8)
        mask[10:30, 5:40] = 1
        example = modality_set.preprocess({"image": tf.constant(image), "mask": tf.constant(mask)})
        self.assertEqual(example["inputs"]["image"].shape, (4096, 3))
        self.assertAllClose(example["inputs"]["image"][0], image[0, 0] / 127.5 - 1.0)
        np.testing.assert_array_equal(example["label"], mask.reshape(-1))
        features, labels = hip.make_segmentation_inputs(params)[1](example, True, tf.constant([0, 0]))
        model = hip.build_segmentation_model(params)
        batch = {m: tf.stack([x, x]) for m, x in features.items()}
        self.assertEqual(tuple(model(batch).shape), (2, 4096, 2))
        model.compile(
            optimizer="adam", loss=hip.segmentation_loss(params), metrics=hip.segmentation_metrics(params)
        )
        logs = model.evaluate(batch, tf.stack([labels, labels]), verbose=0, return_dict=True)
        # A fresh HiP reconstructs zeros (zero-initialized un-embedding): equal logits, loss log(2).
        self.assertAllClose(logs["loss"], np.log(2.0), rtol=1e-5)
        self.assertIn("mean_iou", logs)

    def test_perceiver_io_is_the_same_model_with_one_group_per_block(self):
        params = train.resolve_params(
            task="hip_segmentation", architecture="perceiver_io", overrides=dict(TINY)
        )
        with self.assertRaisesRegex(ValueError, r"one group in every block.*num_groups=\(4, 1, 4\)"):
            hip.build_segmentation_model(params)
        del params["overrides"]["num_groups"]
        model = hip.build_segmentation_model(params)
        (hip_model,) = [layer for layer in model.layers if isinstance(layer, HierarchicalPerceiver)]
        self.assertEqual(tuple(hip_model.backbone.num_groups), hip.PERCEIVER_IO_GROUPS["num_groups"])


class ClassificationServingTest(TestCase):
    def test_client_images_become_the_permuted_pixel_set(self):
        from training.tasks.modality_sets import get_modality_set

        model = HiPClassifier(input_shapes={"pixels": (NUM_PIXELS, 1)}, **TINY, num_classes=10)
        client, outputs, metadata = hip.classification_serving(model, "fashion_mnist")
        self.assertEqual(list(client.input_signature), ["image"])
        self.assertEqual(metadata["input_key"], "image")
        self.assertEqual(metadata["class_names"][0], "T-shirt/top")
        images = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28, 1), dtype=np.uint8)
        served = client.to_model_inputs({"image": tf.constant(images)})
        modality_set = get_modality_set("fashion_mnist")
        for image, pixels in zip(images, served["pixels"].numpy(), strict=True):
            expected = modality_set.preprocess({"image": tf.constant(image), "label": tf.constant(0)})
            self.assertAllClose(pixels, expected["inputs"]["pixels"])
        self.assertEqual(outputs(model(served))["top_k_class_ids"].shape, (3, 5))

    def test_the_perceiver_io_comparison_reads_the_set_as_an_m_by_1_image(self):
        pixels = np.random.default_rng(1).normal(size=(2, NUM_PIXELS, 1)).astype(np.float32)
        batched = hip.set_as_image({"pixels": tf.constant(pixels)})["images"]
        self.assertEqual(batched.shape, (2, NUM_PIXELS, 1, 1))
        np.testing.assert_array_equal(batched[:, :, 0, :], pixels)
        unbatched = hip.set_as_image({"pixels": tf.constant(pixels[0])})["images"]
        self.assertEqual(unbatched.shape, (NUM_PIXELS, 1, 1))
        with self.assertRaisesRegex(ValueError, "one modality, received \\['a', 'b'\\]"):
            hip.set_as_image({"a": tf.constant(pixels), "b": tf.constant(pixels)})


class MortonOrderTest(TestCase):
    @staticmethod
    def reference_codes(points):
        """Bit-by-bit interleaving in Python (x the most significant of each triple)."""
        from training.tasks.modality_sets import MORTON_BITS, MORTON_BOUND

        levels = 2**MORTON_BITS
        scaled = (np.clip(points, -MORTON_BOUND, MORTON_BOUND) + MORTON_BOUND) / (2 * MORTON_BOUND)
        cells = np.minimum(np.floor(scaled * levels), levels - 1).astype(np.int64)
        codes = []
        for x, y, z in cells:
            code = 0
            for bit in range(MORTON_BITS):
                code |= ((int(x) >> bit & 1) << (3 * bit + 2)) | ((int(y) >> bit & 1) << (3 * bit + 1))
                code |= (int(z) >> bit & 1) << (3 * bit)
            codes.append(code)
        return np.array(codes)

    def test_codes_interleave_the_bits_and_the_sort_is_a_permutation(self):
        from training.tasks.modality_sets import morton_codes, morton_order

        rng = np.random.default_rng(0)
        points = rng.uniform(-1.4, 1.4, size=(500, 3)).astype(np.float32)  # some outside the cube: clipped
        points[:3] = [[-1.25, -1.25, -1.25], [1.25, 1.25, 1.25], [0.0, 0.0, 0.0]]
        np.testing.assert_array_equal(morton_codes(tf.constant(points)).numpy(), self.reference_codes(points))
        ordered = morton_order(tf.constant(points)).numpy()
        self.assertEqual(sorted(map(tuple, ordered)), sorted(map(tuple, points)))
        self.assertTrue(np.all(np.diff(self.reference_codes(ordered)) >= 0))
        # The order depends on the points, not on the order they came in.
        shuffled = tf.constant(points[rng.permutation(500)])
        np.testing.assert_array_equal(morton_order(shuffled).numpy(), ordered)

    def test_consecutive_points_are_neighbours_on_the_surface(self):
        from training.tasks.modality_sets import augment_point_cloud, morton_order

        theta, phi = np.random.default_rng(1).uniform(0, 2 * np.pi, size=(2, 2048))
        sphere = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)
        sphere = tf.constant(sphere.astype(np.float32))
        augmented = augment_point_cloud({"points": sphere}, tf.constant([1, 2]))["points"]
        for cloud in (morton_order(sphere).numpy(), augmented.numpy()):
            # A group of 128 consecutive points (HiP-16's first block) spans a small part of the sphere.
            groups = cloud.reshape(16, 128, 3)
            spread = np.linalg.norm(groups - groups.mean(axis=1, keepdims=True), axis=2).mean()
            whole = np.linalg.norm(sphere.numpy() - sphere.numpy().mean(axis=0), axis=1).mean()
            self.assertLess(spread, 0.5 * whole)  # random order: 0.99 of the whole; Morton order: 0.42
