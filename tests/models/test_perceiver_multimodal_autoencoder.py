"""Tests of PerceiverMultimodalAutoencoder and its published preset."""

import keras
import numpy as np
from keras import ops

from keras_perceiver.models.perceiver_multimodal_autoencoder import PerceiverMultimodalAutoencoder
from tests.test_case import TestCase

TINY = dict(
    num_frames=2,
    image_size=(8, 8),
    audio_samples_per_frame=16,
    samples_per_patch=4,
    num_classes=5,
    video_num_bands=2,
    video_max_resolution=None,
    audio_num_bands=3,
    label_query_channels=8,
    decoder_output_channels=8,
    num_latents=4,
    latent_dim=8,
    num_self_attends_per_block=1,
    num_self_attention_heads=2,
)
NUM_PIXELS, NUM_PATCHES = 2 * 8 * 8, 32 // 4


def _inputs(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "video": rng.uniform(-1, 1, size=(batch, 2, 8, 8, 3)).astype("float32"),
        "audio": rng.uniform(-1, 1, size=(batch, 32)).astype("float32"),
        "label": np.eye(5, dtype="float32")[rng.integers(0, 5, size=batch)],
    }


class PerExampleMSE(keras.losses.Loss):
    """Mean squared error per example, summed over the outputs of a dict."""

    def call(self, y_true, y_pred):
        if isinstance(y_pred, dict):
            return sum(self.call(y_true[k], y_pred[k]) for k in sorted(y_pred))
        error = ops.square(ops.cast(y_true, y_pred.dtype) - y_pred)
        return ops.mean(ops.reshape(error, (ops.shape(error)[0], -1)), axis=-1)


