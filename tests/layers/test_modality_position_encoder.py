import keras
import numpy as np

from keras_perceiver.layers.modality_position_encoder import ModalityPositionEncoder
from tests.test_case import TestCase


class ModalityPositionEncoderTest(TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.index_dims = {"image": 6, "label": 2}
        self.inputs = {
            m: rng.normal(size=(2, size, 8)).astype("float32") for m, size in self.index_dims.items()
        }

    def test_adds_and_returns_the_positions(self):
        encoder = ModalityPositionEncoder(self.index_dims)
        with_positions, positions = encoder(self.inputs)
        for modality, x in self.inputs.items():
            table = encoder.positions[modality].position_embeddings.numpy()
            self.assertEqual(table.shape, (self.index_dims[modality], 8))
            self.assertAllClose(positions[modality], np.broadcast_to(table, x.shape))
            self.assertAllClose(with_positions[modality], x + table, atol=1e-6)
        self.assertEqual(encoder.projections, {})

    def test_one_bias_free_projection_per_modality(self):
        encoder = ModalityPositionEncoder(self.index_dims, use_projection=True)
        with_positions, positions = encoder(self.inputs)
        self.assertEqual(list(encoder.projections), ["image", "label"])
        for modality, x in self.inputs.items():
            projection = encoder.projections[modality]
            self.assertFalse(projection.use_bias)
            expected = encoder.positions[modality].position_embeddings.numpy() @ projection.kernel.numpy()
            self.assertAllClose(positions[modality][0], expected, atol=1e-6)
            self.assertAllClose(with_positions[modality], x + expected, atol=1e-6)
        self.assertLen(encoder.trainable_weights, 4)

    def test_default_init_fan_in_is_the_number_of_positions(self):
        encoder = ModalityPositionEncoder({"x": 2048})
        encoder({"x": np.zeros((1, 2048, 64), "float32")})
        self.assertAllClose(
            encoder.positions["x"].position_embeddings.numpy().std(), np.sqrt(1 / 2048), atol=1e-3
        )

    def test_config_round_trip_and_symbolic(self):
        restored = self.run_config_round_trip(
            ModalityPositionEncoder({"label": 2, "image": 6}, use_projection=True)
        )
        self.assertEqual(list(restored.index_dims), ["label", "image"])
        inputs = {m: keras.Input((size, 8)) for m, size in self.index_dims.items()}
        with_positions, positions = ModalityPositionEncoder(self.index_dims)(inputs)
        self.assertEqual(tuple(positions["image"].shape), (None, 6, 8))

    def test_errors_name_expected_and_received_values(self):
        encoder = ModalityPositionEncoder(self.index_dims)
        with self.assertRaisesRegex(ValueError, r"\['image', 'label'\]\. Received: \['image'\]"):
            encoder({"image": self.inputs["image"]})
        with self.assertRaisesRegex(ValueError, r"M=6 elements.*Received: shape=\(2, 5, 8\)"):
            encoder({**self.inputs, "image": self.inputs["image"][:, :5]})
        with self.assertRaisesRegex(ValueError, r"the same width E"):
            ModalityPositionEncoder(self.index_dims)({**self.inputs, "label": np.zeros((2, 2, 4), "float32")})
