"""Fuzz cases for the task models' `__call__` and `predict`: wrong keys, ranks, dimensions, dtypes, masks,
batch sizes, token ids and non-finite values raise a named error that names the received value; valid
variations (batch sizes 0 and up, free dimensions, float64, integer masks, fully masked rows) work.
"""

import numpy as np
from absl.testing import parameterized

from keras_perceiver import models
from tests.fuzz.harness import WORKS, Fuzzer, Raises
from tests.models.test_hierarchical_perceiver import SMALL
from tests.test_case import TestCase

STACK = {
    "num_latents": 4,
    "latent_dim": 16,
    "num_blocks": 1,
    "num_self_attends_per_block": 1,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 2,
}
TEXT = {"max_sequence_length": 12, "embedding_dim": 16, "qk_channels": 16, "v_channels": 16}
HIP = SMALL  # a small HiP U-Net: an image modality of 12 points and a label modality of 2 points
BUILDERS = {
    "PerceiverIO": lambda: models.PerceiverIO.from_hyperparameters(input_shape=(10, 3), **STACK),
    "Perceiver": lambda: models.Perceiver.from_hyperparameters(
        input_shape=(10, 3),
        num_classes=5,
        num_cross_attends=2,
        num_latents=4,
        latent_dim=16,
        num_self_attends_per_block=1,
        num_self_attention_heads=2,
    ),
    "PerceiverImageClassifier": lambda: models.PerceiverImageClassifier.from_hyperparameters(
        image_shape=(8, 8, 3), num_classes=5, num_bands=2, **STACK
    ),
    "PerceiverMaskedLM": lambda: models.PerceiverMaskedLM.from_hyperparameters(**TEXT, **STACK),
    "PerceiverTextClassifier": lambda: models.PerceiverTextClassifier.from_hyperparameters(**TEXT, **STACK),
    "PerceiverTokenClassifier": lambda: models.PerceiverTokenClassifier.from_hyperparameters(
        num_labels=3, decoder_qk_channels=16, **TEXT, **STACK
    ),
    "PerceiverAudioClassifier": lambda: models.PerceiverAudioClassifier.from_hyperparameters(
        num_samples=64, samples_per_patch=8, num_bands=3, num_classes=4, **STACK
    ),
    "PerceiverEntityEncoder": lambda: models.PerceiverEntityEncoder.from_hyperparameters(
        input_channels=3, embedding_dim=16, **STACK
    ),
    "PerceiverOpticalFlow": lambda: models.PerceiverOpticalFlow.from_hyperparameters(
        image_size=(8, 8), train_size=(8, 8), num_bands=2, output_channels=8, **STACK
    ),
    "HiPClassifier": lambda: models.HiPClassifier(
        **{**HIP, "input_shapes": {"image": (12, 3)}}, num_classes=5
    ),
    "PerceiverMultimodalAutoencoder": lambda: models.PerceiverMultimodalAutoencoder.from_hyperparameters(
        num_frames=2,
        image_size=(8, 8),
        audio_samples_per_frame=16,
        samples_per_patch=4,
        num_classes=5,
        video_num_bands=2,
        video_max_resolution=None,
        audio_num_bands=3,
        label_query_channels=8,
        decoder_output_channels=8,
        num_latents=4,
        latent_dim=8,
        num_self_attends_per_block=1,
        num_cross_attention_heads=1,
        num_self_attention_heads=2,
    ),
    "HierarchicalPerceiver": lambda: models.HierarchicalPerceiver(**HIP),
    "HiPClassBottleneck": lambda: models.HiPClassBottleneck(**HIP, label_modalities=("label",)),
}
# Cases per model: the kinds below, each drawn `DRAWS` times with random sizes (every 3rd also
# through predict).
DRAWS = 6
MINIMUM_CASES = 60
WORKING_FITS = 2  # per model


class Inputs:
    """The model's named inputs and a valid example batch for them."""

    def __init__(self, model, rng):
        self.model = model
        self.rng = rng
        self.specs = {t.name: (tuple(t.shape), str(t.dtype)) for t in model.inputs}
        self.ranges = model.input_value_ranges()
        self.free = {}  # one size per free (None) non-batch dimension, shared by the inputs
        self.masks = [k for k in self.specs if k.endswith("mask")]
        self.data = [k for k in self.specs if k not in self.masks]
        optional = [t.name for t in model.inputs if getattr(t._keras_history.operation, "optional", False)]
        self.required = [k for k in self.specs if k not in optional]

    def valid(self, batch=2, free=6):
        out = {}
        for key, (shape, dtype) in self.specs.items():
            shape = tuple(batch if i == 0 else (free if d is None else d) for i, d in enumerate(shape))
            if dtype == "bool":
                out[key] = np.ones(shape, bool)
            elif "int" in dtype:
                low, high = self.ranges.get(key, (0, 1))
                out[key] = self.rng.randint(low, high, size=shape).astype(dtype)
            else:
                out[key] = self.rng.normal(size=shape).astype(dtype)
        return out


