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


# The Debian packages each reader of Debian data reads (the Makefile's DEBIAN_DATA_PACKAGES holds them all).
DEBIAN_PACKAGES = {
    "fashion_mnist": "dataset-fashion-mnist",
    "fortunes": "fortunes fortunes-min fortunes-de fortunes-es fortunes-it fortunes-pl fortunes-ru "
    "fortunes-cs fortunes-zh",
    "inventor_point_clouds": "inventor-data inventor-clients libinventor1",
    "tuxpaint_segmentation": "tuxpaint-stamps-default",
}


def debian_data_hint(reader):
    """How a user gets the Debian data of `reader` (the message of a skipped test)."""
    return (
        f"run `make debian-data` (as root: `apt-get install {DEBIAN_PACKAGES[reader]}`; otherwise it "
        "extracts the packages under .data/debian (`apt-get download` + `dpkg -x`), and `make test` points "
        "$KERAS_PERCEIVER_DATA_ROOT there)"
    )


def debian_data_dir(reader):
    """The data directory of a reader of Debian data (`fashion_mnist`, `fortunes`), or skip the test.

    A skip says how to get the data; under `CI=true` it is a failure
    (`tests/conftest.py`), since `make test` gets the data there.
    """
    import pytest

    from training.data import fashion_mnist, fortunes

    try:
        if reader == "fashion_mnist":
            required = [name for pair in fashion_mnist.FILES.values() for name in pair]
            return fashion_mnist.find_data_dir(
                reader, None, fashion_mnist.ENV_VAR, fashion_mnist.DEFAULT_DIR, required, ""
            )
        if reader == "fortunes":
            for language in fortunes.LANGUAGES:  # every language's package
                if not fortunes._read_language(language, fortunes._directory(None)):
                    raise FileNotFoundError(f"no quotes for language {language!r}")
            return fortunes._directory(None)
    except FileNotFoundError as error:
        pytest.skip(f"{reader}: Debian data missing ({error}); {debian_data_hint(reader)}")
    raise ValueError(
        f"debian_data_dir: unknown reader. Expected one of {sorted(DEBIAN_PACKAGES)}. Received: {reader!r}"
    )


def tuxpaint_stamps_dir():
    """The Tux Paint stamps directory (its PNG stamps and sounds), or None when the data is not installed."""
    from training.data.tuxpaint_segmentation import stamps_dir

    try:
        return stamps_dir()
    except FileNotFoundError:
        return None
