"""Tests of `AudioPostprocessor`, `ProjectionPostprocessor` and `MultimodalPostprocessor`."""

import keras
import numpy as np
import pytest

from keras_perceiver.postprocessors.audio_postprocessor import AudioPostprocessor
from keras_perceiver.postprocessors.multimodal_postprocessor import MultimodalPostprocessor, split_modalities
from keras_perceiver.postprocessors.projection_postprocessor import ProjectionPostprocessor
from tests.test_case import TestCase

SIZES = {"audio": 6, "image": 2 * 2 * 3, "label": 1}  # O = 19


def decoder_outputs(batch=2, num_outputs=19, channels=8, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, num_outputs, channels)).astype("float32")


def postprocessors():
    return {
        "audio": AudioPostprocessor(samples_per_patch=4, name="audio"),
        "image": ProjectionPostprocessor(3, name="image"),
        "label": ProjectionPostprocessor(5, name="label"),
    }


def _set_dense(dense, linear):
    dense.set_weights([linear.weight.detach().numpy().T, linear.bias.detach().numpy()])


class PostprocessorLayerTest(TestCase):
    def test_audio_postprocessor(self):
        x = decoder_outputs(num_outputs=6)
        layer, outputs = self.run_layer_test(
            AudioPostprocessor, {"samples_per_patch": 4}, x, (2, 24), expected_num_trainable_weights=2
        )
        self.assertEqual(layer.classifier.name, "classifier")
        patches = layer.classifier(x)
        self.assertAllClose(outputs[:, 4:8], patches[:, 1], atol=0)  # patch 1 holds samples 4..7

    def test_projection_postprocessor(self):
        self.run_layer_test(
            ProjectionPostprocessor,
            {"out_channels": 3},
            decoder_outputs(),
            (2, 19, 3),
            expected_num_trainable_weights=2,
        )

    def test_multimodal_split_order_and_video_reshape(self):
        layer = MultimodalPostprocessor(
            postprocessors(), modality_sizes=SIZES, output_index_shapes={"image": (3, 2, 2)}
        )
        x = decoder_outputs()
        outputs = layer(x)
        self.assertEqual(sorted(outputs), ["audio", "image", "label"])
        self.assertEqual(tuple(outputs["audio"].shape), (2, 24))
        self.assertEqual(tuple(outputs["image"].shape), (2, 3, 2, 2, 3))
        self.assertEqual(tuple(outputs["label"].shape), (2, 1, 5))
        # Sorted order: audio = outputs 0..5, image = 6..17, label = 18.
        self.assertAllClose(outputs["audio"], layer.modalities["audio"](x[:, :6]), atol=0)
        self.assertAllClose(
            outputs["image"], np.reshape(layer.modalities["image"](x[:, 6:18]), (2, 3, 2, 2, 3)), atol=0
        )
        self.assertAllClose(outputs["label"], layer.modalities["label"](x[:, 18:]), atol=0)
        # Call-time sizes override the constructor's.
        outputs = layer(x[:, :9], modality_sizes={"image": 2, "audio": 6, "label": 1})
        self.assertEqual(tuple(outputs["image"].shape), (2, 2, 3))  # not the full video: stays flat
        self.assertAllClose(outputs["label"], layer.modalities["label"](x[:, 8:9]), atol=0)

    def test_subsampled_sizes_from_dynamic_output_indices_in_a_functional_model(self):
        layer = MultimodalPostprocessor(
            postprocessors(), modality_sizes=SIZES, output_index_shapes={"image": (3, 2, 2)}, name="post"
        )
        outputs_in = keras.Input((None, 8), name="outputs")
        audio_indices = keras.Input((None,), dtype="int32", name="audio_indices")
        image_indices = keras.Input((None,), dtype="int32", name="image_indices")
        outputs = layer(outputs_in, output_indices={"audio": audio_indices, "image": image_indices})
        model = keras.Model([outputs_in, audio_indices, image_indices], outputs)
        x = decoder_outputs(num_outputs=2 + 5 + 1)
        result = model([x, np.zeros((2, 2), "int32"), np.zeros((2, 5), "int32")])
        self.assertEqual(tuple(result["audio"].shape), (2, 8))
        self.assertEqual(tuple(result["image"].shape), (2, 5, 3))
        self.assertAllClose(result["image"], layer.modalities["image"](x[:, 2:7]), atol=1e-6)
        self.assertAllClose(result["label"], layer.modalities["label"](x[:, 7:]), atol=1e-6)

    def test_config_round_trip_and_saving(self):
        layer = MultimodalPostprocessor(
            postprocessors(), modality_sizes=SIZES, output_index_shapes={"image": (3, 2, 2)}, name="post"
        )
        self.run_config_round_trip(layer)
        inputs = keras.Input((19, 8))
        model = keras.Model(inputs, layer(inputs))
        self.run_model_saving_test(model, decoder_outputs())
        self.run_mixed_precision_test(
            lambda dtype: MultimodalPostprocessor(
                {
                    k: v.__class__.from_config({**v.get_config(), "dtype": dtype})
                    for k, v in postprocessors().items()
                },
                modality_sizes=SIZES,
                dtype=dtype,
            ),
            inputs=decoder_outputs(),
        )


