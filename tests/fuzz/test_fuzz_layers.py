"""Fuzz cases for the layers users compose (CrossAttentionEncoder, LatentProcessor, QueryDecoder, the
attention blocks, the input preprocessors and postprocessors, the position and query builders and HiP's
layers over modality dicts): wrong ranks, channels, dtypes, masks, keys and batch sizes raise a named error
naming the received value; valid variations (batch sizes, index sizes, integer or float masks, float64,
many inputs through the chunked cross-attention) work.
"""

import numpy as np
from absl.testing import parameterized

from keras_perceiver import layers
from keras_perceiver.postprocessors import (
    AudioPostprocessor,
    ClassificationPostprocessor,
    LogitsBias,
    ProjectionPostprocessor,
)
from keras_perceiver.preprocessors import (
    AudioPreprocessor,
    ImagePreprocessor,
    LogMelSpectrogram,
    OneHotPreprocessor,
    OpticalFlowPreprocessor,
    TextPreprocessor,
)
from tests.fuzz.harness import WORKS, Fuzzer, Raises
from tests.test_case import TestCase


class Argument:
    """One call argument: its example shape, dtype, and which axes may vary freely."""

    def __init__(
        self,
        shape,
        dtype="float32",
        free_axes=(0,),
        floating=True,
        keyword=False,
        low_high=None,
        ranks=None,
        free_channels=False,
        any_dtype=False,
    ):
        """`ranks`: the ranks the argument takes (default: the example's); `free_channels`: any last axis;
        `any_dtype`: strings too (a layer that only moves values, e.g. regrouping masks)."""
        self.shape, self.dtype, self.free_axes = shape, dtype, free_axes
        self.floating, self.keyword, self.low_high = floating, keyword, low_high
        self.ranks = ranks or (len(shape),)
        self.free_channels, self.any_dtype = free_channels, any_dtype


