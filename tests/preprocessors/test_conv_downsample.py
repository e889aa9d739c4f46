"""ConvDownsample against transformers' Conv2DDownsample and DeepMind's SAME-padding stem."""

import numpy as np
import torch
from transformers.models.perceiver.modeling_perceiver import Conv2DDownsample

from keras_perceiver.preprocessors.conv_downsample import ConvDownsample
from tests.test_case import TestCase


def _copy_from_torch(layer, reference):
    layer.conv.kernel.assign(reference.conv.weight.detach().numpy().transpose(2, 3, 1, 0))
    bn = reference.batchnorm
    layer.batchnorm.gamma.assign(bn.weight.detach().numpy())
    layer.batchnorm.beta.assign(bn.bias.detach().numpy())
    layer.batchnorm.moving_mean.assign(bn.running_mean.numpy())
    layer.batchnorm.moving_variance.assign(bn.running_var.numpy())


class ConvDownsampleTest(TestCase):
    def test_matches_transformers_with_batchnorm_statistics(self):
        torch.manual_seed(0)
        reference = Conv2DDownsample(in_channels=3, out_channels=8).eval()
        with torch.no_grad():
            reference.batchnorm.running_mean.normal_()
            reference.batchnorm.running_var.uniform_(0.5, 2.0)
            reference.batchnorm.weight.normal_()
            reference.batchnorm.bias.normal_()
        images = np.random.default_rng(0).normal(size=(2, 3, 37, 30)).astype("float32")
        with torch.no_grad():
            expected = reference(torch.from_numpy(images)).numpy().transpose(0, 2, 3, 1)
        layer = ConvDownsample(out_channels=8)
        layer(images.transpose(0, 2, 3, 1))
        _copy_from_torch(layer, reference)
        outputs = np.asarray(layer(images.transpose(0, 2, 3, 1), training=False))
        self.assertEqual(outputs.shape, expected.shape)
        self.assertAllClose(outputs, expected, atol=1e-5)

    def test_output_sizes_of_both_conventions(self):
        images = np.zeros((1, 224, 224, 3), "float32")
        self.assertEqual(tuple(ConvDownsample(out_channels=4)(images).shape), (1, 55, 55, 4))
        self.assertEqual(
            tuple(ConvDownsample(out_channels=4, padding="deepmind")(images).shape), (1, 56, 56, 4)
        )

    def test_layer_contract(self):
        self.run_layer_test(
            ConvDownsample,
            {"out_channels": 4},
            np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32"),
            expected_output_shape=(2, 3, 3, 4),
            expected_num_trainable_weights=3,
            expected_num_non_trainable_weights=2,
        )

    def test_errors(self):
        with self.assertRaisesRegex(ValueError, "padding.*Received: padding='valid'"):
            ConvDownsample(padding="valid")
        layer = ConvDownsample(out_channels=4)
        layer(np.zeros((1, 16, 16, 3), "float32"))
        with self.assertRaisesRegex(ValueError, "rank 4"):
            layer(np.zeros((1, 16, 3), "float32"))
        with self.assertRaisesRegex(ValueError, "built for 3"):
            layer(np.zeros((1, 16, 16, 5), "float32"))
