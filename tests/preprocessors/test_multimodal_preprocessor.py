"""Tests of `MultimodalPreprocessor`: padding, masking, sizes, parity with transformers, serialization."""

import keras
import numpy as np
import pytest

from keras_perceiver.preprocessors.audio_preprocessor import AudioPreprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.preprocessors.multimodal_preprocessor import MultimodalPreprocessor
from keras_perceiver.preprocessors.one_hot_preprocessor import OneHotPreprocessor
from tests.test_case import TestCase

NUM_SAMPLES, SAMPLES_PER_PATCH, NUM_CLASSES = 32, 4, 5
VIDEO_SHAPE = (2, 4, 4, 3)  # T, H, W, C; 2x2 patches -> grid (2, 2, 2)


def modalities():
    return {
        "audio": AudioPreprocessor(
            samples_per_patch=SAMPLES_PER_PATCH, num_bands=3, max_resolution=NUM_SAMPLES, name="audio"
        ),
        "image": ImagePreprocessor(
            prep_type="patches", spatial_downsample=2, num_bands=2, max_resolution=(2, 4, 4), name="image"
        ),
        "label": OneHotPreprocessor(name="label"),
    }


def inputs(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "audio": rng.uniform(-1, 1, size=(batch, NUM_SAMPLES, 1)).astype("float32"),
        "image": rng.uniform(-1, 1, size=(batch, *VIDEO_SHAPE)).astype("float32"),
        "label": np.eye(NUM_CLASSES, dtype="float32")[rng.integers(0, NUM_CLASSES, batch)],
    }


# Widths: audio 4 + 1 + 6 = 11, image 12 + 3 + 12 = 27, label 5; common width 27 + 4 = 31.
SIZES = {"audio": 8, "image": 8, "label": 1}


class MultimodalPreprocessorTest(TestCase):
    def test_layer(self):
        layer, outputs = self.run_layer_test(
            MultimodalPreprocessor,
            {"modalities": modalities(), "min_padding_size": 4},
            (inputs(),),
            expected_output_shape=(2, 17, 31),
            expected_num_trainable_weights=3,
        )
        self.assertEqual(layer.modality_sizes, SIZES)
        self.assertEqual(list(layer.modality_sizes), ["audio", "image", "label"])
        self.assertEqual(layer.num_channels, 31)
        self.assertEqual([w.name for w in layer.weights], ["audio_padding", "image_padding", "label_padding"])

    def test_layout_padding_and_sorted_order(self):
        layer = MultimodalPreprocessor({"label": OneHotPreprocessor(), "audio": modalities()["audio"]})
        x = inputs()
        outputs = keras.ops.convert_to_numpy(layer({"label": x["label"], "audio": x["audio"]}))
        self.assertEqual(layer.modality_sizes, {"audio": 8, "label": 1})
        self.assertEqual(outputs.shape, (2, 9, 13))  # max(11, 5) + 2
        audio = keras.ops.convert_to_numpy(layer.modalities["audio"](x["audio"]))
        np.testing.assert_array_equal(outputs[:, :8, :11], audio)
        np.testing.assert_array_equal(outputs[:, 8, :5], x["label"])
        label_padding = keras.ops.convert_to_numpy(layer.paddings["label"])[0]
        self.assertEqual(label_padding.shape, (8,))
        np.testing.assert_array_equal(outputs[:, 8, 5:], np.broadcast_to(label_padding, (2, 8)))
        audio_padding = keras.ops.convert_to_numpy(layer.paddings["audio"])[0]
        np.testing.assert_array_equal(outputs[:, :8, 11:], np.broadcast_to(audio_padding, (2, 8, 2)))
        self.assertEqual(
            layer.compute_modality_sizes({"label": (None, 5), "audio": (None, 64)}), {"audio": 16, "label": 1}
        )

    def test_masking_follows_training_unless_always_or_forced(self):
        x = inputs()
        layer = MultimodalPreprocessor(modalities(), mask_probs={"label": 1.0, "audio": 0.0})
        clean = keras.ops.convert_to_numpy(layer(x))
        token = keras.ops.convert_to_numpy(layer.mask_tokens["label"])[0]
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), clean)
        masked = keras.ops.convert_to_numpy(layer(x, training=True))
        np.testing.assert_array_equal(masked[:, 16], np.broadcast_to(token, (2, token.size)))
        np.testing.assert_array_equal(masked[:, :16], clean[:, :16])  # p = 0: audio never masked
        forced = keras.ops.convert_to_numpy(layer(x, apply_mask=True))
        np.testing.assert_array_equal(forced, masked)
        self.assertFalse(np.array_equal(forced[:, 16], clean[:, 16]))
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(layer(x, training=True, apply_mask=False)), clean
        )
        always = MultimodalPreprocessor(modalities(), mask_probs={"label": 1.0}, mask_mode="always")
        always(x)
        always.set_weights([layer.paddings[m].numpy() for m in ("audio", "image", "label")] + [token[None]])
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(always(x)), masked)
        self.assertIsNone(layer.seed_generator)  # probabilities 0 and 1 need no random draw

    def test_fractional_masking_is_seeded_and_has_the_right_rate(self):
        def masks(seed, calls=2):
            layer = MultimodalPreprocessor(
                {"audio": AudioPreprocessor(samples_per_patch=1, num_bands=2)},
                mask_probs={"audio": 0.3},
                seed=seed,
            )
            x = {"audio": np.random.default_rng(0).uniform(1, 2, size=(4, 500)).astype("float32")}
            layer(x)
            token = keras.ops.convert_to_numpy(layer.mask_tokens["audio"])[0]
            result = []
            for _ in range(calls):
                out = keras.ops.convert_to_numpy(layer(x, training=True))
                is_token = np.all(out == token, axis=-1)
                # Every position is either the mask token or the unmasked input.
                np.testing.assert_array_equal(out[~is_token][:, 0], x["audio"][~is_token])
                result.append(is_token)
            return result

        first, second = masks(seed=7)
        self.assertFalse(np.array_equal(first, second))  # a new draw per call
        repeat_first, repeat_second = masks(seed=7)
        np.testing.assert_array_equal(first, repeat_first)  # same seed, same sequence
        np.testing.assert_array_equal(second, repeat_second)
        self.assertFalse(np.array_equal(first, masks(seed=8)[0]))
        rate = np.mean(np.concatenate([first, second]))
        self.assertBetween(rate, 0.27, 0.33)  # 4,000 draws, p = 0.3: std 0.007

    def test_mask_tokens_and_paddings_receive_gradients(self):
        layer = MultimodalPreprocessor(modalities(), mask_probs={"audio": 0.5, "label": 1.0}, seed=1)
        self._check_gradients(layer, (inputs(batch=4),), {"training": True})

    def test_functional_model_saving_and_mixed_precision(self):
        x = inputs()
        symbolic = {k: keras.Input(v.shape[1:], name=k) for k, v in x.items()}
        layer = MultimodalPreprocessor(modalities(), mask_probs={"label": 1.0}, mask_mode="always", name="mm")
        model = keras.Model(symbolic, layer(symbolic))
        self.assertEqual(layer.modality_sizes, SIZES)
        self.run_model_saving_test(model, x)
        self.run_mixed_precision_test(
            lambda dtype: MultimodalPreprocessor(modalities(), mask_probs={"label": 1.0}, dtype=dtype),
            inputs=(x,),
            call_kwargs={"training": True},
        )


