"""Shared checks of the data-reader tests: materialize a reader's dataset, check its element spec."""

import numpy as np
import tensorflow as tf


def as_numpy(dataset, take=None):
    """Stack a dataset of dicts into a dict of numpy arrays (strings as Python str)."""
    if take is not None:
        dataset = dataset.take(take)
    columns = {}
    for example in dataset.as_numpy_iterator():
        for key, value in example.items():
            columns.setdefault(key, []).append(value.decode("utf-8") if isinstance(value, bytes) else value)
    return {key: v if isinstance(v[0], str) else np.stack(v) for key, v in columns.items()}


def element_spec(dataset):
    """{key: (dtype name, shape tuple)} of an unbatched dataset of dicts."""
    spec = dataset.element_spec
    assert isinstance(spec, dict), spec
    return {key: (value.dtype.name, tuple(value.shape)) for key, value in spec.items()}


def assert_unbatched_dict(dataset, expected):
    """The element spec equals `expected` ({key: (dtype, shape)}) and examples are dicts of tensors."""
    assert isinstance(dataset, tf.data.Dataset), type(dataset)
    assert element_spec(dataset) == expected, (element_spec(dataset), expected)