def finite_outputs(result):
    import keras

    for leaf in keras.tree.flatten(result):
        array = np.asarray(leaf)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            return "gave non-finite outputs"
    return None


def shape_text(key, shape):
    return f"{key}.shape={tuple(shape)}"


def cases(spec, rng):
    """Yield (label, inputs, expectation, validate, check_numerics) for one model."""
    base = spec.valid()
    for draw in range(DRAWS):
        key = spec.data[draw % len(spec.data)] if draw % 2 == 0 or not spec.masks else spec.masks[0]
        value = base[key]
        shape, dtype = spec.specs[key]

        # Valid variations.
        batch = int(rng.choice([0, 1, 3, 5]))
        yield f"batch {batch}", spec.valid(batch=batch), WORKS, finite_outputs, False
        if any(d is None for d in shape[1:]):
            free = int(rng.randint(1, 13))  # up to the text models' max_sequence_length
            yield f"free dimension {free}", spec.valid(free=free), WORKS, finite_outputs, False
        if dtype == "float32":
            yield "float64", {**base, key: value.astype("float64")}, WORKS, finite_outputs, False
        for mask in spec.masks:
            partial = base[mask].astype("int32")
            partial[0, rng.randint(0, partial.shape[1]) :] = 0
            yield f"{mask} as 0/1 int32", {**base, mask: partial}, WORKS, finite_outputs, False
            empty = np.zeros_like(base[mask])
            yield f"{mask} all False", {**base, mask: empty}, WORKS, finite_outputs, False

        # Wrong rank: extra trailing axes or a dropped axis.
        extra = tuple(int(s) for s in rng.randint(1, 4, size=rng.randint(1, 3)))
        bad = np.zeros(value.shape + extra, value.dtype)
        yield (
            f"{key} rank+{len(extra)}",
            {**base, key: bad},
            Raises(ValueError, shape_text(key, bad.shape)),
            None,
            False,
        )
        axis = int(rng.randint(0, value.ndim))
        bad = np.take(value, 0, axis=axis)
        yield (
            f"{key} without axis {axis}",
            {**base, key: bad},
            Raises(ValueError, shape_text(key, bad.shape)),
            None,
            False,
        )

        # Axes the model accepts at other sizes (`free_input_axes`, e.g. an image classifier's H and W).
        free_axes = getattr(spec.model, "free_input_axes", {}).get(key, ())
        if free_axes:
            axis = int(rng.choice(free_axes))
            new = list(value.shape)
            new[axis] = int(rng.randint(1, 13))
            resized = {**base, key: spec.rng.normal(size=new).astype(value.dtype)}
            yield f"{key} axis {axis} = {new[axis]} (free)", resized, WORKS, finite_outputs, False

        # A wrong static dimension (0, smaller, larger, or huge: a broadcast view, no memory).
        static = [i for i, d in enumerate(shape) if i and d is not None and i not in free_axes]
        if static:
            axis = int(rng.choice(static))
            size = int(rng.choice([0, max(shape[axis] - 1, 0), shape[axis] + int(rng.randint(1, 5)), 10**7]))
            size = size if size != shape[axis] else shape[axis] + 1
            new = list(value.shape)
            new[axis] = size
            bad = np.broadcast_to(np.zeros((), value.dtype), new)
            yield (
                f"{key} axis {axis} = {size}",
                {**base, key: bad},
                Raises(ValueError, shape_text(key, new)),
                None,
                False,
            )

        # Batch sizes that disagree.
        if len(spec.specs) > 1:
            other = int(rng.randint(3, 7))
            bad = np.concatenate([value] * other, 0)[:other]
            expect = Raises(ValueError, f"{key}.shape[0]={other}")
            yield f"{key} batch {other} vs 2", {**base, key: bad}, expect, None, False

        # Wrong dtypes.
        text = value.astype(str)
        yield (
            f"{key} as strings",
            {**base, key: text},
            Raises(TypeError, f"dtype={text.dtype.name}"),
            None,
            False,
        )
        if dtype in ("bool", "int32"):
            floats = value.astype(rng.choice(["float16", "float32", "float64"]))
            yield (
                f"{key} as floats",
                {**base, key: floats},
                Raises(TypeError, f"dtype={floats.dtype.name}"),
                None,
                False,
            )
        if dtype == "bool":
            bad = value.astype("int32")
            bad[rng.randint(0, bad.shape[0]), 0] = int(rng.choice([-1, 2, 7]))
            received = f"Received: {int(bad[bad > 1][0]) if (bad > 1).any() else -1}"
            yield f"{key} holds {received}", {**base, key: bad}, Raises(ValueError, received), None, False

        # Token ids out of range.
        if key in spec.ranges:
            low, high = spec.ranges[key]
            bad = value.copy()
            bad[0, 0] = int(rng.choice([high, high + rng.randint(1, 1000), -1]))
            received = f"max={bad.max()}" if bad[0, 0] >= high else f"min={bad.min()}"
            yield f"{key} id {bad[0, 0]}", {**base, key: bad}, Raises(ValueError, received), None, False

        # `model(x)` without a dict, for a model with one required input: the same checks apply.
        if len(spec.required) == 1 and draw < 2:
            only = spec.required[0]
            if draw == 0:
                yield f"{only} without a dict", base[only], WORKS, finite_outputs, False
            else:
                bad = base[only].astype(str)
                yield (
                    f"{only} without a dict, as strings",
                    bad,
                    Raises(TypeError, f"dtype={bad.dtype.name}"),
                    None,
                    False,
                )

        # Keys: unknown, missing.
        unknown = "".join(rng.choice(list("abcxyz_"), size=6))
        yield f"unknown key {unknown}", {**base, unknown: value}, Raises(ValueError, unknown), None, False
        missing = {k: v for k, v in base.items() if k != spec.data[0]}
        yield (
            f"missing {spec.data[0]}",
            missing,
            Raises(ValueError, f"missing inputs ['{spec.data[0]}']"),
            None,
            False,
        )

        # Non-finite values: silently passed through by default, refused with check_numerics.
        if value.dtype.kind == "f":
            bad = value.copy()
            count = int(rng.randint(1, bad.size + 1))
            bad.flat[rng.choice(bad.size, count, replace=False)] = rng.choice([np.nan, np.inf, -np.inf])
            yield f"{key} {count} non-finite", {**base, key: bad}, WORKS, None, False
            received = f"Received: {count} NaN/inf"
            yield (
                f"{key} {count} non-finite, check_numerics",
                {**base, key: bad},
                Raises(ValueError, received),
                None,
                True,
            )


