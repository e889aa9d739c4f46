"""Serving under load: a loaded SavedModel answers 8 threads x 200 requests of mixed batch sizes with no
error and with the outputs of the same requests made one at a time (throughput printed, not asserted)."""

import concurrent.futures
import os
import tempfile
import time

import numpy as np

from keras_perceiver.export import export_saved_model, load_saved_model
from keras_perceiver.models import PerceiverImageClassifier
from tests.test_case import TestCase

THREADS = 8
REQUESTS_PER_THREAD = 200
BATCH_SIZES = (1, 2, 3, 5, 8)


class ServingLoadTest(TestCase):
    def test_concurrent_requests_equal_serial_ones(self):
        model = PerceiverImageClassifier.from_hyperparameters(
            image_shape=(8, 8, 3),
            num_classes=5,
            num_bands=2,
            num_latents=4,
            latent_dim=16,
            num_blocks=1,
            num_self_attends_per_block=1,
            num_cross_attention_heads=1,
            num_self_attention_heads=2,
            initializer_range=0.5,  # O(1) logits: equality is checked on values that differ per request
        )
        path = os.path.join(tempfile.mkdtemp(), "saved_model")
        export_saved_model(model, path)
        serving = load_saved_model(path)
        rng = np.random.default_rng(0)
        requests = [
            {"images": rng.normal(size=(int(rng.choice(BATCH_SIZES)), 8, 8, 3)).astype("float32")}
            for _ in range(THREADS * REQUESTS_PER_THREAD)
        ]
        serial = [serving(request)["outputs"].numpy() for request in requests]
        self.assertGreater(np.std([s[0, 0] for s in serial]), 0.1)

        def answer(index):
            return index, serving(requests[index])["outputs"].numpy()

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
            answers = dict(pool.map(answer, range(len(requests))))
        seconds = time.perf_counter() - start
        self.assertLen(answers, len(requests))
        for index, expected in enumerate(serial):
            self.assertEqual(answers[index].shape, (len(requests[index]["images"]), 5))
            self.assertAllClose(answers[index], expected, atol=1e-6, rtol=1e-6)
        examples = sum(len(request["images"]) for request in requests)
        print(
            f"serving load: {len(requests)} requests ({examples} images) from {THREADS} threads in "
            f"{seconds:.2f} s: {len(requests) / seconds:.0f} requests/s"
        )
