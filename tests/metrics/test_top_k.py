"""Top-1 / top-5 accuracy (ImageNet classification) is Keras's own metric; this checks it on (B, K) logits."""

import keras
import numpy as np

from tests.test_case import TestCase


class TopKAccuracyTest(TestCase):
    def test_sparse_top_k_categorical_accuracy_on_logits(self):
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(16, 10)).astype("float32")
        labels = rng.integers(0, 10, size=(16,)).astype("int32")
        ranks = (logits > logits[np.arange(16), labels][:, None]).sum(-1)  # 0 = the label is the arg-max
        for k in (1, 5):
            metric = keras.metrics.SparseTopKCategoricalAccuracy(k=k)
            metric.update_state(labels, logits)
            self.assertAllClose(metric.result(), np.float32(np.mean(ranks < k)))
        self.assertGreater(np.mean(ranks < 5), np.mean(ranks < 1))