# name -> (factory, {argument: Argument}, axes tied across arguments: ((arg, axis), (arg, axis)), ...)
LAYERS = {
    "CrossAttentionEncoder": (
        lambda: layers.CrossAttentionEncoder(num_latents=4, latent_dim=16),
        {
            "inputs": Argument((2, 10, 3), free_axes=(0, 1), floating=False),
            "padding_mask": Argument((2, 10), "bool", free_axes=(0, 1), floating=False, keyword=True),
        },
        ((("inputs", 0), ("padding_mask", 0)), (("inputs", 1), ("padding_mask", 1))),
    ),
    "LatentProcessor": (
        lambda: layers.LatentProcessor(num_self_attends_per_block=1, num_self_attention_heads=2),
        {"latents": Argument((2, 4, 16), free_axes=(0, 1))},
        (),
    ),
    "QueryDecoder": (
        lambda: layers.QueryDecoder(output_channels=5),
        {
            "queries": Argument((2, 6, 8), free_axes=(0, 1), floating=False),
            "latents": Argument((2, 4, 16), free_axes=(0, 1)),
            "query_mask": Argument((2, 6), "bool", free_axes=(0, 1), floating=False, keyword=True),
        },
        (
            (("queries", 0), ("latents", 0)),
            (("queries", 0), ("query_mask", 0)),
            (("queries", 1), ("query_mask", 1)),
        ),
    ),
    "CrossAttention": (
        lambda: layers.CrossAttention(num_heads=1),
        {
            "query": Argument((2, 4, 16), free_axes=(0, 1)),
            "inputs": Argument((2, 10, 16), free_axes=(0, 1), floating=False),
            "padding_mask": Argument((2, 10), "bool", free_axes=(0, 1), floating=False, keyword=True),
        },
        (
            (("query", 0), ("inputs", 0)),
            (("inputs", 0), ("padding_mask", 0)),
            (("inputs", 1), ("padding_mask", 1)),
        ),
    ),
    "SelfAttention": (
        lambda: layers.SelfAttention(num_heads=2),
        {"x": Argument((2, 4, 16), free_axes=(0, 1))},
        (),
    ),
    "TextPreprocessor": (
        lambda: TextPreprocessor(262, 12, 16),
        {"token_ids": Argument((2, 8), "int32", free_axes=(0, 1), floating=False, low_high=(0, 262))},
        (),
    ),
    "TextPreprocessorNGrams": (
        lambda: TextPreprocessor(
            262, 12, 16, ngram_sizes=(2, 3), num_ngram_buckets=16, ngram_embedding_dim=4
        ),
        {"token_ids": Argument((2, 8), "int32", free_axes=(0, 1), floating=False, low_high=(0, 262))},
        (),
    ),
    "ImagePreprocessor": (
        lambda: ImagePreprocessor(num_bands=2),
        {"images": Argument((2, 8, 8, 3), floating=False)},
        (),
    ),
    "HiPBlock": (
        lambda: layers.HiPBlock(num_groups=2, num_latents=3, latent_dim=8, num_self_attention_heads=2),
        {
            "inputs": Argument((2, 4, 5, 6), floating=False),
            "padding_mask": Argument((2, 4, 5), "bool", floating=False, keyword=True),
        },
        ((("inputs", 0), ("padding_mask", 0)),),
    ),
    "AudioPreprocessor": (
        lambda: AudioPreprocessor(samples_per_patch=4, num_bands=3),
        {"inputs": Argument((2, 16), floating=False)},
        (),
    ),
    "OpticalFlowPreprocessor": (
        lambda: OpticalFlowPreprocessor(train_size=(6, 6), num_bands=2, output_channels=8),
        {"frames": Argument((2, 2, 6, 6, 3), floating=False)},
        (),
    ),
    "OneHotPreprocessor": (
        lambda: OneHotPreprocessor(num_classes=5),
        {"inputs": Argument((2, 5), floating=False)},
        (),
    ),
    # Building blocks and postprocessors.
    "DropPath": (
        lambda: layers.DropPath(0.5, seed=1),
        {"x": Argument((2, 4, 16), free_axes=(0, 1), ranks=(2, 3, 4, 5), free_channels=True)},
        (),
    ),
    "InputQueries": (
        lambda: layers.InputQueries(),
        {
            "inputs": Argument((2, 6, 3), free_axes=(0, 1), floating=False, free_channels=True),
            "position_encodings": Argument((2, 6, 4), free_axes=(0, 1), floating=False, free_channels=True),
        },
        ((("inputs", 0), ("position_encodings", 0)), (("inputs", 1), ("position_encodings", 1))),
    ),
    "TaskQueries": (
        lambda: layers.TaskQueries(["a", "b"], num_channels=8),
        {
            "inputs": Argument(
                (2, 6, 3), floating=False, ranks=(1, 2, 3, 4, 5), free_channels=True, any_dtype=True
            )
        },
        (),
    ),
    "FourierQueries": (
        lambda: layers.FourierQueries(index_dims=(4, 4), num_bands=2),
        {
            "inputs": Argument(
                (2, 16, 3), floating=False, ranks=(1, 2, 3, 4, 5), free_channels=True, any_dtype=True
            )
        },
        (),
    ),
    "Regroup": (
        lambda: layers.Regroup(num_groups=2),
        {"inputs": Argument((2, 4, 5, 6), floating=False, ranks=(3, 4), free_channels=True, any_dtype=True)},
        (),
    ),
    "ModalityUngrouper": (
        lambda: layers.ModalityUngrouper(2, {"image": 6, "label": 2}),
        {"inputs": Argument((2, 2, 4, 8), floating=False, free_channels=True, any_dtype=True)},
        (),
    ),
    "TrainablePositionEncoding": (
        lambda: layers.TrainablePositionEncoding(index_dims=6, num_channels=8),
        {"inputs": Argument((2, 6, 3), floating=False, free_channels=True, any_dtype=True)},
        (),
    ),
    "TrainableQueries": (
        lambda: layers.TrainableQueries(num_queries=3, num_channels=8),
        {
            "inputs": Argument(
                (2, 6, 3), floating=False, ranks=(1, 2, 3, 4, 5), free_channels=True, any_dtype=True
            )
        },
        (),
    ),
    "FourierPositionEncoding": (
        lambda: layers.FourierPositionEncoding(num_bands=2, index_dims=(4, 4)),
        {
            "inputs": Argument(
                (2, 16, 3), floating=False, ranks=(1, 2, 3, 4, 5), free_channels=True, any_dtype=True
            )
        },
        (),
    ),
    "PositionCombiner": (
        lambda: layers.PositionCombiner(),
        {
            "inputs": Argument((2, 6, 3), free_axes=(0, 1), floating=False),
            "position_encodings": Argument((2, 6, 4), free_axes=(0, 1)),
        },
        ((("inputs", 0), ("position_encodings", 0)), (("inputs", 1), ("position_encodings", 1))),
    ),
    "ProjectionPostprocessor": (
        lambda: ProjectionPostprocessor(out_channels=4),
        {"inputs": Argument((2, 6, 8), free_axes=(0, 1), floating=False)},
        (),
    ),
    "ClassificationPostprocessor": (
        lambda: ClassificationPostprocessor(),
        {"inputs": Argument((2, 1, 8), floating=False, free_channels=True)},
        (),
    ),
    "AudioPostprocessor": (
        lambda: AudioPostprocessor(samples_per_patch=4),
        {"inputs": Argument((2, 6, 8), free_axes=(0, 1), floating=False)},
        (),
    ),
    "LogitsBias": (lambda: LogitsBias(vocab_size=8), {"inputs": Argument((2, 6, 8), free_axes=(0, 1))}, ()),
    "LogMelSpectrogram": (
        lambda: LogMelSpectrogram(sampling_rate=16000, fft_length=64, sequence_stride=32, num_mel_bins=8),
        {"inputs": Argument((2, 256), free_axes=(0,), floating=False)},
        (),
    ),
    "PerceiverMultiHeadAttention": (
        lambda: layers.PerceiverMultiHeadAttention(num_heads=2, qk_channels=16, output_channels=16),
        {
            "query": Argument((2, 4, 16), free_axes=(0, 1), floating=False),
            "key_value": Argument((2, 10, 16), free_axes=(0, 1), floating=False),
            "attention_mask": Argument(
                (2, 4, 10), "bool", free_axes=(0,), floating=False, keyword=True, free_channels=True
            ),
        },
        (
            (("query", 0), ("key_value", 0)),
            (("query", 0), ("attention_mask", 0)),
            (("query", 1), ("attention_mask", 1)),
            (("key_value", 1), ("attention_mask", 2)),
        ),
    ),
    "MLPBlock": (lambda: layers.MLPBlock(), {"x": Argument((2, 4, 16), free_axes=(0, 1), ranks=(3, 4))}, ()),
}
DRAWS = 8
MINIMUM_CASES = 40
# Layers that read only the shape of `inputs` or move its values (any width or dtype is valid, for some any
# rank): fewer ways to fail, a smaller minimum.
LENIENT_MINIMUM = {
    "TrainableQueries": 16,
    "TaskQueries": 16,
    "FourierQueries": 16,
    "DropPath": 24,
    "FourierPositionEncoding": 16,
    "TrainablePositionEncoding": 24,
    "Regroup": 24,
    "ModalityUngrouper": 24,
}


