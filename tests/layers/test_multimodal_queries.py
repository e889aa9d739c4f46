import numpy as np

from keras_perceiver.layers.multimodal_queries import MultimodalQueries, index_positions
from tests.layers.reference import fourier_reference
from tests.test_case import TestCase

SPECS = {
    "video": {"type": "fourier", "index_dims": (2, 3, 4), "num_bands": 2, "max_resolution": (2, 6, 6)},
    "audio": {"type": "fourier", "index_dims": (5,), "num_bands": 3},
    "label": {"type": "trainable", "num_channels": 9},
}
# Widths: video 3 + 3*2*2 = 15, audio 1 + 2*3 = 7, label 9; E = 15 + 2 = 17. Sorted: audio, label, video.


def _index_grid_positions(index_dims):
    """Row-major grid of positions -1 + 2 i / n (the reference's subsampled-decoding convention)."""
    return np.array([[-1.0 + 2.0 * i / n for i, n in zip(p, index_dims)] for p in np.ndindex(*index_dims)])


def _inputs(batch=2):
    return np.ones((batch, 3, 1), "float32")


class MultimodalQueriesTest(TestCase):
    def test_layer_basics(self):
        self.run_layer_test(
            MultimodalQueries,
            {"modalities": SPECS},
            _inputs(),
            expected_output_shape=(2, 5 + 1 + 24, 17),
            expected_num_trainable_weights=4,  # three paddings and the label query
        )

    def test_rows_are_padded_modality_queries_in_sorted_order(self):
        layer = MultimodalQueries(SPECS, min_padding_size=3)
        outputs = np.asarray(layer(_inputs()))
        self.assertEqual(layer.modality_names, ["audio", "label", "video"])
        self.assertEqual(layer.output_channels, 18)
        self.assertEqual(outputs.shape, (2, 30, 18))
        paddings = {name: np.asarray(w) for name, w in layer.paddings.items()}
        audio, label, video = outputs[:, :5], outputs[:, 5:6], outputs[:, 6:]
        self.assertAllClose(
            audio[0, :, :7], fourier_reference(_index_grid_positions((5,)), 3, (5,)), atol=2e-5, rtol=0
        )
        self.assertAllClose(
            video[1, :, :15],
            fourier_reference(_index_grid_positions((2, 3, 4)), 2, (2, 6, 6)),
            atol=2e-5,
            rtol=0,
        )
        table = np.asarray(layer.query_layers["label"].position_embeddings)
        self.assertAllClose(label[:, 0, :9], np.broadcast_to(table, (2, 9)))
        for name, rows, width in (("audio", audio, 7), ("label", label, 9), ("video", video, 15)):
            self.assertEqual(paddings[name].shape, (18 - width,))
            self.assertAllClose(rows[..., width:], np.broadcast_to(paddings[name], rows[..., width:].shape))

    def test_index_positions_unravel_row_major(self):
        indices = np.array([0, 1, 4, 23], "int32")
        positions = np.asarray(index_positions(indices, (2, 3, 4)))
        expected = _index_grid_positions((2, 3, 4))[indices]
        self.assertAllClose(positions, expected, atol=1e-7)
        # per-example (B, O) indices keep their batch axis
        self.assertEqual(tuple(index_positions(indices.reshape(2, 2), (2, 3, 4)).shape), (2, 2, 3))

    def test_subsampled_queries_equal_the_full_queries_at_those_points(self):
        layer = MultimodalQueries(SPECS)
        full = np.asarray(layer(_inputs()))
        shared = {"video": np.array([23, 0, 7], "int32"), "audio": np.array([4], "int32")}
        subset = np.asarray(layer(_inputs(), output_indices=shared))
        expected = np.concatenate([full[:, [4]], full[:, [5]], full[:, [6 + 23, 6, 6 + 7]]], axis=1)
        self.assertAllClose(subset, expected, atol=1e-6)
        per_example = {"video": np.array([[1, 2], [20, 21]], "int32")}
        subset = np.asarray(layer(_inputs(), output_indices=per_example))
        self.assertEqual(subset.shape, (2, 5 + 1 + 2, 17))
        self.assertAllClose(subset[0, 6:], full[0, [7, 8]], atol=1e-6)
        self.assertAllClose(subset[1, 6:], full[1, [26, 27]], atol=1e-6)

    def test_chunks_cover_the_full_queries(self):
        layer = MultimodalQueries(SPECS)
        full = np.asarray(layer(_inputs()))
        self.assertEqual(layer.query_counts, {"audio": 5, "label": 1, "video": 24})
        chunks = []
        for start in range(0, 30, 7):
            indices = layer.chunk_indices(start, min(start + 7, 30))
            self.assertEqual(sum(len(i) for i in indices.values()), min(7, 30 - start))
            chunks.append(np.asarray(layer(_inputs(), output_indices=indices)))
        self.assertAllClose(np.concatenate(chunks, axis=1), full, atol=1e-6)
        with self.assertRaisesRegex(ValueError, "start < stop <= 30.*start=3, stop=31"):
            layer.chunk_indices(3, 31)

    def test_symbolic_dynamic_indices(self):
        import keras

        layer = MultimodalQueries(SPECS)
        out = layer(keras.Input((3, 1)), output_indices={"video": keras.Input((None,), dtype="int32")})
        self.assertEqual(tuple(out.shape), (None, None, 17))

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "non-empty dict.*Received: modalities={}"):
            MultimodalQueries({})
        with self.assertRaisesRegex(ValueError, "'type' in \\['fourier', 'trainable'\\]"):
            MultimodalQueries({"audio": {"type": "conv"}})
        with self.assertRaisesRegex(ValueError, "audio.num_bands"):
            MultimodalQueries({"audio": {"type": "fourier", "index_dims": (4,), "num_bands": 0}})
        with self.assertRaisesRegex(ValueError, "unknown keys \\['bands'\\]"):
            MultimodalQueries({"audio": {"type": "fourier", "index_dims": (4,), "num_bands": 2, "bands": 3}})
        with self.assertRaisesRegex(ValueError, "min_padding_size=-1"):
            MultimodalQueries(SPECS, min_padding_size=-1)
        layer = MultimodalQueries(SPECS)
        with self.assertRaisesRegex(ValueError, "unknown modalities \\['image'\\]"):
            layer(_inputs(), output_indices={"image": np.array([0], "int32")})
        with self.assertRaisesRegex(ValueError, "`modalities` names unknown modalities \\['text'\\]"):
            layer(_inputs(), modalities=["text"])
        with self.assertRaisesRegex(ValueError, "selects no modality. Received: \\[\\]"):
            layer(_inputs(), modalities=[])

    def test_one_modality_at_a_time(self):
        layer = MultimodalQueries(SPECS)
        full = np.asarray(layer(_inputs()))
        video = layer(_inputs(), output_indices={"video": np.array([3, 4], "int32")}, modalities=["video"])
        self.assertAllClose(video, full[:, [9, 10]], atol=1e-6)
        audio_label = layer(_inputs(), modalities=["label", "audio"])
        self.assertAllClose(audio_label, full[:, :6], atol=1e-6)
