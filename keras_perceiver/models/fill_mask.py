"""Fill-mask for byte-level masked LMs: the top-k strings for each masked span (transformers' fill-mask)."""

import numpy as np

from keras_perceiver.validation import check_positive_int

# The byte vocabulary of the language perceiver (keras_perceiver.tokenizers.byte_tokenizer): ids 0..5 are
# PAD, BOS, EOS, MASK, CLS, SEP; byte b is b + 6. Kept here as numbers so that models import no TensorFlow.
_PAD_ID, _MASK_ID, _CLS_ID, _SEP_ID, _NUM_SPECIAL = 0, 3, 4, 5, 6


def _byte_ids(text, mask_token, add_special_tokens):
    """Ids of `text` with each `mask_token` as one MASK byte, and the positions of the masked spans."""
    ids, spans = [], []
    for i, segment in enumerate(text.split(mask_token)):
        if i:
            if spans and spans[-1][1] == len(ids):
                spans[-1][1] += 1  # consecutive masks: one span
            else:
                spans.append([len(ids), len(ids) + 1])
            ids.append(_MASK_ID)
        ids.extend(byte + _NUM_SPECIAL for byte in segment.encode("utf-8"))
    if add_special_tokens:
        ids = [_CLS_ID, *ids, _SEP_ID]
        spans = [[start + 1, end + 1] for start, end in spans]
    return ids, spans


def _top_sequences(log_probs, k):
    """The k most probable sequences under independent positions (L, V): exact beam search of width k."""
    beams = [((), 0.0)]
    for row in log_probs:
        best = np.argsort(-row)[:k]
        beams = sorted(
            ((ids + (int(j),), score + row[j]) for ids, score in beams for j in best),
            key=lambda beam: -beam[1],
        )[:k]
    return beams


def _decode(ids):
    return bytes(i - _NUM_SPECIAL for i in ids if i >= _NUM_SPECIAL).decode("utf-8", errors="replace")


class FillMaskMixin:
    """`fill_mask(texts)`: what a byte-level masked LM puts in each masked span, with probabilities."""

    def fill_mask(self, texts, top_k=5, mask_token="[MASK]", add_special_tokens=False):
        """The top-k fillings of each masked span, as transformers' `fill-mask` pipeline for bytes.

        Each `mask_token` in a text masks one byte (the language perceiver
        is byte-level: mask a word of n bytes with n tokens); consecutive
        masks form a span. A span's candidates are the k most probable byte
        strings under the model's per-position probabilities (exact search
        of width k; a score is the product of the positions' softmax
        probabilities). Texts are padded to the model's sequence length.

        Source: transformers `FillMaskPipeline` and the
        `PerceiverForMaskedLM` example (" This is an incomplete sentence
        where some words are missing." with bytes 52-61 masked).

        Args:
            texts: a string or a list of strings.
            top_k: int, candidates per span. Defaults to 5.
            mask_token: str, the marker of one masked byte. Defaults to
                `"[MASK]"`.
            add_special_tokens: bool, wrap in [CLS] ... [SEP] as
                transformers' tokenizer does (for checkpoints converted from
                transformers). Defaults to False (DeepMind).

        Returns:
            For one string, a list (one per span, in order) of dicts
            `{"start": byte offset in the text, "length": bytes,
            "candidates": [{"text": str, "score": float}], "filled":
            the text with the best candidate}`; for a list, a list of those.

        Raises:
            ValueError: for a text without `mask_token`, one longer than the
                model's sequence length, or a non-positive `top_k`.
        """
        check_positive_int("top_k", top_k)
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        length = self.text_preprocessor.max_sequence_length
        batch_ids, batch_spans = [], []
        for text in texts:
            ids, spans = _byte_ids(text, mask_token, add_special_tokens)
            if not spans or len(ids) > length:
                raise ValueError(
                    f"{type(self).__name__}.fill_mask: each text needs at least one {mask_token!r} and "
                    f"at most {length} bytes. Received: {len(spans)} masked spans, {len(ids)} bytes "
                    f"in {text[:40]!r}"
                )
            batch_ids.append(ids + [_PAD_ID] * (length - len(ids)))
            batch_spans.append(spans)
        token_ids = np.array(batch_ids, np.int32)
        logits = np.asarray(
            self.predict({"token_ids": token_ids, "padding_mask": token_ids != _PAD_ID}, verbose=0),
            np.float64,
        )
        logits[..., :_NUM_SPECIAL] = -np.inf  # a filling is bytes
        log_probs = logits - logits.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        results = []
        for ids, spans, row in zip(batch_ids, batch_spans, log_probs):
            filled = list(ids)
            text_spans = []
            for start, end in spans:
                beams = _top_sequences(row[start:end], top_k)
                filled[start:end] = beams[0][0]
                offset = start - (1 if add_special_tokens else 0)
                candidates = [{"text": _decode(seq), "score": float(np.exp(score))} for seq, score in beams]
                text_spans.append({"start": offset, "length": end - start, "candidates": candidates})
            for span in text_spans:
                span["filled"] = _decode(filled)
            results.append(text_spans)
        return results[0] if single else results