def example(argument, rng, sizes):
    shape = tuple(sizes.get(axis, d) for axis, d in enumerate(argument.shape))
    if argument.dtype == "bool":
        return np.ones(shape, bool)
    if argument.low_high:
        return rng.randint(*argument.low_high, size=shape).astype(argument.dtype)
    return rng.normal(size=shape).astype(argument.dtype)


def call(layer, arguments, values):
    positional = [values[k] for k, a in arguments.items() if not a.keyword]
    keywords = {k: values[k] for k, a in arguments.items() if a.keyword and k in values}
    return layer(*positional, **keywords)


def no_non_finite(result):
    import keras

    for leaf in keras.tree.flatten(result):
        array = np.asarray(leaf)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            return "gave non-finite outputs"
    return None


def cases(arguments, ties, rng):
    """Yield (label, values, expectation, validate)."""
    base = {k: example(a, rng, {}) for k, a in arguments.items()}
    for draw in range(DRAWS):
        # Valid: every free axis resized together with the axes tied to it.
        sizes = {}
        for key, argument in arguments.items():
            for axis in argument.free_axes:
                sizes.setdefault(
                    (key, axis), int(rng.choice([1, 3, 7])) if axis else int(rng.choice([0, 1, 3]))
                )
        for (a, i), (b, j) in ties:
            sizes[(b, j)] = sizes[(a, i)]
        values = {
            k: example(a, rng, {ax: s for (kk, ax), s in sizes.items() if kk == k})
            for k, a in arguments.items()
        }
        yield f"sizes {sorted(sizes.items())}", values, WORKS, no_non_finite

        key = list(arguments)[draw % len(arguments)]
        argument, value = arguments[key], base[key]
        if argument.dtype == "bool":
            partial = value.astype(rng.choice(["int32", "float32"]))
            partial[0, rng.randint(0, partial.shape[1]) :] = 0
            yield f"{key} partial {partial.dtype}", {**base, key: partial}, WORKS, no_non_finite
        elif argument.dtype == "float32":
            yield f"{key} float64", {**base, key: value.astype("float64")}, WORKS, no_non_finite
        tied = [
            pair for tie in ties for pair in tie if (key, 1) in tie and pair[0] not in (key, "padding_mask")
        ]
        if (
            key in ("inputs", "query")
            and value.ndim == 3
            and draw == 0
            and 1 in argument.free_axes
            and not tied
        ):
            many = int(rng.choice([2**16, 2**17]))  # many keys: the chunked attention path
            big = {**base, key: np.broadcast_to(np.float32(0.5), (1, many, value.shape[2]))}
            big = {k: (v[:1] if k != key else v) for k, v in big.items()}
            if "padding_mask" in big and key == "inputs":
                big["padding_mask"] = np.ones((1, many), bool)
            yield f"{key} {many} elements", big, WORKS, no_non_finite

        # Wrong rank.
        extra = tuple(int(s) for s in rng.randint(2, 5, size=rng.randint(1, 3)))  # (B, N, 1) audio is valid
        extra = extra[: 1 if value.ndim + len(extra) in argument.ranks else len(extra)]
        bad = np.zeros(value.shape + extra, value.dtype)
        if bad.ndim not in argument.ranks:
            yield f"{key} rank+{len(extra)}", {**base, key: bad}, Raises(ValueError, str(bad.shape)), None
        bad = np.take(value, 0, axis=int(rng.randint(0, value.ndim)))
        if bad.ndim not in argument.ranks:
            yield f"{key} rank-1", {**base, key: bad}, Raises(ValueError, str(bad.shape)), None

        # Wrong channels (the last axis of a built float input).
        if value.ndim >= 3 and not argument.free_channels:
            new = list(value.shape)
            new[-1] = int(rng.choice([1, 2, value.shape[-1] + 1, value.shape[-1] * 2]))
            bad = np.zeros(new, value.dtype)
            yield f"{key} {new[-1]} channels", {**base, key: bad}, Raises(ValueError, str(bad.shape)), None

        # Tied axes that disagree (batch sizes, mask lengths).
        if ties:
            (a, i), (b, j) = ties[draw % len(ties)]
            new = list(base[b].shape)
            new[j] = base[a].shape[i] + int(rng.randint(1, 4))
            bad = np.zeros(new, base[b].dtype)
            yield f"{b} axis {j} = {new[j]}", {**base, b: bad}, Raises(ValueError, str(tuple(new))), None

        # Wrong dtypes.
        text = value.astype(str)
        if not argument.any_dtype:
            yield f"{key} strings", {**base, key: text}, Raises(TypeError, "dtype="), None
        if argument.floating:
            ints = value.astype(rng.choice(["int32", "int64"]))
            yield (
                f"{key} {ints.dtype}",
                {**base, key: ints},
                Raises(TypeError, f"dtype={ints.dtype.name}"),
                None,
            )
        if argument.low_high:
            bad = value.copy()
            bad[0, 0] = int(rng.choice([-1, argument.low_high[1], argument.low_high[1] + 99]))
            received = f"max={bad.max()}" if bad[0, 0] >= 0 else f"min={bad.min()}"
            yield f"{key} id {bad[0, 0]}", {**base, key: bad}, Raises(ValueError, received), None
            floats = value.astype("float32")
            yield f"{key} floats", {**base, key: floats}, Raises(TypeError, "dtype=float32"), None


