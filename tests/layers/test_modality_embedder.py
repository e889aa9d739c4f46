import os

import keras
import numpy as np

from keras_perceiver.layers.modality_embedder import ModalityEmbedder, ModalityUnembedder
from tests.test_case import TestCase


class ModalityEmbedderTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.inputs = {
            "image": rng.normal(size=(2, 6, 3)).astype("float32"),
            "label": rng.normal(size=(2, 1, 5)).astype("float32"),
        }

    def test_embeds_every_modality_with_its_own_dense(self):
        embedder = ModalityEmbedder(8)
        out = embedder(self.inputs)
        for modality, x in self.inputs.items():
            dense = embedder.embeddings[modality]
            self.assertEqual(dense.name, f"embed_{modality}")
            self.assertAllClose(out[modality], x @ dense.kernel.numpy() + dense.bias.numpy(), atol=1e-6)
        self.assertEqual(tuple(embedder.embeddings["label"].kernel.shape), (5, 8))
        self.assertEqual(len(embedder.trainable_weights), 4)

    def test_default_kernel_init_is_variance_scaling_fan_in(self):
        embedder = ModalityEmbedder(512)
        embedder({"x": np.zeros((1, 1, 256), "float32")})
        self.assertAllClose(embedder.embeddings["x"].kernel.numpy().std(), np.sqrt(1 / 256), atol=2e-3)

    def test_unembedder_starts_at_zero_and_maps_back(self):
        unembedder = ModalityUnembedder({"image": 3, "label": 5})
        embedded = ModalityEmbedder(8)(self.inputs)
        out = unembedder(embedded)
        self.assertEqual(
            {m: tuple(x.shape) for m, x in out.items()}, {"image": (2, 6, 3), "label": (2, 1, 5)}
        )
        self.assertAllZero(out["image"])
        self.assertEqual(unembedder.unembeddings["image"].name, "unembed_image")

    def test_config_round_trip_and_saving(self):
        embedder = ModalityEmbedder(8, name="embedder")
        self.run_config_round_trip(embedder)
        self.run_config_round_trip(ModalityUnembedder({"image": 3}))
        inputs = {m: keras.Input(x.shape[1:], name=m) for m, x in self.inputs.items()}
        model = keras.Model(
            inputs, ModalityUnembedder({"image": 3, "label": 5}, kernel_initializer="ones")(embedder(inputs))
        )
        expected = model(self.inputs)
        path = os.path.join(self.make_temp_dir(), "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertAllClose(restored(self.inputs), expected, atol=1e-6)

    def test_mixed_precision(self):
        for policy in ("mixed_float16", "mixed_bfloat16"):
            out = ModalityEmbedder(8, dtype=policy)(self.inputs)
            self.assertDtype(out["image"], keras.DTypePolicy(policy).compute_dtype)

    def test_errors_name_expected_and_received_values(self):
        embedder = ModalityEmbedder(8)
        embedder(self.inputs)
        with self.assertRaisesRegex(ValueError, r"\['image', 'label'\]\. Received: \['image'\]"):
            embedder({"image": self.inputs["image"]})
        with self.assertRaisesRegex(ValueError, r"has 4 channels but the layer was built for 3"):
            embedder({**self.inputs, "image": np.zeros((2, 6, 4), "float32")})
        with self.assertRaisesRegex(ValueError, r"without '/'\. Received: 'a/b'"):
            ModalityEmbedder(8)({"a/b": self.inputs["image"]})
        with self.assertRaisesRegex(ValueError, r"output_channels\['image'\]=0"):
            ModalityUnembedder({"image": 0})
