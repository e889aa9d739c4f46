"""Word-level precision, recall and F1 of a segmentation, and tag accuracy over gold words (corpus level)."""


def _spans(words):
    spans, start = set(), 0
    for word in words:
        spans.add((start, start + len(word)))
        start += len(word)
    return spans


def word_segmentation_scores(gold, predicted):
    """Word-level precision, recall and F1 of predicted segmentations (the SIGHAN bakeoff scoring).

    A predicted word counts when its character span (start, end) is a gold
    word's span in the same text; every word is scored, punctuation included.
    Scores are totals over the corpus: precision = correct / predicted words,
    recall = correct / gold words, F1 their harmonic mean.

    Source: the SIGHAN Chinese word segmentation bakeoffs' `score` script
    (Emerson, 2005), which counts matching word spans.

    Args:
        gold: sequence of texts, each a sequence of words (str).
        predicted: the same texts segmented, each a sequence of words whose
            concatenation equals the gold text's.

    Returns:
        dict with `"precision"`, `"recall"`, `"f1"` (floats in [0, 1]) and
        `"num_gold_words"`, `"num_predicted_words"` (ints).

    Raises:
        ValueError: if the two differ in length, or a predicted text's
            characters differ from its gold text's.

    Example:
    >>> from keras_perceiver.metrics import word_segmentation_scores
    >>> word_segmentation_scores([["迈向", "充满"]], [["迈向", "充", "满"]])["f1"]
    0.4
    """
    if len(gold) != len(predicted):
        raise ValueError(
            f"word_segmentation_scores: one prediction per gold text. Expected {len(gold)} texts. "
            f"Received: {len(predicted)}"
        )
    correct = num_gold = num_predicted = 0
    for index, (gold_words, predicted_words) in enumerate(zip(gold, predicted)):
        if "".join(gold_words) != "".join(predicted_words):
            raise ValueError(
                f"word_segmentation_scores: text {index} differs. Expected the characters of "
                f"{''.join(gold_words)[:40]!r}. Received: {''.join(predicted_words)[:40]!r}"
            )
        gold_spans, predicted_spans = _spans(gold_words), _spans(predicted_words)
        correct += len(gold_spans & predicted_spans)
        num_gold += len(gold_spans)
        num_predicted += len(predicted_spans)
    precision = correct / num_predicted if num_predicted else 0.0
    recall = correct / num_gold if num_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "num_gold_words": num_gold,
        "num_predicted_words": num_predicted,
    }


def word_tag_accuracy(gold_words, gold_tags, predicted_character_tags):
    """Fraction of gold words whose predicted tag (that of their first character) is the gold tag.

    Args:
        gold_words: sequence of texts, each a sequence of words.
        gold_tags: the words' tags, the same structure.
        predicted_character_tags: sequence of texts, each a sequence of one
            tag per character (e.g. the tag part of `"b-n"` labels).

    Returns:
        float in [0, 1] (0.0 when there are no words).

    Raises:
        ValueError: if a text's predicted tags are not one per character.
    """
    correct = total = 0
    for index, (words, tags, predicted) in enumerate(zip(gold_words, gold_tags, predicted_character_tags)):
        if sum(len(word) for word in words) != len(predicted):
            raise ValueError(
                f"word_tag_accuracy: text {index} needs one predicted tag per character. Expected "
                f"{sum(len(word) for word in words)}. Received: {len(predicted)}"
            )
        start = 0
        for word, tag in zip(words, tags):
            correct += predicted[start] == tag
            total += 1
            start += len(word)
    return correct / total if total else 0.0
