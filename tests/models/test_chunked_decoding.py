"""`decode_in_chunks` equals one decode of every output, for each task model with many output queries."""

from unittest import mock

import numpy as np
import pytest

from keras_perceiver.models import PerceiverOpticalFlow
from tests.models import test_perceiver_masked_lm as masked_lm
from tests.models import test_perceiver_multimodal_autoencoder as multimodal
from tests.models import test_perceiver_optical_flow as flow
from tests.test_case import TestCase


def randomize(model, seed=1):
    """Weights far from their initial values, so that a wrong slice of queries shows."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()])


class ChunkedDecodingTest(TestCase):
    def assert_chunks_equal_one_decode(self, model, inputs, total):
        expected = np.asarray(model(inputs))
        decoder = model.get_layer("decoder")
        for chunk_size in (1, 5, total - 1, total, total + 10):
            with mock.patch.object(decoder, "call", wraps=decoder.call) as calls:
                actual = np.asarray(model.decode_in_chunks(inputs, chunk_size=chunk_size))
            self.assertEqual(calls.call_count, -(-total // chunk_size))
            self.assertEqual(actual.shape, expected.shape)
            self.assertAllClose(actual, expected, atol=1e-5, msg=f"chunk_size={chunk_size}")

    def test_optical_flow(self):
        model = flow.tiny()
        randomize(model)
        self.assert_chunks_equal_one_decode(model, flow._frames(), total=48)

    def test_optical_flow_built_for_subsampled_outputs_decodes_every_pixel(self):
        full = flow.tiny()
        randomize(full)
        subsampled = PerceiverOpticalFlow(full.backbone, subsample_outputs=True)
        subsampled.get_layer("decoder").set_weights(full.get_layer("decoder").get_weights())
        frames = flow._frames()
        self.assertAllClose(
            subsampled.decode_in_chunks(frames, chunk_size=7), np.asarray(full(frames)), atol=1e-5
        )

    def test_masked_lm_with_padding(self):
        model = masked_lm.build_model()
        randomize(model)
        inputs = masked_lm.make_inputs(length=16)
        self.assert_chunks_equal_one_decode(model, inputs, total=16)

    def test_masked_lm_with_query_patches(self):
        """The patch features of each query see the whole input, not only the chunk's positions."""
        model = masked_lm.build_model(decoder_query_patch_size=5)
        randomize(model)
        inputs = masked_lm.make_inputs(length=16)
        self.assert_chunks_equal_one_decode(model, inputs, total=16)

    def test_multimodal_autoencoder_is_its_reconstruct(self):
        model = multimodal.tiny()
        inputs = multimodal._inputs()
        expected = model.reconstruct(inputs, chunk_size=7)
        actual = model.decode_in_chunks(inputs, chunk_size=7)
        for name in expected:
            self.assertAllClose(actual[name], expected[name], atol=0)

    def test_errors(self):
        model = flow.tiny()
        with pytest.raises(ValueError, match="chunk_size.*Received: chunk_size=0"):
            model.decode_in_chunks(flow._frames(), chunk_size=0)
        with pytest.raises(ValueError, match="frames"):
            model.decode_in_chunks({"images": flow._frames()["frames"]})
        with pytest.raises(TypeError, match="dict of the backbone's inputs"):
            model.decode_in_chunks([flow._frames()["frames"]])
