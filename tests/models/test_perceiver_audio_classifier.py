"""Tests of PerceiverAudioClassifier: raw, log-mel and spectrogram front ends, parity, round trips, preset."""

import numpy as np
import pytest

from keras_perceiver.models.perceiver_audio_classifier import PerceiverAudioClassifier
from tests.test_case import TestCase

CORE = dict(
    num_classes=5,
    num_bands=3,
    num_latents=6,
    latent_dim=16,
    num_self_attends_per_block=1,
    num_self_attention_heads=2,
)
RAW = dict(CORE, num_samples=64, samples_per_patch=8)
LOG_MEL = dict(
    CORE,
    input_type="log_mel",
    num_samples=400,
    sampling_rate=8000,
    fft_length=64,
    sequence_stride=50,  # 1 + 400 // 50 = 9 frames
    num_mel_bins=6,
    min_freq=50.0,
)
SPECTROGRAM = dict(CORE, input_type="spectrogram", spectrogram_shape=(8, 6), patch_size=2)


def _audio(batch=3, num_samples=64, seed=0):
    # Synthetic tones + noise: shapes and numerics only (no learning is claimed from them).
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / 8000.0
    tones = np.sin(2 * np.pi * rng.uniform(200, 2000, size=(batch, 1)) * t)
    return {"audio": (tones + 0.1 * rng.normal(size=(batch, num_samples))).astype("float32")}


def _spectrogram(batch=3, seed=0):
    return {"spectrogram": np.random.default_rng(seed).normal(size=(batch, 8, 6)).astype("float32")}


CASES = {
    "raw": (RAW, lambda batch=3: _audio(batch)),
    "log_mel": (LOG_MEL, lambda batch=3: _audio(batch, num_samples=400)),
    "spectrogram": (SPECTROGRAM, lambda batch=3: _spectrogram(batch)),
}


class PerceiverAudioClassifierTest(TestCase):
    def test_round_trips(self):
        for name, (kwargs, make_inputs) in CASES.items():
            with self.subTest(name):
                model = PerceiverAudioClassifier(**kwargs)
                self.assertEqual(tuple(model(make_inputs()).shape), (3, 5))
                config = model.get_config()
                for key, value in kwargs.items():
                    self.assertEqual(config[key], value, msg=key)
                self.run_config_round_trip(model)
        # Saving on the front end with the most layers (MelSpectrogram + patches).
        self.run_model_saving_test(
            PerceiverAudioClassifier(**LOG_MEL, initializer_range=0.5), CASES["log_mel"][1](), atol=1e-5
        )

    def test_front_ends(self):
        self.assertEqual(PerceiverAudioClassifier(**RAW).get_layer("audio_preprocessor").num_patches, 64 // 8)
        spectrogram = PerceiverAudioClassifier(**SPECTROGRAM).get_layer("spectrogram_preprocessor")
        self.assertEqual(spectrogram.index_dims, (4, 3))  # (8 / 2, 6 / 2) time x frequency patches
        log_mel = PerceiverAudioClassifier(**LOG_MEL).get_layer("spectrogram_preprocessor")
        self.assertEqual(log_mel.index_dims, (9, 6))  # 1 + 400 // 50 frames x 6 mel bins

    def test_log_mel_examples_are_independent_of_the_batch(self):
        model = PerceiverAudioClassifier(**LOG_MEL, initializer_range=0.2)
        x = _audio(3, num_samples=400)["audio"]
        loud = np.concatenate([x[:1], 1000.0 * x[1:]])  # a loud neighbour must not change example 0
        self.assertAllClose(model({"audio": loud})[0], model({"audio": x[:1]})[0], atol=1e-5)
        silent = model({"audio": np.zeros((1, 400), "float32")})
        self.assertAllFinite(silent)

    def test_mixed_precision_and_distributed_fit(self):
        # The log-mel front end computes its spectrogram in float32 and the rest in the compute dtype.
        self.run_mixed_precision_test(
            lambda dtype: PerceiverAudioClassifier(**LOG_MEL, dtype=dtype), inputs=CASES["log_mel"][1]()
        )
        self.run_distributed_fit_step(
            lambda: PerceiverAudioClassifier(**SPECTROGRAM),
            _spectrogram(batch=4),
            np.array([0, 1, 2, 3]),
            loss="sparse_categorical_crossentropy",
        )

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "input_type.*Received: input_type='mel'"):
            PerceiverAudioClassifier(**{**RAW, "input_type": "mel"})
        with self.assertRaisesRegex(ValueError, "multiple of samples_per_patch=8. Received: S=60"):
            PerceiverAudioClassifier(**{**RAW, "num_samples": 60})
        with self.assertRaisesRegex(ValueError, "needs `spectrogram_shape"):
            PerceiverAudioClassifier(**{**SPECTROGRAM, "spectrogram_shape": None})
        with self.assertRaisesRegex(ValueError, r"7 frames, not a multiple of patch_size=2"):
            PerceiverAudioClassifier(**{**SPECTROGRAM, "spectrogram_shape": (7, 6)})
        with self.assertRaisesRegex(ValueError, r"9 frames.*1 \+ num_samples // sequence_stride"):
            PerceiverAudioClassifier(**{**LOG_MEL, "patch_size": 2})
        with self.assertRaisesRegex(ValueError, "num_classes"):
            PerceiverAudioClassifier(**{**RAW, "num_classes": 0})


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
    model = PerceiverAudioClassifier(**{**RAW, "num_blocks": 2})
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
    preset = PerceiverAudioClassifier.presets["audio_perceiver_raw_527"]
    model = PerceiverAudioClassifier.from_preset("audio_perceiver_raw_527")
    assert model.count_params() == preset["num_parameters"]
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")
    from transformers import PerceiverConfig

    c = preset["config"]
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
            modeling, config, c["samples_per_patch"], c["num_bands"], c["num_samples"]
        )
    assert sum(p.numel() for p in reference.parameters()) == preset["num_parameters"]