MASK_CASES = {
    "label_masked": {"audio": 0.0, "image": 0.0, "label": 1.0},  # the published Kinetics setting
    "audio_and_image_masked": {"audio": 1.0, "image": 1.0, "label": 0.0},
}


@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_matches_transformers(case):
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")
    from transformers import PerceiverConfig

    config = PerceiverConfig(num_labels=NUM_CLASSES)
    torch.manual_seed(0)
    reference = modeling.PerceiverMultimodalPreprocessor(
        min_padding_size=4,
        modalities={
            "audio": modeling.PerceiverAudioPreprocessor(
                config,
                samples_per_patch=SAMPLES_PER_PATCH,
                fourier_position_encoding_kwargs={"num_bands": 3, "max_resolution": (NUM_SAMPLES,)},
            ),
            "image": modeling.PerceiverImagePreprocessor(
                config,
                prep_type="patches",
                spatial_downsample=2,
                temporal_downsample=1,
                fourier_position_encoding_kwargs={"num_bands": 2, "max_resolution": (2, 4, 4)},
            ),
            "label": modeling.PerceiverOneHotPreprocessor(config),
        },
        mask_probs=MASK_CASES[case],
    )
    x = inputs(seed=2)
    torch_inputs = {k: torch.from_numpy(v) for k, v in x.items()}
    torch_inputs["image"] = torch_inputs["image"].permute(0, 1, 4, 2, 3)  # channels first
    with torch.no_grad():
        expected, sizes, _ = reference(torch_inputs)
    layer = MultimodalPreprocessor(
        modalities(), mask_probs=MASK_CASES[case], min_padding_size=4, mask_mode="always"
    )
    layer(x)
    assert layer.modality_sizes == sizes == SIZES
    assert layer.num_channels == reference.num_channels
    for modality in ("audio", "image", "label"):
        layer.paddings[modality].assign(reference.padding[modality].detach().numpy())
        layer.mask_tokens[modality].assign(reference.mask[modality].detach().numpy())
    outputs = keras.ops.convert_to_numpy(layer(x))
    max_diff = float(np.max(np.abs(outputs - expected.numpy())))
    print(f"{case}: max |keras - transformers| = {max_diff:.2e}")
    assert max_diff <= 1e-4


def test_errors():
    with pytest.raises(ValueError, match="non-empty dict"):
        MultimodalPreprocessor({})
    with pytest.raises(ValueError, match=r"Expected a subset of \['audio'\]. Received: \['video'\]"):
        MultimodalPreprocessor({"audio": AudioPreprocessor()}, mask_probs={"video": 0.5})
    with pytest.raises(ValueError, match=r"mask_probs\['audio'\]=1.5"):
        MultimodalPreprocessor({"audio": AudioPreprocessor()}, mask_probs={"audio": 1.5})
    with pytest.raises(ValueError, match="min_padding_size"):
        MultimodalPreprocessor({"audio": AudioPreprocessor()}, min_padding_size=-1)
    with pytest.raises(ValueError, match="mask_mode"):
        MultimodalPreprocessor({"audio": AudioPreprocessor()}, mask_mode="eval")
    layer = MultimodalPreprocessor(modalities())
    x = inputs()
    with pytest.raises(
        ValueError, match=r"Expected keys \['audio', 'image', 'label'\]. Received: \['audio', 'label'\]"
    ):
        layer({"audio": x["audio"], "label": x["label"]})
    layer(x)
    with pytest.raises(ValueError, match="Received"):
        layer({**x, "audio": x["audio"][:, :16]})
