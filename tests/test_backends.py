"""The layers and models (Perceiver IO, HiP) run on JAX and PyTorch with TensorFlow's weights and outputs.

The models are built and run here (TensorFlow backend); their serialized
configs, `.weights.h5` weights, inputs and outputs are written to a temporary
directory, and a subprocess with `KERAS_BACKEND=jax` (or `torch`) rebuilds
them from the configs, loads the weights and compares its outputs. JAX and
torch are test requirements: a missing one fails its test, it is never
skipped.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np

from keras_perceiver.layers import CrossAttentionEncoder, QueryDecoder
from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.hierarchical_perceiver import HierarchicalPerceiver
from keras_perceiver.models.perceiver_io import PerceiverIO
from keras_perceiver.models.perceiver_masked_lm import PerceiverMaskedLM
from tests.test_case import TestCase

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATOL = 1e-5
CASES = ("perceiver_io", "perceiver_masked_lm", "chunked_attention", "hierarchical_perceiver")

BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    start = time.time()
    import numpy as np
    import keras

    backend = os.environ["KERAS_BACKEND"]
    assert keras.backend.backend() == backend, keras.backend.backend()
    tf_loaded_by_keras = "tensorflow" in sys.modules
    import keras_perceiver.layers
    import keras_perceiver.layers.trainable_queries
    import keras_perceiver.models.perceiver_io
    import keras_perceiver.models.perceiver_masked_lm
    import keras_perceiver.models.hierarchical_perceiver
    if not tf_loaded_by_keras and "tensorflow" in sys.modules:
        raise AssertionError(f"keras_perceiver layers/models imported tensorflow on the {backend} backend")

    # The weights are loaded from the TensorFlow run, so their initial values do not matter; on
    # JAX each truncated-normal shape compiles its own XLA program (~10 s per model): use zeros.
    def zeros(self, shape, dtype=None):
        return keras.ops.zeros(shape, dtype)

    keras.initializers.TruncatedNormal.__call__ = zeros
    keras.initializers.VarianceScaling.__call__ = zeros

    def flat(outputs):
        # One array of every output (a nested dict of outputs in `keras.tree` order).
        return np.concatenate([np.ravel(np.asarray(x)) for x in keras.tree.flatten(outputs)])

    directory, names = sys.argv[1], sys.argv[2:]
    for name in names:
        with open(os.path.join(directory, name + ".json")) as f:
            model = keras.saving.deserialize_keras_object(json.load(f))
        model.load_weights(os.path.join(directory, name + ".weights.h5"))
        unloaded = [w.path for w in model.weights if not np.any(np.asarray(w))]
        if unloaded:
            raise AssertionError(f"{name}: weights not loaded: {unloaded}")
        data = dict(np.load(os.path.join(directory, name + ".npz")))
        expected = data.pop("expected")
        # `predict` runs the model traced by jax.jit on JAX (op-by-op eager calls would compile every op).
        outputs = flat(model.predict(data, verbose=0))
        difference = float(np.max(np.abs(outputs - expected)))
        print(f"{name}: max |{backend} - tensorflow| = {difference:.2e} ({time.time() - start:.1f} s)")
        if outputs.shape != expected.shape or not difference <= float(os.environ["ATOL"]):
            raise AssertionError(
                f"{name}: shape {outputs.shape} vs {expected.shape}, max difference {difference}"
            )
    print(f"{backend} done in {time.time() - start:.1f} s")
    """
)