class LayerFuzzTest(TestCase, parameterized.TestCase):
    @parameterized.named_parameters((name, name) for name in LAYERS)
    def test_fuzz(self, name):
        factory, arguments, ties = LAYERS[name]
        layer = factory()
        rng = np.random.RandomState(sum(map(ord, name)))
        fuzzer = Fuzzer(name, LENIENT_MINIMUM.get(name, MINIMUM_CASES))
        call(layer, arguments, {k: example(a, rng, {}) for k, a in arguments.items()})  # build
        for label, values, expect, validate in cases(arguments, ties, rng):
            fuzzer.check(label, lambda values=values: call(layer, arguments, values), expect, validate)
        fuzzer.finish(self)


# The HiP layers that take a dict of modalities {m: (B, M_m, C_m)}: name -> (factory, channels per modality,
# checks: "M" (sizes from index_dims), "B" (one batch size, the modalities are concatenated), "mask" (a
# padding_mask dict)).
INDEX_DIMS = {"image": 6, "label": 2}
DICT_LAYERS = {
    "ModalityEmbedder": (lambda: layers.ModalityEmbedder(4), {"image": 3, "label": 5}, ()),
    "ModalityUnembedder": (
        lambda: layers.ModalityUnembedder({"image": 3, "label": 5}),
        {"image": 4, "label": 4},
        (),
    ),
    "ModalityGrouper": (
        lambda: layers.ModalityGrouper(2, INDEX_DIMS),
        {"image": 4, "label": 4},
        ("M", "B", "mask"),
    ),
    "ModalityPositionEncoder": (
        lambda: layers.ModalityPositionEncoder(INDEX_DIMS),
        {"image": 4, "label": 4},
        ("M",),
    ),
}


