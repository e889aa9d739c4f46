"""The loss and metrics give the same values on the JAX backend, without importing TensorFlow.

A subprocess with `KERAS_BACKEND=jax` computes them on inputs saved here and
the values are compared with the TensorFlow ones of this process.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from keras_perceiver.losses import MaskedLMLoss
from keras_perceiver.metrics import EndPointError, MaskedLMAccuracy, PeakSignalToNoiseRatio
from tests.test_case import TestCase

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

JAX_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras

    assert keras.backend.backend() == "jax", keras.backend.backend()
    from keras_perceiver.losses import MaskedLMLoss
    from keras_perceiver.metrics import EndPointError, MaskedLMAccuracy, PeakSignalToNoiseRatio

    assert "tensorflow" not in sys.modules, "keras_perceiver losses/metrics imported tensorflow"
    d = dict(np.load(sys.argv[1]))
    values = {"loss": float(MaskedLMLoss()(d["labels"], d["logits"], sample_weight=d["weights"]))}
    for name, metric, args in (
        ("accuracy", MaskedLMAccuracy(), (d["labels"], d["logits"], d["weights"])),
        ("epe", EndPointError(), (d["flow_true"], d["flow_pred"], d["valid"])),
        ("psnr", PeakSignalToNoiseRatio(), (d["images"], d["images_pred"])),
    ):
        metric.update_state(*args)
        values[name] = float(metric.result())
    print(json.dumps(values))
    """
)


def compute_all(d):
    values = {"loss": float(MaskedLMLoss()(d["labels"], d["logits"], sample_weight=d["weights"]))}
    for name, metric, args in (
        ("accuracy", MaskedLMAccuracy(), (d["labels"], d["logits"], d["weights"])),
        ("epe", EndPointError(), (d["flow_true"], d["flow_pred"], d["valid"])),
        ("psnr", PeakSignalToNoiseRatio(), (d["images"], d["images_pred"])),
    ):
        metric.update_state(*args)
        values[name] = float(metric.result())
    return values


class JaxBackendTest(TestCase):
    def test_same_values_on_jax(self):
        rng = np.random.default_rng(0)
        flow_true = rng.normal(size=(2, 3, 4, 2)).astype("float32")
        flow_true[0, 0, 0] = np.inf
        images = rng.random((2, 4, 4, 3)).astype("float32")
        images_pred = images.copy()
        images_pred[1] += 0.1  # example 0 is a perfect reconstruction (the 100 dB cap)
        data = {
            "labels": rng.integers(0, 6, size=(2, 5)).astype("int32"),
            "logits": rng.normal(size=(2, 5, 6)).astype("float32"),
            "weights": (rng.random((2, 5)) < 0.5).astype("float32"),
            "flow_true": flow_true,
            "flow_pred": rng.normal(size=(2, 3, 4, 2)).astype("float32"),
            "valid": (rng.random((2, 3, 4)) < 0.7).astype("float32"),
            "images": images,
            "images_pred": images_pred,
        }
        path = os.path.join(self.make_temp_dir(), "inputs.npz")
        np.savez(path, **data)
        env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": REPO_ROOT}
        result = subprocess.run(
            [sys.executable, "-c", JAX_SCRIPT, path], env=env, capture_output=True, text=True, timeout=300
        )
        self.assertEqual(result.returncode, 0, msg=result.stderr[-3000:])
        jax_values = json.loads(result.stdout.strip().splitlines()[-1])
        tf_values = compute_all(data)
        self.assertEqual(sorted(jax_values), sorted(tf_values))
        for name, value in tf_values.items():
            self.assertAllClose(
                np.float32(jax_values[name]), np.float32(value), atol=1e-4, rtol=1e-5, msg=name
            )