def randomize(model, seed=0, scale=0.2):
    """Weights of order 0.1-1 so that outputs are far from zero and differences visible."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=scale, size=w.shape).astype("float32") for w in model.get_weights()])


class OtherBackendsTest(TestCase):
    def save_case(self, directory, name, model, inputs):
        randomize(model)
        expected = np.concatenate([np.ravel(np.asarray(x)) for x in keras.tree.flatten(model(inputs))])
        self.assertGreater(float(np.std(expected)), 1e-2, msg="outputs too small to compare")
        with open(os.path.join(directory, name + ".json"), "w") as f:
            json.dump(keras.saving.serialize_keras_object(model), f)
        model.save_weights(os.path.join(directory, name + ".weights.h5"))
        np.savez(os.path.join(directory, name + ".npz"), expected=expected, **inputs)

    def test_models_match_tensorflow_on_jax(self):
        self.check_backend("jax")

    def test_models_match_tensorflow_on_torch(self):
        self.check_backend("torch")

    def check_backend(self, backend):
        directory = self.make_temp_dir()
        rng = np.random.default_rng(0)

        perceiver_io = PerceiverIO.from_hyperparameters(
            input_shape=(10, 3),
            num_latents=4,
            latent_dim=8,
            num_blocks=2,
            num_self_attends_per_block=1,
            num_cross_attention_heads=1,
            num_self_attention_heads=2,
            decoder_num_cross_attention_heads=2,
            output_channels=5,
            query_builder=TrainableQueries(3, 6, name="queries"),
            use_query_mask=True,
        )
        padding_mask = np.ones((3, 10), bool)
        padding_mask[1, 6:] = False
        padding_mask[2] = False  # a fully padded example
        io_inputs = {
            "inputs": rng.normal(size=(3, 10, 3)).astype("float32"),
            "padding_mask": padding_mask,
            "query_mask": np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], bool),
        }
        self.save_case(directory, "perceiver_io", perceiver_io, io_inputs)

        masked_lm = PerceiverMaskedLM.from_hyperparameters(
            max_sequence_length=16,
            embedding_dim=8,
            num_latents=4,
            latent_dim=12,
            num_self_attends_per_block=2,
            num_cross_attention_heads=2,
            num_self_attention_heads=2,
            qk_channels=8,
            v_channels=12,
            decoder_num_cross_attention_heads=2,
            decoder_qk_channels=4,
        )
        token_mask = np.ones((2, 12), bool)
        token_mask[1, 5:] = False
        lm_inputs = {
            "token_ids": np.where(token_mask, rng.integers(6, 262, size=(2, 12)), 0).astype("int32"),
            "padding_mask": token_mask,
        }
        self.save_case(directory, "perceiver_masked_lm", masked_lm, lm_inputs)

        # Chunked attention: the encoder over key chunks (online softmax), the decoder over query chunks.
        inputs = keras.Input((10, 3), name="inputs")
        padding = keras.Input((10,), dtype="bool", name="padding_mask")
        queries = keras.Input((7, 8), name="queries")
        latents = CrossAttentionEncoder(4, 8, qk_channels=4, attention_chunk_size=3)(
            inputs, padding_mask=padding
        )
        outputs = QueryDecoder(num_cross_attention_heads=2, attention_chunk_size=3)(queries, latents)
        chunked = keras.Model({"inputs": inputs, "padding_mask": padding, "queries": queries}, outputs)
        chunked_inputs = {
            "inputs": io_inputs["inputs"],
            "padding_mask": padding_mask,
            "queries": rng.normal(size=(3, 7, 8)).astype("float32"),
        }
        self.save_case(directory, "chunked_attention", chunked, chunked_inputs)

        # HiP: two modalities (per-group padding, one group for the label), a U-Net skip with a projection.
        hip = HierarchicalPerceiver(
            input_shapes={"image": (20, 3), "label": (3, 1)},
            num_groups=(4, 1, 4),
            num_self_attends_per_block=(1, 1, 1),
            num_latents=(4, 8, 4),
            latent_dim=(8, 16, 4),
            num_cross_attention_heads=(1, 1, 1),
            num_self_attention_heads=(2, 2, 1),
            cross_attention_widening_factor=(1, 1, 1),
            self_attention_widening_factor=(2, 2, 2),
            num_embedding_channels=4,
            num_position_encoding_channels=16,
        )
        hip_inputs = {
            "image": rng.normal(size=(2, 20, 3)).astype("float32"),
            "label": rng.normal(size=(2, 3, 1)).astype("float32"),
        }
        self.save_case(directory, "hierarchical_perceiver", hip, hip_inputs)

        env = {**os.environ, "KERAS_BACKEND": backend, "ATOL": str(ATOL), "JAX_PLATFORMS": "cpu"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
        result = subprocess.run(
            [sys.executable, "-c", BACKEND_SCRIPT, directory, *CASES],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=300,
            check=False,
        )
        report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
        self.assertEqual(result.returncode, 0, msg=report)
        for name in CASES:
            self.assertIn(f"{name}: max |{backend} - tensorflow|", result.stdout, msg=report)
        print(result.stdout)