def zero_targets(model, inputs):
    """Zero targets shaped like the model's outputs for the batch of `inputs` (free sizes from the inputs)."""
    import keras

    values = inputs.values() if isinstance(inputs, dict) else [inputs]
    first = next((v for v in values if v is not None and np.ndim(v)), np.zeros((2, 1)))  # e.g. {}: 2
    batch = np.shape(first)[0]
    free = np.shape(first)[1] if np.ndim(first) > 1 else 1

    def zeros(tensor):
        shape = [batch] + [free if d is None else d for d in tensor.shape[1:]]
        return np.zeros(shape, "float32")

    return keras.tree.map_structure(zeros, model.outputs if len(model.outputs) > 1 else model.outputs[0])


def targets_batch(targets):
    import keras

    return min(np.shape(leaf)[0] for leaf in keras.tree.flatten(targets))


class ModelFuzzTest(TestCase, parameterized.TestCase):
    @parameterized.named_parameters((name, name) for name in BUILDERS)
    def test_fuzz(self, name):
        model = BUILDERS[name]()
        model.compile(loss="mse")
        rng = np.random.RandomState(sum(map(ord, name)))
        spec = Inputs(model, rng)
        fuzzer = Fuzzer(name, MINIMUM_CASES)
        working_fits = 0
        for i, (label, inputs, expect, validate, check_numerics) in enumerate(cases(spec, rng)):
            model.check_numerics = check_numerics
            fuzzer.check(f"call: {label}", lambda inputs=inputs: model(inputs), expect, validate)
            if i % 3 == 0:
                fuzzer.check(
                    f"predict: {label}",
                    lambda inputs=inputs: model.predict(inputs, verbose=0),
                    expect,
                    validate,
                )
            if i % 5 == 0:
                targets = zero_targets(model, inputs)
                if expect is WORKS and not targets_batch(targets):
                    expect = Raises(ValueError, "hold no examples")
                fuzzer.check(
                    f"evaluate: {label}",
                    lambda inputs=inputs, targets=targets: model.evaluate(inputs, targets, verbose=0),
                    expect,
                )
                # (NaN inputs would make the weights NaN.) A fit that works traces a train step, about a
                # second each: two of those per model; refused fits are checked before any trace.
                fits = i % 10 == 0 and "non-finite" not in label
                if fits and (expect is not WORKS or working_fits < WORKING_FITS):
                    working_fits += expect is WORKS
                    fuzzer.check(
                        f"fit: {label}",
                        lambda inputs=inputs, targets=targets: model.fit(inputs, targets, verbose=0),
                        expect,
                    )
        model.check_numerics = False
        fuzzer.finish(self)
