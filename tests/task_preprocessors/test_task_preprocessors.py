"""Tests of the task preprocessors against the references (transformers' processors, the export clients)."""

import keras
import numpy as np
import PIL.Image
import pytest

from keras_perceiver.task_preprocessors import (
    AudioTaskPreprocessor,
    FramePairTaskPreprocessor,
    ImageTaskPreprocessor,
    TextTaskPreprocessor,
)
from keras_perceiver.tokenizers import ByteTokenizer
from tests.models.test_perceiver_image_classifier import tiny as tiny_image_classifier
from tests.test_case import TestCase


def photo(height=300, width=360, seed=0):
    """A smooth uint8 RGB image (random colours upsampled), like a photo's statistics."""
    small = (np.random.default_rng(seed).uniform(size=(30, 36, 3)) * 255).astype("uint8")
    return np.asarray(PIL.Image.fromarray(small).resize((width, height), PIL.Image.BILINEAR))


class TaskPreprocessorsTest(TestCase):
    def test_image_preprocessor_matches_transformers_perceiver_image_processor(self):
        """Center crop 224/256 of the shorter side, bicubic resize to 224, ImageNet normalization."""
        from transformers import PerceiverImageProcessorPil

        for height, width in [(300, 360), (257, 240)]:
            image = photo(height, width)
            expected = PerceiverImageProcessorPil()(images=[image], return_tensors="np")["pixel_values"][0]
            ours = np.asarray(ImageTaskPreprocessor()(image[None])["images"][0])
            difference = np.abs(ours - expected.transpose(1, 2, 0))
            # PIL rounds the resized image to uint8: one grey level is 1 / 255 / 0.225 = 0.017 here.
            self.assertLess(difference.max(), 1.5 / 255 / 0.225)
            self.assertLess(difference.mean(), 0.01)

    def test_image_preprocessor_options_and_errors(self):
        plain = ImageTaskPreprocessor(image_size=None, crop_size=None, mean=None, std=None, num_channels=1)
        digits = np.arange(2 * 8 * 8, dtype="uint8").reshape(2, 8, 8, 1)
        self.assertAllClose(plain({"image": digits})["images"], digits / 255.0, atol=1e-7)
        self.assertEqual(tuple(plain(digits[0])["images"].shape), (8, 8, 1))  # unbatched, in tf.data
        with pytest.raises(ValueError, match=r"\(B, H, W, 1\).*Received: shape \(2, 8, 8, 3\)"):
            plain(np.zeros((2, 8, 8, 3), "uint8"))
        with pytest.raises(ValueError, match="interpolation"):
            ImageTaskPreprocessor(interpolation="lanczos7")
        with pytest.raises(ValueError, match="crop is relative to `image_size`"):
            ImageTaskPreprocessor(image_size=None)
        config = ImageTaskPreprocessor(image_size=(32, 32)).get_config()
        self.assertEqual(ImageTaskPreprocessor.from_config(config).get_config(), config)

    def test_image_classifier_predicts_raw_uint8_images_of_any_size(self):
        model = tiny_image_classifier(image_shape=(8, 8, 1))
        model.preprocessor = ImageTaskPreprocessor(
            image_size=None, crop_size=None, mean=None, std=None, num_channels=1
        )
        for size in [(8, 8), (12, 10)]:
            images = np.random.default_rng(0).integers(0, 256, size=(3, *size, 1)).astype("uint8")
            expected = np.asarray(model({"images": images / 255.0}))
            self.assertAllClose(model.predict(images, verbose=0), expected, atol=1e-5)

    def test_frame_pair_and_audio_preprocessors(self):
        frames = np.random.default_rng(1).integers(0, 256, size=(2, 2, 4, 6, 3)).astype("uint8")
        converted = FramePairTaskPreprocessor()({"frame0": frames[:, 0], "frame1": frames[:, 1]})["frames"]
        self.assertAllClose(converted, frames / 127.5 - 1.0, atol=1e-6)
        audio = AudioTaskPreprocessor(6, channel_axis=True)
        samples = np.linspace(-1, 1, 8, dtype="float32")
        self.assertAllClose(audio(samples[None])["audio"][..., 0], samples[None, :6])
        self.assertAllClose(audio(samples[None, :4])["audio"][0, :, 0], np.concatenate([samples[:4], [0, 0]]))
        with pytest.raises(ValueError, match="num_samples"):
            AudioTaskPreprocessor(0)

    def test_text_preprocessor_matches_transformers_tokenizer(self):
        from transformers import PerceiverTokenizer

        texts = ["Hé, ça va?", "a"]
        expected = PerceiverTokenizer()(texts, padding="max_length", max_length=16)
        ours = TextTaskPreprocessor(ByteTokenizer(sequence_length=16, add_special_tokens=True))(texts)
        np.testing.assert_array_equal(ours["token_ids"], expected["input_ids"])
        np.testing.assert_array_equal(ours["padding_mask"], np.asarray(expected["attention_mask"], bool))
        config = keras.saving.serialize_keras_object(TextTaskPreprocessor(ByteTokenizer(sequence_length=16)))
        restored = keras.saving.deserialize_keras_object(config)
        self.assertEqual(restored.tokenizer.sequence_length, 16)

    def test_text_pair_preprocessor_matches_transformers_tokenizer(self):
        from transformers import PerceiverTokenizer

        texts, pairs = ["Hé, ça va?", "a"], ["Oui", "a much longer second sentence"]
        expected = PerceiverTokenizer()(texts, pairs, padding="max_length", max_length=24, truncation=True)
        preprocessor = TextTaskPreprocessor(
            ByteTokenizer(sequence_length=24, add_special_tokens=True), text_pair_key="text_pair"
        )
        self.assertEqual(sorted(preprocessor.input_signature), ["text", "text_pair"])
        for raw in ({"text": texts, "text_pair": pairs}, (texts, pairs)):
            ours = preprocessor(raw)
            np.testing.assert_array_equal(ours["token_ids"], expected["input_ids"])
            np.testing.assert_array_equal(ours["padding_mask"], np.asarray(expected["attention_mask"], bool))
        restored = self.run_config_round_trip(preprocessor)
        self.assertEqual(restored.text_pair_key, "text_pair")
        with pytest.raises(ValueError, match=r"dict with keys \['text', 'text_pair'\].*Received: list"):
            preprocessor(texts)
        with pytest.raises(ValueError, match="missing raw input 'text_pair'"):
            preprocessor({"text": texts})
        with pytest.raises(ValueError, match="joins sentence pairs.*Received: tokenizer=Identity"):
            TextTaskPreprocessor(keras.layers.Identity(), text_pair_key="text_pair")


