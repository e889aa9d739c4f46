"""Tests of `from_deepmind_hip`: Haiku parameters of the official HiP -> `HierarchicalPerceiver`."""

import os

import numpy as np

from keras_perceiver.convert import from_deepmind_hip
from keras_perceiver.convert.from_deepmind_hip import hip_parameter_names
from keras_perceiver.models import HierarchicalPerceiver, HiPBackbone
from tests.models.test_hierarchical_perceiver import TINY, fixture_params, load_fixture
from tests.test_case import TestCase


class FromDeepmindHiPTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fixture = load_fixture()
        cls.params = fixture_params(cls.fixture, "pparam/")

    def setUp(self):
        super().setUp()
        self.model = HierarchicalPerceiver(**TINY)
        self.inputs = {m: self.fixture[f"input/{m}"] for m in TINY["input_shapes"]}

    def test_every_parameter_maps_to_one_weight_and_every_weight_is_loaded(self):
        names = hip_parameter_names(self.model)
        self.assertEqual(sorted(names), sorted(self.params))  # no fixture key left over, none missing
        self.assertEqual(sorted(fixture_params(self.fixture, "param/")), sorted(self.params))
        variables = [id(v) for v in names.values()]
        self.assertEqual(len(set(variables)), len(variables))  # one to one
        self.assertEqual(set(variables), {id(w) for w in self.model.weights})
        from_deepmind_hip(self.params, self.model)
        for name, variable in names.items():
            self.assertAllClose(variable.numpy(), self.params[name].reshape(variable.shape), atol=0)
        # Spot checks of the layouts: head-major split of a fused Linear, the k-th position projection.
        block = self.model.backbone.hip_blocks[2].processor.self_attends[0].attention
        w = self.params["perceiver/block_2/~/self_attend_id_0/attention/query_linear/w"]
        self.assertAllClose(block.query_dense.kernel.numpy()[:, 1, :], w[:, 16:32], atol=0)
        label_projection = self.model.backbone.position_encoder.projections["label"]
        w = self.params["perceiver/position_encoder/position_encoding_linear_1/w"]
        self.assertAllClose(label_projection.kernel, w, atol=0)

    def test_reads_npz_files_and_nested_dicts(self):
        path = os.path.join(self.make_temp_dir(), "hip.npz")
        np.savez(path, **self.params)
        expected = from_deepmind_hip(self.params, HierarchicalPerceiver(**TINY))(self.inputs)
        self.assertAllClose(from_deepmind_hip(path, self.model)(self.inputs), expected, atol=0)
        nested = {}
        for name, value in self.params.items():
            scope, leaf = name.rsplit("/", 1)
            nested.setdefault(scope, {})[leaf] = value
        model = from_deepmind_hip({"params": nested}, HierarchicalPerceiver(**TINY))
        self.assertAllClose(model(self.inputs), expected, atol=0)

    def test_a_backbone_takes_the_parameters_without_the_head(self):
        backbone = from_deepmind_hip(self.params, HiPBackbone(**TINY))
        from_deepmind_hip(self.params, self.model)
        self.assertAllClose(backbone(self.inputs), self.model.backbone(self.inputs), atol=0)

    def test_errors_name_the_parameters(self):
        params = dict(self.params)
        del params["perceiver/block_3/~/hi_p_cross_attention/pre_attention_residual_linear/b"]
        params["perceiver/block_9/~/self_attend_id_0/layer_norm/scale"] = np.ones(4, "float32")
        params["perceiver/block_0/~/hi_p_cross_attention/query_inputs/pos_embs"] = np.zeros(
            (64, 32), "float32"
        )
        with self.assertRaisesRegex(
            ValueError, r"missing parameters \['perceiver/block_3/.*residual_linear/b'\]"
        ):
            from_deepmind_hip(params, self.model)
        with self.assertRaisesRegex(ValueError, r"unexpected parameters \['perceiver/block_9/"):
            from_deepmind_hip(params, self.model)
        with self.assertRaisesRegex(
            ValueError, r"query_inputs/pos_embs: expected shape \(128, 32\), received \(64, 32\)"
        ):
            from_deepmind_hip(params, self.model)
        # A model whose configuration differs from the checkpoint's: no position projections.
        without_projection = HierarchicalPerceiver(**{**TINY, "num_position_encoding_channels": None})
        with self.assertRaisesRegex(ValueError, r"unexpected parameters.*position_encoding_linear"):
            from_deepmind_hip(self.params, without_projection)
        with self.assertRaisesRegex(TypeError, r"`HiPClassifier` or `HiPBackbone`\. Received: str"):
            from_deepmind_hip(self.params, "model")
        with self.assertRaises(FileNotFoundError):
            from_deepmind_hip("missing.npz", self.model)
