"""Fuzz cases for the losses and metrics: `MaskedLMLoss`, `MaskedLMAccuracy`, `EndPointError` and
`PeakSignalToNoiseRatio` on labels out of range, non-numeric values, wrong ranks and shapes, and sample
weights of the wrong shape raise a named error naming the received value; valid batches (any size, float
labels, NaN ground-truth flow) give the value computed here with NumPy.
"""

import numpy as np

from keras_perceiver.losses import MaskedLMLoss
from keras_perceiver.metrics import EndPointError, MaskedLMAccuracy, PeakSignalToNoiseRatio
from tests.fuzz.harness import WORKS, Fuzzer, Raises
from tests.test_case import TestCase

DRAWS = 8
MINIMUM_CASES = 40


def masked_lm_reference(labels, logits, weights):
    """(loss, accuracy): cross-entropy and argmax accuracy averaged over the weighted positions."""
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_probs, labels[..., None].astype(int), -1)[..., 0]
    total = weights.sum()
    if total == 0:
        return 0.0, 0.0
    correct = (logits.argmax(-1) == labels).astype(float)
    return float((ce * weights).sum() / total), float((correct * weights).sum() / total)


def masked_lm(kind):
    """A callable (labels, logits, weights) -> value for the loss or the accuracy metric."""
    if kind == "MaskedLMLoss":
        return lambda y, p, w: float(MaskedLMLoss()(y, p, sample_weight=w))

    def accuracy(y, p, w):
        metric = MaskedLMAccuracy()
        metric.update_state(y, p, sample_weight=w)
        return float(metric.result())

    return accuracy


def close_to(expected):
    return lambda value: None if abs(value - expected) < 1e-4 else f"gave {value}, expected {expected}"


def masked_lm_cases(kind, rng):
    index = 0 if kind == "MaskedLMLoss" else 1
    for _ in range(DRAWS):
        batch, length, vocab = int(rng.choice([0, 1, 3])), int(rng.randint(1, 7)), int(rng.randint(2, 9))
        labels = rng.randint(0, vocab, size=(batch, length))
        logits = rng.normal(size=(batch, length, vocab)).astype("float32")
        weights = (rng.uniform(size=(batch, length)) < 0.5).astype("float32")
        expected = close_to(masked_lm_reference(labels, logits, weights)[index])
        yield f"B={batch} L={length} V={vocab}", (labels, logits, weights), WORKS, expected
        yield "float labels", (labels.astype("float32"), logits, weights), WORKS, expected
        if batch:
            bad = labels.copy()
            bad[0, 0] = int(rng.choice([vocab, vocab + rng.randint(1, 300)]))
            yield f"label {bad[0, 0]}", (bad, logits, weights), Raises(ValueError, f"max={bad.max()}"), None
            bad = labels.copy()
            bad[-1, -1] = -int(rng.randint(1, 200))  # e.g. transformers' -100
            yield f"label {bad[-1, -1]}", (bad, logits, weights), Raises(ValueError, f"min={bad.min()}"), None
        text = labels.astype(str)
        yield "labels as strings", (text, logits, weights), Raises(TypeError, "y_true.dtype="), None
        ints = logits.astype("int32")
        yield "logits as int32", (labels, ints, weights), Raises(TypeError, "y_pred.dtype=int32"), None
        bad = labels[..., None]
        yield "labels rank 3", (bad, logits, weights), Raises(ValueError, f"y_true.shape={bad.shape}"), None
        bad = np.zeros((batch, length + 1), "int32")
        yield "labels L+1", (bad, logits, weights), Raises(ValueError, f"y_true.shape={bad.shape}"), None
        bad = logits[..., 0]
        yield "logits rank 2", (labels, bad, weights), Raises(ValueError, f"y_pred.shape={bad.shape}"), None
        bad = np.ones((batch, length, 2), "float32")
        yield (
            "weights rank 3",
            (labels, logits, bad),
            Raises(ValueError, f"sample_weight.shape={bad.shape}"),
            None,
        )


def epe(y, p, w=None):
    metric = EndPointError()
    metric.update_state(y, p, sample_weight=w)
    return float(metric.result())


def psnr(y, p, w=None):
    metric = PeakSignalToNoiseRatio()
    metric.update_state(y, p, sample_weight=w)
    return float(metric.result())


