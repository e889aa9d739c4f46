"""Tests of PerceiverAudioClassifier: raw, log-mel and spectrogram front ends, parity, round trips, preset."""

import keras
import numpy as np
import pytest

from keras_perceiver.models import PerceiverAudioClassifier, PerceiverBackbone
from keras_perceiver.preprocessors import AudioPreprocessor, ImagePreprocessor, LogMelSpectrogram
from tests.test_case import TestCase

STACK = dict(
    num_latents=6,
    latent_dim=16,
    num_blocks=1,
    num_self_attends_per_block=1,
    num_cross_attention_heads=1,
    num_self_attention_heads=2,
)
LOG_MEL = dict(
    sampling_rate=8000,
    fft_length=64,
    sequence_stride=50,  # 1 + 400 // 50 = 9 frames
    num_mel_bins=6,
    min_freq=50.0,
)
# The same models as one flat argument list (`from_hyperparameters`, the form before the split).
FLAT = {
    "raw": dict(STACK, num_classes=5, num_bands=3, num_samples=64, samples_per_patch=8),
    "log_mel": dict(STACK, num_classes=5, num_bands=3, input_type="log_mel", num_samples=400, **LOG_MEL),
    "spectrogram": dict(
        STACK, num_classes=5, num_bands=3, input_type="spectrogram", spectrogram_shape=(8, 6), patch_size=2
    ),
}


def tiny(input_type="raw", dtype=None, initializer_range=0.02, num_classes=5, num_blocks=1):
    """A small classifier on a backbone with the `input_type` front end (3 Fourier bands)."""
    positions = dict(num_bands=3, dtype=dtype)
    if input_type == "raw":
        name, shape = "audio", (64,)
        preprocessor = AudioPreprocessor(samples_per_patch=8, name="audio_preprocessor", **positions)
    elif input_type == "log_mel":
        name, shape = "audio", (400,)
        preprocessor = [
            LogMelSpectrogram(**LOG_MEL, name="log_mel_spectrogram"),
            ImagePreprocessor(prep_type="patches", name="spectrogram_preprocessor", **positions),
        ]
    else:
        name, shape = "spectrogram", (8, 6)
        preprocessor = [
            keras.layers.Reshape((8, 6, 1), dtype=dtype, name="spectrogram_channel"),
            ImagePreprocessor(
                prep_type="patches", spatial_downsample=2, name="spectrogram_preprocessor", **positions
            ),
        ]
    backbone = PerceiverBackbone(
        input_shape=shape,
        input_name=name,
        input_preprocessor=preprocessor,
        initializer_range=initializer_range,
        dtype=dtype,
        **{**STACK, "num_blocks": num_blocks},
    )
    return PerceiverAudioClassifier(backbone, num_classes=num_classes, dtype=dtype)


def _audio(batch=3, num_samples=64, seed=0):
    # Synthetic tones + noise: shapes and numerics only (no learning is claimed from them).
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / 8000.0
    tones = np.sin(2 * np.pi * rng.uniform(200, 2000, size=(batch, 1)) * t)
    return {"audio": (tones + 0.1 * rng.normal(size=(batch, num_samples))).astype("float32")}


def _spectrogram(batch=3, seed=0):
    return {"spectrogram": np.random.default_rng(seed).normal(size=(batch, 8, 6)).astype("float32")}


INPUTS = {
    "raw": lambda batch=3: _audio(batch),
    "log_mel": lambda batch=3: _audio(batch, num_samples=400),
    "spectrogram": lambda batch=3: _spectrogram(batch),
}


