"""Tests of word-level segmentation scores and word tag accuracy against hand counts and brute force."""

import numpy as np
import pytest

from keras_perceiver.metrics import word_segmentation_scores, word_tag_accuracy


def brute_force_f1(gold, predicted):
    """Count by character boundaries: a word is correct when both its ends are gold ends with none inside."""
    correct = num_gold = num_predicted = 0
    for gold_words, predicted_words in zip(gold, predicted):
        ends = lambda words: list(np.cumsum([len(w) for w in words]))  # noqa: E731
        gold_ends, predicted_ends = ends(gold_words), ends(predicted_words)
        num_gold, num_predicted = num_gold + len(gold_ends), num_predicted + len(predicted_ends)
        for start, end in zip([0] + predicted_ends[:-1], predicted_ends):
            inner_gold = [e for e in gold_ends if start < e < end]
            correct += (start == 0 or start in gold_ends) and end in gold_ends and not inner_gold
    precision, recall = correct / num_predicted, correct / num_gold
    return 2 * precision * recall / (precision + recall) if correct else 0.0


def test_hand_counted_cases():
    scores = word_segmentation_scores([["迈向", "充满", "希望"]], [["迈向", "充", "满希望"]])
    # One of 3 predicted words is right, one of 3 gold words is found.
    assert scores["precision"] == pytest.approx(1 / 3) and scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(1 / 3)
    assert word_segmentation_scores([["ab"]], [["ab"]])["f1"] == 1.0
    assert word_segmentation_scores([["ab"]], [["a", "b"]])["f1"] == 0.0
    assert word_segmentation_scores([[]], [[]])["f1"] == 0.0


def test_matches_a_brute_force_count_on_random_segmentations():
    rng = np.random.default_rng(0)
    gold, predicted = [], []
    for _ in range(50):
        text = "".join(rng.choice(list("的人民中国新年"), size=rng.integers(1, 30)))
        for segmented in (gold, predicted):
            cuts = np.flatnonzero(rng.random(len(text)) < 0.4)
            segmented.append(["".join(p) for p in np.split(np.array(list(text)), cuts) if p.size])
    assert word_segmentation_scores(gold, predicted)["f1"] == pytest.approx(brute_force_f1(gold, predicted))


def test_tag_accuracy_and_errors():
    assert word_tag_accuracy([["迈向", "的"]], [["v", "u"]], [["v", "x", "n"]]) == 0.5
    with pytest.raises(ValueError, match="one predicted tag per character. Expected 3. Received: 2"):
        word_tag_accuracy([["迈向", "的"]], [["v", "u"]], [["v", "x"]])
    with pytest.raises(ValueError, match="text 0 differs"):
        word_segmentation_scores([["ab"]], [["ac"]])
    with pytest.raises(ValueError, match="Expected 1 texts. Received: 2"):
        word_segmentation_scores([["ab"]], [["ab"], ["c"]])
