"""Tests of PerceiverMaskedLM.fill_mask: spans, candidates and scores from the model's own probabilities."""

import itertools

import numpy as np
import pytest

from keras_perceiver.models.fill_mask import _byte_ids, _top_sequences
from tests.models.test_perceiver_masked_lm import TEXT, build_model


def test_top_sequences_is_exact_for_independent_positions():
    log_probs = np.log(np.random.default_rng(0).dirichlet(np.ones(5), size=3))
    brute = sorted(
        (
            (seq, sum(log_probs[i, j] for i, j in enumerate(seq)))
            for seq in itertools.product(range(5), repeat=3)
        ),
        key=lambda item: -item[1],
    )[:4]
    beams = _top_sequences(log_probs, 4)
    assert [seq for seq, _ in beams] == [seq for seq, _ in brute]
    np.testing.assert_allclose([s for _, s in beams], [s for _, s in brute])


def test_byte_ids_mark_each_masked_byte_and_group_spans():
    ids, spans = _byte_ids("a[MASK][MASK]b[MASK]", "[MASK]", add_special_tokens=True)
    assert ids == [4, ord("a") + 6, 3, 3, ord("b") + 6, 3, 5]
    assert spans == [[2, 4], [5, 6]]


def test_fill_mask_reads_the_models_probabilities():
    model = build_model(initializer_range=0.5)
    text = "héllo [MASK][MASK] world[MASK]"
    spans = model.fill_mask(text, top_k=3)
    assert [(span["start"], span["length"]) for span in spans] == [(7, 2), (15, 1)]
    ids, _ = _byte_ids(text, "[MASK]", False)
    length = TEXT["max_sequence_length"]
    token_ids = np.array([ids + [0] * (length - len(ids))], np.int32)
    logits = np.asarray(model({"token_ids": token_ids, "padding_mask": token_ids != 0}))[0].astype(np.float64)
    probabilities = np.exp(logits[:, 6:] - logits[:, 6:].max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    best = [int(np.argmax(probabilities[i])) for i in (7, 8, 15)]
    first = spans[0]["candidates"][0]
    assert first["text"] == bytes(best[:2]).decode("utf-8", errors="replace")
    np.testing.assert_allclose(
        first["score"], probabilities[7, best[0]] * probabilities[8, best[1]], rtol=1e-4
    )
    assert [c["score"] for c in spans[0]["candidates"]] == sorted(
        (c["score"] for c in spans[0]["candidates"]), reverse=True
    )
    assert len(spans[1]["candidates"]) == 3
    assert spans[0]["filled"].startswith("héllo ")
    assert model.fill_mask([text, "[MASK]"], top_k=1)[1][0]["length"] == 1
    with pytest.raises(ValueError, match="at least one '\\[MASK\\]'"):
        model.fill_mask("no mask here")
    with pytest.raises(ValueError, match="at most"):
        model.fill_mask("x" * 100 + "[MASK]")
