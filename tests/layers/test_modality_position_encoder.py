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
        with self.assertRaisesRegex(
            ValueError, r"M=6 elements.*Received: inputs\[.image.\]\.shape=\(2, 5, 8\)"
        ):
            encoder({**self.inputs, "image": self.inputs["image"][:, :5]})
        with self.assertRaisesRegex(ValueError, r"the same width E"):
            ModalityPositionEncoder(self.index_dims)({**self.inputs, "label": np.zeros((2, 2, 4), "float32")})


class FourierModalityPositionEncoderTest(TestCase):
    """HiP-Fourier: pos_m = Dense(fourier_features(coordinates_m)), bias-free, the only learned part."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(1)
        self.coordinates = {"image": rng.uniform(-1, 1, size=(9, 2)).astype("float32")}
        self.inputs = {"image": rng.normal(size=(2, 9, 8)).astype("float32")}

    def test_positions_are_a_projection_of_the_fourier_features(self):
        from keras_perceiver.layers.fourier_position_encoding import fourier_features

        encoder = ModalityPositionEncoder(
            {"image": 9}, position_encoding_type="fourier", fourier_positions=self.coordinates, num_bands=3
        )
        with_positions, positions = encoder(self.inputs)
        # 9 points in 2-D: max_resolution defaults to round(9 ** 0.5) = 3 per axis.
        features = np.asarray(fourier_features(self.coordinates["image"], 3, (3, 3)))
        self.assertEqual(features.shape, (9, 2 * (2 * 3 + 1)))
        projection = encoder.projections["image"]
        self.assertFalse(projection.use_bias)
        expected = features @ projection.kernel.numpy()
        self.assertAllClose(positions["image"], np.broadcast_to(expected, (2, 9, 8)), atol=1e-5)
        self.assertAllClose(with_positions["image"], self.inputs["image"] + expected, atol=1e-5)
        paths = [w.path for w in encoder.trainable_weights]
        self.assertEqual(paths, [f"{encoder.name}/fourier_projection_image/kernel"])
        # Each pixel's encoding depends on its coordinates: a permutation of the points permutes them.
        order = np.arange(9)[::-1]
        permuted = ModalityPositionEncoder(
            {"image": 9},
            position_encoding_type="fourier",
            fourier_positions={"image": self.coordinates["image"][order]},
            num_bands=3,
        )
        permuted(self.inputs)
        permuted.projections["image"].kernel.assign(projection.kernel)
        _, permuted_positions = permuted(self.inputs)
        self.assertAllClose(permuted_positions["image"][0], expected[order], atol=1e-5)

    def test_config_round_trip_keeps_the_coordinates(self):
        encoder = ModalityPositionEncoder(
            {"image": 9},
            position_encoding_type="fourier",
            fourier_positions=self.coordinates,
            num_bands=2,
            max_resolution=(4, 5),
        )
        restored = self.run_config_round_trip(encoder)
        self.assertAllClose(restored.fourier_positions["image"], self.coordinates["image"])
        self.assertEqual(restored.max_resolution, (4, 5))

    def test_errors_name_expected_and_received_values(self):
        with self.assertRaisesRegex(ValueError, r"needs `fourier_positions`.*Received: None"):
            ModalityPositionEncoder({"image": 9}, position_encoding_type="fourier")
        with self.assertRaisesRegex(ValueError, r"\(M_m, d\) = \(9, d\). Received: shape=\(8, 2\)"):
            ModalityPositionEncoder(
                {"image": 9}, position_encoding_type="fourier", fourier_positions={"image": np.zeros((8, 2))}
            )
        with self.assertRaisesRegex(ValueError, r"position_encoding_type.*Received.*'sine'"):
            ModalityPositionEncoder({"image": 9}, position_encoding_type="sine")
        encoder = ModalityPositionEncoder(
            {"image": 9},
            position_encoding_type="fourier",
            fourier_positions=self.coordinates,
            max_resolution=(3,),
        )
        with self.assertRaisesRegex(ValueError, r"one entry per coordinate axis, d=2.*max_resolution=\(3,\)"):
            encoder(self.inputs)