def modality_cases(channels, checks, rng):
    """Yield (label, inputs, padding_mask, expectation) for a layer over {m: (B, M_m, C_m)}."""

    def batch_of(batch):
        return {m: rng.normal(size=(batch, INDEX_DIMS[m], c)).astype("float32") for m, c in channels.items()}

    def text(m, shape):
        return f"inputs[{m!r}].shape={tuple(shape)}"

    base = batch_of(2)
    for draw in range(DRAWS):
        m = list(channels)[draw % len(channels)]
        x = base[m]
        batch = int(rng.choice([0, 1, 3, 5]))
        yield f"batch {batch}", batch_of(batch), None, WORKS
        yield f"{m} as float64", {**base, m: x.astype("float64")}, None, WORKS
        yield "a list", list(base.values()), None, Raises(ValueError, "Received: list")
        yield (
            f"without {m}",
            {k: v for k, v in base.items() if k != m},
            None,
            Raises(ValueError, str([k for k in base if k != m])),
        )
        extra = "".join(rng.choice(list("abcxyz"), size=5))
        yield f"extra {extra}", {**base, extra: x}, None, Raises(ValueError, extra)
        yield f"{m} None", {**base, m: None}, None, Raises(ValueError, f"inputs[{m!r}]=None")
        strings = x.astype(str)
        yield f"{m} as strings", {**base, m: strings}, None, Raises(TypeError, f"inputs[{m!r}].dtype=")
        bad = x[..., None] if draw % 2 else x[..., 0]
        yield f"{m} rank {bad.ndim}", {**base, m: bad}, None, Raises(ValueError, text(m, bad.shape))
        width = channels[m] + int(rng.randint(1, 4))
        bad = np.zeros(x.shape[:-1] + (width,), "float32")
        yield f"{m} {width} channels", {**base, m: bad}, None, Raises(ValueError, text(m, bad.shape))
        if "M" in checks:
            size = INDEX_DIMS[m] + int(rng.randint(1, 5))
            bad = np.zeros((2, size, channels[m]), "float32")
            yield f"{m} M={size}", {**base, m: bad}, None, Raises(ValueError, text(m, bad.shape))
        if "B" in checks:
            other = int(rng.randint(3, 7))
            bad = np.zeros((other,) + x.shape[1:], "float32")
            yield f"{m} batch {other} vs 2", {**base, m: bad}, None, Raises(ValueError, text(m, bad.shape))
        if "mask" in checks:
            mask = np.ones((2, INDEX_DIMS[m]), bool)
            mask[0, rng.randint(0, INDEX_DIMS[m]) :] = False
            yield f"padding_mask[{m!r}]", base, {m: mask}, WORKS
            yield f"padding_mask[{m!r}] as 0/1 int32", base, {m: mask.astype("int32")}, WORKS
            yield "padding_mask a list", base, [mask], Raises(ValueError, "Received: list")
            bad = mask.astype(str)
            expect = Raises(TypeError, f"padding_mask[{m!r}].dtype=")
            yield f"padding_mask[{m!r}] as strings", base, {m: bad}, expect
            bad = np.ones((2, INDEX_DIMS[m] + 1), bool)
            yield f"padding_mask[{m!r}] {bad.shape}", base, {m: bad}, Raises(ValueError, str(bad.shape))
            bad = np.ones((2, INDEX_DIMS[m], 1), bool)
            yield f"padding_mask[{m!r}] rank 3", base, {m: bad}, Raises(ValueError, str(bad.shape))


class ModalityLayerFuzzTest(TestCase, parameterized.TestCase):
    @parameterized.named_parameters((name, name) for name in DICT_LAYERS)
    def test_fuzz(self, name):
        factory, channels, checks = DICT_LAYERS[name]
        layer = factory()
        rng = np.random.RandomState(sum(map(ord, name)))
        fuzzer = Fuzzer(name, MINIMUM_CASES)
        layer({m: np.zeros((2, INDEX_DIMS[m], c), "float32") for m, c in channels.items()})  # build
        for label, inputs, padding_mask, expect in modality_cases(channels, checks, rng):
            kwargs = {} if padding_mask is None else {"padding_mask": padding_mask}
            thunk = lambda inputs=inputs, kwargs=kwargs: layer(inputs, **kwargs)  # noqa: E731
            fuzzer.check(label, thunk, expect, no_non_finite)
        fuzzer.finish(self)