class PerceiverMultimodalAutoencoderTest(TestCase):
    def test_outputs_and_round_trips(self):
        model = PerceiverMultimodalAutoencoder(**TINY, initializer_range=0.2)
        outputs = model(_inputs())
        self.assertEqual(
            {k: tuple(v.shape) for k, v in outputs.items()},
            {"audio": (2, 32), "label": (2, 5), "video": (2, 2, 8, 8, 3)},
        )
        config = model.get_config()
        for key, value in TINY.items():
            self.assertEqual(config[key], value)
        self.run_config_round_trip(model)
        self.run_model_saving_test(model, _inputs())
        self.run_predict_on_dataset(model, _inputs(batch=3))

    def test_chunked_reconstruction_equals_the_one_shot_decode(self):
        model = PerceiverMultimodalAutoencoder(**TINY, initializer_range=0.2)
        inputs = _inputs()
        expected = model(inputs)
        self.assertGreater(float(np.abs(np.asarray(expected["video"])).max()), 1e-2)
        for chunk_size in (7, 64, 10_000):  # chunks across modality boundaries, and one chunk
            self.assertAllClose(model.reconstruct(inputs, chunk_size=chunk_size), expected, atol=1e-5)
        with self.assertRaisesRegex(ValueError, "chunk_size=0"):
            model.reconstruct(inputs, chunk_size=0)
        with self.assertRaisesRegex(ValueError, "Missing: \\['label'\\]"):
            model.reconstruct({"video": inputs["video"], "audio": inputs["audio"]})

    def test_subsampled_outputs_equal_the_full_outputs_at_those_points(self):
        full_model = PerceiverMultimodalAutoencoder(**TINY, initializer_range=0.2)
        sub_model = PerceiverMultimodalAutoencoder(**TINY, initializer_range=0.2, subsample_outputs=True)
        path = f"{self.make_temp_dir()}/model.weights.h5"
        full_model.save_weights(path)
        sub_model.load_weights(path)  # the two variants share weight names
        inputs = _inputs()
        full = full_model(inputs)
        video_indices = np.array([[0, 127, 5], [64, 64, 3]], "int32")
        audio_indices = np.array([[7, 0], [2, 3]], "int32")
        subset = sub_model({**inputs, "video_indices": video_indices, "audio_indices": audio_indices})
        self.assertEqual(tuple(subset["video"].shape), (2, 3, 3))
        self.assertEqual(tuple(subset["audio"].shape), (2, 2 * 4))
        video = np.asarray(full["video"]).reshape(2, NUM_PIXELS, 3)
        audio = np.asarray(full["audio"]).reshape(2, NUM_PATCHES, 4)
        expected_video = np.take_along_axis(video, video_indices[..., None], 1)
        self.assertAllClose(subset["video"], expected_video, atol=1e-6)
        self.assertAllClose(
            np.asarray(subset["audio"]).reshape(2, 2, 4),
            np.take_along_axis(audio, audio_indices[..., None], 1),
            atol=1e-6,
        )
        self.assertAllClose(subset["label"], full["label"], atol=1e-6)

    def test_label_is_masked_for_classification(self):
        # The reference masks the label with probability 1 on every call: the label input cannot leak.
        model = PerceiverMultimodalAutoencoder(**TINY, initializer_range=0.2)
        inputs = _inputs()
        other = {**inputs, "label": np.roll(inputs["label"], 1, axis=-1)}
        self.assertAllClose(model(inputs)["label"], model(other)["label"], atol=0)
        # Without masking the label input changes the outputs.
        unmasked = PerceiverMultimodalAutoencoder(**TINY, initializer_range=0.2, mask_mode="training")
        difference = np.abs(np.asarray(unmasked(inputs)["label"]) - np.asarray(unmasked(other)["label"]))
        self.assertGreater(float(difference.max()), 1e-4)

    def test_mixed_precision_and_distributed_fit(self):
        self.run_mixed_precision_test(
            lambda dtype: PerceiverMultimodalAutoencoder(**TINY, initializer_range=0.2, dtype=dtype),
            inputs=_inputs(),
        )
        # No masking, so that every padding vector is used and receives a gradient.
        inputs = _inputs(batch=4)
        self.run_distributed_fit_step(
            lambda: PerceiverMultimodalAutoencoder(**TINY, initializer_range=0.2, mask_probs={}),
            inputs,
            {"audio": inputs["audio"], "label": inputs["label"], "video": inputs["video"]},
            loss=PerExampleMSE(),
        )

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "image_size.*Received: image_size=\\(8,\\)"):
            PerceiverMultimodalAutoencoder(**{**TINY, "image_size": (8,)})
        with self.assertRaisesRegex(ValueError, "multiple of `samples_per_patch`.*samples_per_patch=5"):
            PerceiverMultimodalAutoencoder(**{**TINY, "samples_per_patch": 5})
        with self.assertRaisesRegex(ValueError, "num_classes=0"):
            PerceiverMultimodalAutoencoder(**{**TINY, "num_classes": 0})
        model = PerceiverMultimodalAutoencoder(**TINY)
        with self.assertRaisesRegex(ValueError, "video"):
            model({**_inputs(), "video": np.zeros((2, 2, 4, 8, 3), "float32")})


def test_preset_parameter_count():
    """The preset has transformers' parameter count for the same configuration (19,858,855)."""
    import torch
    from transformers import PerceiverConfig, PerceiverForMultimodalAutoencoding

    preset = PerceiverMultimodalAutoencoder.presets["multimodal_perceiver"]
    config = preset["config"]
    reference_config = PerceiverConfig(
        num_latents=config["num_latents"],
        d_latents=config["latent_dim"],
        d_model=704,
        num_blocks=config["num_blocks"],
        num_self_attends_per_block=config["num_self_attends_per_block"],
        num_self_attention_heads=config["num_self_attention_heads"],
        num_cross_attention_heads=config["num_cross_attention_heads"],
        num_labels=config["num_classes"],
    )
    with torch.device("meta"):  # shapes only, no memory
        reference = PerceiverForMultimodalAutoencoding(reference_config)
    expected = sum(p.numel() for p in reference.parameters())
    assert expected == preset["num_parameters"]
    model = PerceiverMultimodalAutoencoder.from_preset("multimodal_perceiver")
    assert model.count_params() == expected
    assert model.get_layer("multimodal_preprocessor").num_channels == 704
    assert model.get_layer("decoder_queries").output_channels == 1026