def test_split_modalities_with_tensor_sizes():
    x = decoder_outputs(num_outputs=5)
    parts = split_modalities(x, {"b": keras.ops.convert_to_tensor(3), "a": 2})
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(parts["a"]), x[:, :2])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(parts["b"]), x[:, 2:])


def test_matches_transformers():
    torch = pytest.importorskip("torch")
    modeling = pytest.importorskip("transformers.models.perceiver.modeling_perceiver")
    from transformers import PerceiverConfig

    config = PerceiverConfig(num_labels=5, samples_per_patch=4)
    torch.manual_seed(0)
    reference = modeling.PerceiverMultimodalPostprocessor(
        modalities={
            "audio": modeling.PerceiverAudioPostprocessor(config, in_channels=8),
            "image": modeling.PerceiverProjectionPostprocessor(in_channels=8, out_channels=3),
            "label": modeling.PerceiverClassificationPostprocessor(config, in_channels=8),
        }
    )
    for parameter in reference.parameters():
        torch.nn.init.normal_(parameter, std=1.0)
    x = decoder_outputs(seed=4)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x), modality_sizes=SIZES)
    layer = MultimodalPostprocessor(postprocessors(), modality_sizes=SIZES)
    layer(x)
    for modality in SIZES:
        _set_dense(layer.modalities[modality].classifier, reference.modalities[modality].classifier)
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in layer(x).items()}
    outputs["label"] = outputs["label"][:, 0]  # transformers' classification postprocessor takes query 0
    diffs = {k: float(np.max(np.abs(outputs[k] - expected[k].numpy()))) for k in SIZES}
    print(f"max |keras - transformers| per modality: {diffs}")
    for k in SIZES:
        assert outputs[k].shape == tuple(expected[k].shape)
    assert max(diffs.values()) <= 1e-4


def test_errors():
    with pytest.raises(ValueError, match="non-empty dict"):
        MultimodalPostprocessor({})
    with pytest.raises(ValueError, match=r"`modality_sizes` names modalities.*Received: \['video'\]"):
        MultimodalPostprocessor(postprocessors(), modality_sizes={"video": 3})
    with pytest.raises(ValueError, match=r"no size for modality 'label'"):
        MultimodalPostprocessor(postprocessors(), modality_sizes={"audio": 6, "image": 12})(decoder_outputs())
    with pytest.raises(ValueError, match=r"add up to 19, but the inputs have 20 outputs"):
        MultimodalPostprocessor(postprocessors(), modality_sizes=SIZES)(decoder_outputs(num_outputs=20))
    with pytest.raises(ValueError, match="rank 3"):
        AudioPostprocessor()(np.zeros((2, 8), "float32"))
    with pytest.raises(ValueError, match="out_channels"):
        ProjectionPostprocessor(0)
    with pytest.raises(ValueError, match="samples_per_patch"):
        AudioPostprocessor(samples_per_patch=0)