class PerceiverAudioClassifierTest(TestCase):
    def test_round_trips(self):
        for input_type, make_inputs in INPUTS.items():
            with self.subTest(input_type):
                model = tiny(input_type)
                self.assertEqual(tuple(model(make_inputs()).shape), (3, 5))
                config = model.get_config()
                self.assertEqual(config["num_classes"], 5)
                self.assertEqual(config["backbone"]["config"]["num_latents"], 6)
                self.run_config_round_trip(model)
        # Saving on the front end with the most layers (log-mel spectrogram + patches).
        self.run_model_saving_test(tiny("log_mel", initializer_range=0.5), INPUTS["log_mel"](), atol=1e-5)

    def test_front_ends(self):
        self.assertEqual(tiny("raw").get_layer("audio_preprocessor").num_patches, 64 // 8)
        spectrogram = tiny("spectrogram").get_layer("spectrogram_preprocessor")
        self.assertEqual(spectrogram.index_dims, (4, 3))  # (8 / 2, 6 / 2) time x frequency patches
        log_mel = tiny("log_mel")  # 1 + 400 // 50 = 9 frames x 6 mel bins
        self.assertEqual(log_mel.get_layer("spectrogram_preprocessor").index_dims, (9, 6))
        # The front ends have no weights of their own: the patches' positions are Fourier features.
        self.assertEqual(log_mel.get_layer("log_mel_spectrogram").weights, [])
        self.assertEqual(log_mel.get_layer("spectrogram_preprocessor").weights, [])

    def test_log_mel_examples_are_independent_of_the_batch(self):
        model = tiny("log_mel", initializer_range=0.2)
        x = _audio(3, num_samples=400)["audio"]
        loud = np.concatenate([x[:1], 1000.0 * x[1:]])  # a loud neighbour must not change example 0
        self.assertAllClose(model({"audio": loud})[0], model({"audio": x[:1]})[0], atol=1e-5)
        silent = model({"audio": np.zeros((1, 400), "float32")})
        self.assertAllFinite(silent)

    def test_mixed_precision_and_distributed_fit(self):
        # The log-mel front end computes its spectrogram in float32 and the rest in the compute dtype.
        self.run_mixed_precision_test(lambda dtype: tiny("log_mel", dtype=dtype), inputs=INPUTS["log_mel"]())
        mixed = tiny("log_mel", dtype="mixed_float16")
        self.assertEqual(mixed.get_layer("log_mel_spectrogram").compute_dtype, "float32")
        self.assertEqual(mixed.get_layer("spectrogram_preprocessor").compute_dtype, "float16")
        self.run_distributed_fit_step(
            lambda: tiny("spectrogram"),
            _spectrogram(batch=4),
            np.array([0, 1, 2, 3]),
            loss="sparse_categorical_crossentropy",
        )

    def test_errors(self):
        flat = PerceiverAudioClassifier.from_hyperparameters
        with self.assertRaisesRegex(ValueError, "input_type.*Received: input_type='mel'"):
            flat(**{**FLAT["raw"], "input_type": "mel"})
        with self.assertRaisesRegex(ValueError, "multiple of samples_per_patch=8. Received: S=60"):
            flat(**{**FLAT["raw"], "num_samples": 60})
        with self.assertRaisesRegex(ValueError, "needs `spectrogram_shape"):
            flat(**{**FLAT["spectrogram"], "spectrogram_shape": None})
        with self.assertRaisesRegex(ValueError, r"7 frames, not a multiple of patch_size=2"):
            flat(**{**FLAT["spectrogram"], "spectrogram_shape": (7, 6)})
        with self.assertRaisesRegex(ValueError, r"9 frames.*1 \+ num_samples // sequence_stride"):
            flat(**{**FLAT["log_mel"], "patch_size": 2})
        with self.assertRaisesRegex(ValueError, "num_classes"):
            flat(**{**FLAT["raw"], "num_classes": 0})
        with self.assertRaisesRegex(ValueError, "num_classes.*Received: num_classes=0"):
            tiny(num_classes=0)
        with self.assertRaisesRegex(TypeError, "PerceiverBackbone.*Received: dict"):
            PerceiverAudioClassifier({"num_latents": 4}, num_classes=3)
        with self.assertRaisesRegex(ValueError, "Unknown preset 'audio_perceiver'"):
            PerceiverAudioClassifier.from_preset("audio_perceiver")


def test_from_hyperparameters_matches_the_explicit_build():
    """The flat argument list builds the same front ends and sizes as the explicit backbone + head."""
    for input_type, flat in FLAT.items():
        model = PerceiverAudioClassifier.from_hyperparameters(**flat)
        explicit = tiny(input_type)
        assert model.count_params() == explicit.count_params(), input_type
        assert [type(layer) for layer in model.backbone.input_preprocessors] == [
            type(layer) for layer in explicit.backbone.input_preprocessors
        ]
        assert model.backbone.input_name == explicit.backbone.input_name
        inputs = INPUTS[input_type]()
        assert model(inputs).shape == (3, 5)
    defaults = PerceiverAudioClassifier.from_hyperparameters(num_samples=64, samples_per_patch=8, num_bands=3)
    assert (defaults.backbone.num_latents, defaults.backbone.latent_dim) == (784, 512)
    assert defaults.get_config()["num_classes"] == 527


def test_pretrained_backbone_moves_to_a_new_head():
    """A classifier's backbone, weights included, becomes another classifier's (a new head on it)."""
    first = tiny("spectrogram", initializer_range=0.5)
    second = PerceiverAudioClassifier(first.backbone, num_classes=3)
    inputs = _spectrogram()
    np.testing.assert_array_equal(
        first.backbone.predict(inputs, verbose=0)["latents"],
        second.backbone.predict(inputs, verbose=0)["latents"],
    )
    assert tuple(second(inputs).shape) == (3, 3)
    assert second.get_layer("encoder") is first.get_layer("encoder")
    assert second.get_layer("decoder") is not first.get_layer("decoder")


def _transformers_audio_classifier(modeling, config, samples_per_patch, num_bands, num_samples):
    """The same model from transformers' blocks: PerceiverModel, audio preprocessor, classifier decoder."""
    preprocessor = modeling.PerceiverAudioPreprocessor(
        config,
        samples_per_patch=samples_per_patch,
        fourier_position_encoding_kwargs={"num_bands": num_bands, "max_resolution": (num_samples,)},
    )
    decoder = modeling.PerceiverClassificationDecoder(
        config,
        num_channels=config.d_latents,
        trainable_position_encoding_kwargs={"num_channels": config.d_latents, "index_dims": 1},
        use_query_residual=True,
    )
    return modeling.PerceiverModel(config, input_preprocessor=preprocessor, decoder=decoder)


def test_raw_audio_classifier_matches_transformers():
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")
    from transformers import PerceiverConfig

    from keras_perceiver.convert.from_transformers import (
        _load_classification_decoder,
        _load_encoder_and_processor,
        _WeightReader,
    )

    config = PerceiverConfig(
        num_latents=6,
        d_latents=16,
        d_model=8 + 7,
        num_blocks=2,
        num_self_attends_per_block=1,
        num_self_attention_heads=2,
        num_cross_attention_heads=1,
        num_labels=5,
    )
    torch.manual_seed(0)
    reference = _transformers_audio_classifier(modeling, config, 8, 3, 64).eval()
    with torch.no_grad():
        for parameter in reference.parameters():  # O(1) weights so that differences show
            parameter.normal_(0.0, 0.5)
    model = tiny("raw", num_blocks=2)
    assert model.count_params() == sum(p.numel() for p in reference.parameters())
    reader = _WeightReader({k: v.numpy() for k, v in reference.state_dict().items()})
    _load_encoder_and_processor(model, reader, "")
    _load_classification_decoder(model, reader, "decoder.decoder")
    assert reader.weights == {}
    x = _audio(2)["audio"]
    with torch.no_grad():
        expected = reference(inputs=torch.from_numpy(x)).logits.numpy()
    outputs = np.asarray(model({"audio": x}))
    max_diff = float(np.max(np.abs(outputs - expected)))
    magnitude = float(np.max(np.abs(expected)))
    print(f"raw audio classifier: max |keras - transformers| = {max_diff:.2e} (max |logit| {magnitude:.1f})")
    assert max_diff <= 1e-4


def test_preset_parameter_count_equals_transformers_for_the_same_configuration():
    from tests.models.reference_counts import preset_hyperparameters

    name = "audio_perceiver_raw_527"
    preset = PerceiverAudioClassifier.presets[name]
    model = PerceiverAudioClassifier.from_preset(name)
    assert model.count_params() == preset["num_parameters"]
    backbone = PerceiverBackbone.presets[preset["backbone"]]
    assert model.backbone.count_params() == backbone["num_parameters"]
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")
    from transformers import PerceiverConfig

    c = preset_hyperparameters(PerceiverAudioClassifier, name)
    config = PerceiverConfig(
        num_latents=c["num_latents"],
        d_latents=c["latent_dim"],
        d_model=c["samples_per_patch"] + 2 * c["num_bands"] + 1,
        num_blocks=c["num_blocks"],
        num_self_attends_per_block=c["num_self_attends_per_block"],
        num_self_attention_heads=c["num_self_attention_heads"],
        num_cross_attention_heads=c["num_cross_attention_heads"],
        num_labels=c["num_classes"],
    )
    with torch.device("meta"):  # shapes only, no memory or initialization
        reference = _transformers_audio_classifier(
            modeling, config, c["samples_per_patch"], c["num_bands"], c["input_shape"][0]
        )
    assert sum(p.numel() for p in reference.parameters()) == preset["num_parameters"]