def test_bad_raw_inputs_get_named_errors():
    with pytest.raises(TypeError, match="`image` must hold numbers. Received: dtype string"):
        ImageTaskPreprocessor()(np.array([["a"]]))
    with pytest.raises(ValueError, match=r"missing raw input 'image'.*Received: keys=\['picture'\]"):
        ImageTaskPreprocessor().convert({"picture": np.zeros((1, 4, 4, 3), "uint8")})
    with pytest.raises(TypeError, match="`audio` must hold numbers"):
        AudioTaskPreprocessor(4)(np.array(["x"]))
    with pytest.raises(ValueError, match=r"\(B, S\) or \(S,\).*\(1, 2, 3\)"):
        AudioTaskPreprocessor(4)(np.zeros((1, 2, 3), "float32"))
    with pytest.raises(ValueError, match=r"two frames of one shape.*\(1, 4, 4, 3\), \(1, 4, 5, 3\)"):
        FramePairTaskPreprocessor()({"frame0": np.zeros((1, 4, 4, 3)), "frame1": np.zeros((1, 4, 5, 3))})
    with pytest.raises(ValueError, match="missing raw input 'frame1'"):
        FramePairTaskPreprocessor()({"frame0": np.zeros((1, 4, 4, 3))})
    with pytest.raises(TypeError, match="ByteTokenizer"):
        TextTaskPreprocessor(ByteTokenizer(sequence_length=4))(np.array([1, 2]))


def test_flow_and_audio_models_predict_raw_inputs():
    from tests.models.test_perceiver_audio_classifier import tiny as tiny_audio_classifier
    from tests.models.test_perceiver_optical_flow import tiny as tiny_flow

    flow = tiny_flow(preprocessor=FramePairTaskPreprocessor())
    frames = np.random.default_rng(2).integers(0, 256, size=(2, 2, 6, 8, 3)).astype("uint8")
    expected = np.asarray(flow({"frames": frames / 127.5 - 1.0}))
    raw = {"frame0": frames[:, 0], "frame1": frames[:, 1]}
    np.testing.assert_allclose(flow.predict(raw, verbose=0), expected, atol=1e-5)

    classifier = tiny_audio_classifier()
    classifier.preprocessor = AudioTaskPreprocessor(64)
    samples = np.random.default_rng(3).uniform(-1, 1, size=(3, 80)).astype("float32")
    expected = np.asarray(classifier({"audio": samples[:, :64]}))
    np.testing.assert_allclose(classifier.predict(samples, verbose=0), expected, atol=1e-5)