def flow_cases(rng):
    for _ in range(DRAWS):
        batch, height, width = int(rng.choice([0, 1, 2])), int(rng.randint(1, 6)), int(rng.randint(1, 6))
        flow = rng.normal(size=(batch, height, width, 2)).astype("float32")
        pred = rng.normal(size=flow.shape).astype("float32")
        if batch:
            flow[0, 0, 0, 0] = np.nan  # invalid ground truth: not counted
        valid = np.isfinite(flow).all(-1)
        error = np.sqrt(((np.nan_to_num(flow) - pred) ** 2).sum(-1))
        expected = float(error[valid].mean()) if valid.any() else 0.0
        yield f"B={batch} {height}x{width}", (flow, pred), WORKS, close_to(expected)
        bad = pred[..., :1]
        yield "1 channel", (flow[..., :1], bad), Raises(ValueError, f"y_pred.shape={bad.shape}"), None
        bad = pred[0] if batch else pred[..., 0]
        yield f"y_pred {bad.shape}", (flow, bad), Raises(ValueError, f"y_pred.shape={bad.shape}"), None
        bad = np.zeros((batch, height + 1, width, 2), "float32")
        yield f"y_true {bad.shape}", (bad, pred), Raises(ValueError, f"y_true.shape={bad.shape}"), None
        yield "strings", (flow.astype(str), pred), Raises(TypeError, "y_true.dtype="), None
        bad = np.ones((batch, height), "float32")
        yield (
            f"mask {bad.shape}",
            (flow, pred, bad),
            Raises(ValueError, f"sample_weight.shape={bad.shape}"),
            None,
        )


def psnr_cases(rng):
    for _ in range(DRAWS):
        shape = (int(rng.choice([1, 2, 3])),) + tuple(
            int(s) for s in rng.randint(1, 5, size=rng.randint(1, 4))
        )
        images = rng.uniform(size=shape).astype("float32")
        noisy = np.clip(images + rng.normal(scale=0.1, size=shape), 0, 1).astype("float32")
        mse = ((images - noisy) ** 2).reshape(shape[0], -1).mean(1)
        expected = float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))
        yield f"shape {shape}", (images, noisy), WORKS, close_to(expected)
        bad = noisy[..., :1] if shape[-1] > 1 else np.concatenate([noisy, noisy], -1)
        yield f"y_pred {bad.shape}", (images, bad), Raises(ValueError, f"y_pred.shape={bad.shape}"), None
        bad = images[0]
        yield f"y_true {bad.shape}", (bad, noisy), Raises(ValueError, f"y_true.shape={bad.shape}"), None
        yield "strings", (images, noisy.astype(str)), Raises(TypeError, "y_pred.dtype="), None
        bad = np.ones(shape[:1] + (2,), "float32")
        yield (
            f"weights {bad.shape}",
            (images, noisy, bad),
            Raises(ValueError, f"sample_weight.shape={bad.shape}"),
            None,
        )
        # PSNR per example needs the whole example: rank >= 2
        bad = images.reshape(-1)
        yield "rank 1", (bad, bad), Raises(ValueError, f"y_pred.shape={bad.shape}"), None


class LossMetricFuzzTest(TestCase):
    def run_cases(self, name, function, cases):
        fuzzer = Fuzzer(name, MINIMUM_CASES)
        for label, arguments, expect, validate in cases:
            fuzzer.check(label, lambda a=arguments: function(*a), expect, validate)
        fuzzer.finish(self)

    def test_masked_lm_loss(self):
        self.run_cases(
            "MaskedLMLoss",
            masked_lm("MaskedLMLoss"),
            masked_lm_cases("MaskedLMLoss", np.random.RandomState(1)),
        )

    def test_masked_lm_accuracy(self):
        cases = masked_lm_cases("MaskedLMAccuracy", np.random.RandomState(2))
        self.run_cases("MaskedLMAccuracy", masked_lm("MaskedLMAccuracy"), cases)

    def test_end_point_error(self):
        self.run_cases("EndPointError", epe, flow_cases(np.random.RandomState(3)))

    def test_psnr(self):
        self.run_cases("PeakSignalToNoiseRatio", psnr, psnr_cases(np.random.RandomState(4)))
