"""Fuzz cases for the constructors: every integer or shape hyperparameter of the layers and task models, given
zero, a negative number, a float, a string or a bool (a zero or negative entry for a shape), raises a
`ValueError` naming the argument and the received value before any weight is made.
"""

import numpy as np
from absl.testing import parameterized

from keras_perceiver import layers, models, postprocessors, preprocessors
from tests.fuzz.harness import WORKS, Fuzzer, Raises
from tests.fuzz.test_fuzz_models import HIP, STACK, TEXT
from tests.test_case import TestCase

MINIMUM_CASES = 6
BAD_INTEGERS = (0, -1, 2.5, "4", True)
# name -> (constructor, valid keyword arguments); every int or tuple-of-int argument is fuzzed.
CONSTRUCTORS = {
    "CrossAttentionEncoder": (
        layers.CrossAttentionEncoder,
        {"num_latents": 4, "latent_dim": 16, "num_cross_attention_heads": 1},
    ),
    "LatentProcessor": (
        layers.LatentProcessor,
        {"num_self_attends_per_block": 1, "num_self_attention_heads": 2, "num_blocks": 1},
    ),
    "QueryDecoder": (layers.QueryDecoder, {"output_channels": 5, "num_cross_attention_heads": 1}),
    "CrossAttention": (layers.CrossAttention, {"num_heads": 1}),
    "SelfAttention": (layers.SelfAttention, {"num_heads": 2}),
    "HiPBlock": (
        layers.HiPBlock,
        {"num_groups": 2, "num_latents": 3, "latent_dim": 8, "num_self_attention_heads": 2},
    ),
    "PerceiverMultiHeadAttention": (
        layers.PerceiverMultiHeadAttention,
        {"num_heads": 2, "qk_channels": 16, "output_channels": 16},
    ),
    "MLPBlock": (layers.MLPBlock, {"widening_factor": 4}),
    "TrainableQueries": (layers.TrainableQueries, {"num_queries": 3, "num_channels": 8}),
    "TrainablePositionEncoding": (layers.TrainablePositionEncoding, {"index_dims": 6, "num_channels": 8}),
    "FourierPositionEncoding": (layers.FourierPositionEncoding, {"num_bands": 2, "index_dims": (4, 4)}),
    "Regroup": (layers.Regroup, {"num_groups": 2}),
    "ModalityGrouper": (layers.ModalityGrouper, {"num_groups": 2, "index_dims": {"a": 4}}),
    "ModalityEmbedder": (layers.ModalityEmbedder, {"num_embedding_channels": 4}),
    "TextPreprocessor": (
        preprocessors.TextPreprocessor,
        {
            "vocab_size": 262,
            "max_sequence_length": 12,
            "embedding_dim": 16,
            "ngram_sizes": (2, 3),
            "num_ngram_buckets": 16,
            "ngram_embedding_dim": 4,
        },
    ),
    "HashedNGramEmbedding": (
        layers.HashedNGramEmbedding,
        {"ngram_sizes": (3, 6), "num_buckets": 16, "embedding_dim": 4, "output_dim": 8, "num_hashes": 2},
    ),
    "CentredPatches": (layers.CentredPatches, {"patch_size": 3}),
    "QueryPatches": (layers.QueryPatches, {"filters": 4}),
    "ImagePreprocessor": (preprocessors.ImagePreprocessor, {"num_bands": 2}),
    "AudioPreprocessor": (preprocessors.AudioPreprocessor, {"samples_per_patch": 4, "num_bands": 3}),
    "LogMelSpectrogram": (preprocessors.LogMelSpectrogram, {"sampling_rate": 16000, "fft_length": 64}),
    "ProjectionPostprocessor": (postprocessors.ProjectionPostprocessor, {"out_channels": 4}),
    "AudioPostprocessor": (postprocessors.AudioPostprocessor, {"samples_per_patch": 4}),
    "LogitsBias": (postprocessors.LogitsBias, {"vocab_size": 8}),
    "PerceiverIO.from_hyperparameters": (
        models.PerceiverIO.from_hyperparameters,
        {"input_shape": (10, 3), **STACK},
    ),
    "PerceiverImageClassifier.from_hyperparameters": (
        models.PerceiverImageClassifier.from_hyperparameters,
        {"image_shape": (8, 8, 3), "num_classes": 5, "num_bands": 2, **STACK},
    ),
    "PerceiverMaskedLM.from_hyperparameters": (
        models.PerceiverMaskedLM.from_hyperparameters,
        {**TEXT, **STACK, "decoder_query_patch_size": 3},
    ),
    "PerceiverAudioClassifier.from_hyperparameters": (
        models.PerceiverAudioClassifier.from_hyperparameters,
        {"num_samples": 64, "samples_per_patch": 8, "num_bands": 3, "num_classes": 4, **STACK},
    ),
    "PerceiverOpticalFlow.from_hyperparameters": (
        models.PerceiverOpticalFlow.from_hyperparameters,
        {"image_size": (8, 8), "train_size": (8, 8), "num_bands": 2, "output_channels": 8, **STACK},
    ),
    "HierarchicalPerceiver": (models.HierarchicalPerceiver, dict(HIP)),
}
# Tuples whose entries are checked one by one (the message names the entry, e.g. `num_groups[0]=0`).
PER_ENTRY = {"HierarchicalPerceiver", "FourierPositionEncoding"}


def argument_cases(name, arguments, rng):
    """Yield (label, keyword arguments, expectation)."""
    yield "valid", arguments, WORKS
    for key, value in arguments.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            for bad in BAD_INTEGERS:
                yield f"{key}={bad!r}", {**arguments, key: bad}, Raises(ValueError, f"{key}={bad!r}")
        elif isinstance(value, tuple) and all(isinstance(d, int) for d in value):
            position = int(rng.randint(0, len(value)))
            # (HiP: 0 self-attentions in a block is valid, a block of cross-attention only)
            entries = (
                (-int(rng.randint(1, 9)),) if key == "num_self_attends_per_block" else (0, -1 - position)
            )
            for entry in entries:
                bad = tuple(entry if i == position else d for i, d in enumerate(value))
                received = f"{key}[{position}]={entry}" if name in PER_ENTRY else f"{key}={bad!r}"
                yield f"{key}={bad!r}", {**arguments, key: bad}, Raises(ValueError, received)


class ArgumentFuzzTest(TestCase, parameterized.TestCase):
    @parameterized.named_parameters((name.split(".")[0], name) for name in CONSTRUCTORS)
    def test_fuzz(self, name):
        constructor, arguments = CONSTRUCTORS[name]
        fuzzer = Fuzzer(f"{name} arguments", MINIMUM_CASES)
        rng = np.random.RandomState(sum(map(ord, name)))
        for label, kwargs, expect in argument_cases(name, arguments, rng):
            fuzzer.check(label, lambda kwargs=kwargs: constructor(**kwargs), expect)
        fuzzer.finish(self)
