"""Fuzz cases for the exported serving signatures (`load_saved_model`, and `load_tflite` on the image
client's TFLite file): malformed requests (not a dict, unknown or missing inputs, wrong ranks and sizes, wrong
kinds of dtype, integers outside uint8) raise a named error naming the received value before the model runs;
valid requests (any batch size, castable dtypes, a lone array) are answered (TFLite: batch size 0 is refused
by name, its interpreter cannot allocate it).
"""

import os
import tempfile

import numpy as np

from keras_perceiver.export import (
    classification_outputs,
    export_saved_model,
    export_tflite,
    image_client_inputs,
    load_saved_model,
    load_tflite,
)
from keras_perceiver.models import PerceiverImageClassifier
from tests.fuzz.harness import WORKS, Fuzzer, Raises
from tests.test_case import TestCase

DRAWS = 6
MINIMUM_CASES = 40


def build_model():
    return PerceiverImageClassifier.from_hyperparameters(
        image_shape=(8, 8, 3),
        num_classes=5,
        num_bands=2,
        num_latents=4,
        latent_dim=16,
        num_blocks=1,
        num_self_attends_per_block=1,
        num_cross_attention_heads=1,
        num_self_attention_heads=2,
    )


class ServingFuzzTest(TestCase):
    def _fuzz(self, fuzzer, serving, key, dtype, rng, empty_batch=WORKS):
        for _ in range(DRAWS):
            batch = int(rng.choice([0, 1, 2, 7]))
            good = (rng.uniform(0, 255, size=(batch, 8, 8, 3))).astype(dtype)
            works = WORKS if batch else empty_batch
            fuzzer.check(f"batch {batch}", lambda x=good: serving({key: x}), works)
            castable = good.astype("int64" if dtype == "uint8" else "float64")
            fuzzer.check(f"{castable.dtype}", lambda x=castable: serving({key: x}), works)
            fuzzer.check("a bare array", lambda x=good: serving(x), works)
            extra = tuple(int(s) for s in rng.randint(1, 3, size=rng.randint(1, 3)))
            bad = np.zeros((2, 8, 8, 3) + extra, dtype)
            fuzzer.check(
                f"rank {bad.ndim}", lambda x=bad: serving({key: x}), Raises(ValueError, str(bad.shape))
            )
            bad = np.zeros((2, 8, int(rng.choice([1, 7, 9, 64])), 3), dtype)
            fuzzer.check(
                f"shape {bad.shape}", lambda x=bad: serving({key: x}), Raises(ValueError, str(bad.shape))
            )
            text = np.full((2, 8, 8, 3), "x")
            fuzzer.check("strings", lambda x=text: serving({key: x}), Raises(TypeError, "dtype=string"))
            other = good.astype("float32") if dtype == "uint8" else good.astype("int32")
            expect = Raises(TypeError, f"dtype={other.dtype.name}")
            fuzzer.check(f"{other.dtype} for {dtype}", lambda x=other: serving({key: x}), expect)
            name = "".join(rng.choice(list("abcxyz"), size=5))
            expect = Raises(ValueError, f"unknown ['{name}']")
            fuzzer.check(f"unknown {name}", lambda x=good, n=name: serving({key: x, n: x}), expect)
            fuzzer.check("missing", lambda: serving({}), Raises(ValueError, f"missing ['{key}']"))
            if dtype == "uint8":
                bad = np.full((2, 8, 8, 3), int(rng.choice([-1, 256, 1000])))
                received = f"max={bad.max()}" if bad.max() > 255 else f"min={bad.min()}"
                fuzzer.check(
                    f"pixel {bad.max()}", lambda x=bad: serving({key: x}), Raises(ValueError, received)
                )

    def test_fuzz_numeric_signature(self):
        path = os.path.join(tempfile.mkdtemp(), "numeric")
        export_saved_model(build_model(), path)
        fuzzer = Fuzzer("serving_default (float inputs)", MINIMUM_CASES)
        self._fuzz(fuzzer, load_saved_model(path), "images", "float32", np.random.RandomState(5))
        fuzzer.finish(self)

    def test_fuzz_image_client_signature(self):
        model = build_model()
        path = os.path.join(tempfile.mkdtemp(), "client")
        export_saved_model(
            model, path, client_inputs=image_client_inputs(model, "images"), outputs=classification_outputs(3)
        )
        fuzzer = Fuzzer("serving_default (uint8 image client)", MINIMUM_CASES)
        self._fuzz(fuzzer, load_saved_model(path), "image", "uint8", np.random.RandomState(6))
        fuzzer.finish(self)

        # The same requests to its TFLite file; the interpreter cannot allocate a batch of 0: a named error.
        tflite_path = os.path.join(tempfile.mkdtemp(), "model.tflite")
        export_tflite(path, tflite_path)
        fuzzer = Fuzzer("load_tflite (uint8 image client)", MINIMUM_CASES)
        empty = Raises(ValueError, "(0, 8, 8, 3)")
        self._fuzz(fuzzer, load_tflite(tflite_path), "image", "uint8", np.random.RandomState(7), empty)
        for path in (os.path.join(tempfile.mkdtemp(), "missing.tflite"), tempfile.mkdtemp()):
            fuzzer.check(f"load {path}", lambda p=path: load_tflite(p), Raises(FileNotFoundError, path))
        fuzzer.finish(self)
