"""Tests of PerceiverMultimodalAutoencoder and its published preset."""

import keras
import numpy as np
from keras import ops

from keras_perceiver.models import PerceiverBackbone, PerceiverMultimodalAutoencoder
from keras_perceiver.preprocessors import (
    AudioPreprocessor,
    ImagePreprocessor,
    MultimodalPreprocessor,
    OneHotPreprocessor,
)
from tests.test_case import TestCase

STACK = dict(
    num_latents=4,
    latent_dim=8,
    num_self_attends_per_block=1,
    num_cross_attention_heads=1,
    num_self_attention_heads=2,
)
HEAD = dict(label_query_channels=8, decoder_output_channels=8)
# The same model in the flat (version 1) form.
FLAT = dict(
    num_frames=2,
    image_size=(8, 8),
    audio_samples_per_frame=16,
    samples_per_patch=4,
    num_classes=5,
    video_num_bands=2,
    video_max_resolution=None,
    audio_num_bands=3,
    **HEAD,
    **STACK,
)


def tiny_backbone(initializer_range=0.2, dtype=None, mask_probs=None, mask_mode="always"):
    """2 frames of 8x8 (4x4 patches, 2 bands), 32 audio samples (patches of 4, 3 bands), 5 labels."""
    preprocessor = MultimodalPreprocessor(
        {
            "audio": AudioPreprocessor(
                samples_per_patch=4, num_bands=3, dtype=dtype, name="audio_preprocessor"
            ),
            "label": OneHotPreprocessor(num_classes=5, dtype=dtype, name="label_preprocessor"),
            "video": ImagePreprocessor(
                prep_type="patches",
                spatial_downsample=4,
                num_bands=2,
                max_resolution=(2, 8, 8),
                dtype=dtype,
                name="video_preprocessor",
            ),
        },
        mask_probs={"audio": 0.0, "label": 1.0, "video": 0.0} if mask_probs is None else mask_probs,
        min_padding_size=4,
        mask_mode=mask_mode,
        initializer=keras.initializers.TruncatedNormal(stddev=initializer_range),
        dtype=dtype,
        name="multimodal_preprocessor",
    )
    return PerceiverBackbone(
        input_shape={"audio": (32,), "label": (5,), "video": (2, 8, 8, 3)},
        input_preprocessor=preprocessor,
        initializer_range=initializer_range,
        dtype=dtype,
        **STACK,
    )


def tiny(initializer_range=0.2, dtype=None, mask_probs=None, mask_mode="always", **head):
    backbone = tiny_backbone(initializer_range, dtype=dtype, mask_probs=mask_probs, mask_mode=mask_mode)
    return PerceiverMultimodalAutoencoder(backbone, dtype=dtype, **{**HEAD, **head})


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
        model = tiny()
        outputs = model(_inputs())
        self.assertEqual(
            {k: tuple(v.shape) for k, v in outputs.items()},
            {"audio": (2, 32), "label": (2, 5), "video": (2, 2, 8, 8, 3)},
        )
        config = model.get_config()
        for key, value in HEAD.items():
            self.assertEqual(config[key], value)
        self.assertEqual(config["backbone"]["config"]["num_latents"], 4)
        # Sizes the head reads from the backbone.
        self.assertEqual(
            (model.video_shape, model.num_samples, model.samples_per_patch, model.num_classes),
            ((2, 8, 8), 32, 4, 5),
        )
        self.assertIs(model.get_layer("multimodal_preprocessor"), model.backbone.input_preprocessors[0])
        self.run_config_round_trip(model)
        self.run_model_saving_test(model, _inputs())
        self.run_predict_on_dataset(model, _inputs(batch=3))

    def test_chunked_reconstruction_equals_the_one_shot_decode(self):
        model = tiny()
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
        full_model = tiny()
        sub_model = tiny(subsample_outputs=True)
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
        # A subsampling head on the same backbone (its own head weights copied) gives the same points.
        shared = PerceiverMultimodalAutoencoder(full_model.backbone, subsample_outputs=True, **HEAD)
        for name in ("decoder_queries", "decoder", "multimodal_postprocessor"):
            shared.get_layer(name).set_weights(full_model.get_layer(name).get_weights())
        again = shared({**inputs, "video_indices": video_indices, "audio_indices": audio_indices})
        self.assertAllClose(again, subset, atol=1e-6)

    def test_label_is_masked_for_classification(self):
        # The reference masks the label with probability 1 on every call: the label input cannot leak.
        model = tiny()
        inputs = _inputs()
        other = {**inputs, "label": np.roll(inputs["label"], 1, axis=-1)}
        self.assertAllClose(model(inputs)["label"], model(other)["label"], atol=0)
        # Without masking the label input changes the outputs.
        unmasked = tiny(mask_mode="training")
        difference = np.abs(np.asarray(unmasked(inputs)["label"]) - np.asarray(unmasked(other)["label"]))
        self.assertGreater(float(difference.max()), 1e-4)

    def test_mixed_precision_and_distributed_fit(self):
        self.run_mixed_precision_test(lambda dtype: tiny(dtype=dtype), inputs=_inputs())
        # No masking, so that every padding vector is used and receives a gradient.
        inputs = _inputs(batch=4)
        self.run_distributed_fit_step(
            lambda: tiny(mask_probs={}),
            inputs,
            {"audio": inputs["audio"], "label": inputs["label"], "video": inputs["video"]},
            loss=PerExampleMSE(),
        )

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "image_size.*Received: image_size=\\(8,\\)"):
            PerceiverMultimodalAutoencoder.from_hyperparameters(**{**FLAT, "image_size": (8,)})
        with self.assertRaisesRegex(ValueError, "multiple of `samples_per_patch`.*samples_per_patch=5"):
            PerceiverMultimodalAutoencoder.from_hyperparameters(**{**FLAT, "samples_per_patch": 5})
        with self.assertRaisesRegex(ValueError, "num_classes=0"):
            PerceiverMultimodalAutoencoder.from_hyperparameters(**{**FLAT, "num_classes": 0})
        # One patch in time would make the input position grid 2-D under 3-D pixel queries.
        frames = FLAT["num_frames"]
        with self.assertRaisesRegex(
            ValueError, f"at least 2 patches in time.*num_frames={frames}, temporal_downsample={frames}"
        ):
            PerceiverMultimodalAutoencoder.from_hyperparameters(**{**FLAT, "temporal_downsample": frames})
        with self.assertRaisesRegex(ValueError, "temporal_downsample=0"):
            PerceiverMultimodalAutoencoder.from_hyperparameters(**{**FLAT, "temporal_downsample": 0})
        with self.assertRaisesRegex(TypeError, "PerceiverBackbone.*Received: dict"):
            PerceiverMultimodalAutoencoder({"num_latents": 4})
        with self.assertRaisesRegex(
            ValueError, "inputs \\['audio', 'label', 'video'\\].*input_shape=\\(6, 3\\)"
        ):
            PerceiverMultimodalAutoencoder(PerceiverBackbone(input_shape=(6, 3), **STACK))
        with self.assertRaisesRegex(ValueError, "label_query_channels=0"):
            tiny(label_query_channels=0)
        model = tiny()
        with self.assertRaisesRegex(ValueError, "video"):
            model({**_inputs(), "video": np.zeros((2, 2, 4, 8, 3), "float32")})


