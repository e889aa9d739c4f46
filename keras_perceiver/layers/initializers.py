"""Initializer helpers shared by the layers."""

import keras


def clone_initializer(initializer):
    """A fresh copy of `initializer`, so sublayers never share one seeded instance.

    Args:
        initializer: a `keras.initializers.Initializer`, a name or a config dict.

    Returns:
        A new initializer of the same class and config.
    """
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())


def default_kernel_initializer():
    """Truncated normal with stddev 0.02, the reference's `initializer_range`."""
    return keras.initializers.TruncatedNormal(stddev=0.02)