def test_pretrained_backbone_moves_to_a_new_head():
    """An autoencoder's backbone, weights included, carries another head (e.g. a wider decoder)."""
    first = tiny()
    second = PerceiverMultimodalAutoencoder(
        first.backbone, label_query_channels=6, decoder_output_channels=12
    )
    inputs = _inputs()
    np.testing.assert_array_equal(
        first.backbone.predict(inputs, verbose=0)["latents"],
        second.backbone.predict(inputs, verbose=0)["latents"],
    )
    assert second.get_layer("encoder") is first.get_layer("encoder")
    assert second.get_layer("decoder") is not first.get_layer("decoder")
    assert tuple(second(inputs)["video"].shape) == (2, 2, 8, 8, 3)


def test_from_hyperparameters_matches_the_explicit_build():
    flat = PerceiverMultimodalAutoencoder.from_hyperparameters(**FLAT, initializer_range=0.2)
    model = tiny()
    assert flat.count_params() == model.count_params()
    assert sorted(w.path for w in flat.weights) == sorted(w.path for w in model.weights)
    assert flat.backbone.get_config()["input_shape"] == {"audio": (32,), "label": (5,), "video": (2, 8, 8, 3)}
    # The same weights give the same outputs: the two forms build one model.
    values = {w.path: w for w in model.weights}
    for weight in flat.weights:
        weight.assign(values[weight.path])
    inputs = _inputs()
    np.testing.assert_allclose(flat(inputs)["video"], model(inputs)["video"], atol=1e-6)


def test_preset_parameter_count():
    """The preset has transformers' parameter count for the same configuration (19,858,855)."""
    import torch
    from transformers import PerceiverConfig, PerceiverForMultimodalAutoencoding

    from tests.models.reference_counts import preset_hyperparameters

    preset = PerceiverMultimodalAutoencoder.presets["multimodal_perceiver"]
    config = preset_hyperparameters(PerceiverMultimodalAutoencoder, "multimodal_perceiver")
    reference_config = PerceiverConfig(
        num_latents=config["num_latents"],
        d_latents=config["latent_dim"],
        d_model=704,
        num_blocks=config["num_blocks"],
        num_self_attends_per_block=config["num_self_attends_per_block"],
        num_self_attention_heads=config["num_self_attention_heads"],
        num_cross_attention_heads=config["num_cross_attention_heads"],
        num_labels=config["input_shape"]["label"][0],
    )
    with torch.device("meta"):  # shapes only, no memory
        reference = PerceiverForMultimodalAutoencoding(reference_config)
    expected = sum(p.numel() for p in reference.parameters())
    assert expected == preset["num_parameters"] == 19_858_855
    model = PerceiverMultimodalAutoencoder.from_preset("multimodal_perceiver")
    assert model.count_params() == expected
    assert model.get_layer("multimodal_preprocessor").num_channels == 704
    assert model.get_layer("decoder_queries").output_channels == 1026
    backbone = PerceiverBackbone.presets[preset["backbone"]]
    assert backbone["num_parameters"] == model.backbone.count_params()
