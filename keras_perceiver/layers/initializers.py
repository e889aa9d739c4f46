"""Initializer helpers shared by the layers."""

import math

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


@keras.saving.register_keras_serializable(package="keras_perceiver")
class FusedShapeInitializer(keras.initializers.Initializer):
    """Draw a kernel of shape (a_1..a_k, b_1..b_m) as the 2-D kernel (prod a, prod b) it stands for.

    A multi-head projection kernel [in, heads, head_dim] is one Linear
    [in, heads*head_dim] (Haiku's `hk.Linear`, torch's `nn.Linear`);
    Keras computes the fans of a 3-D kernel as if it were a convolution
    (fan_in = in * heads), so a `VarianceScaling` initializer (Glorot, He,
    LeCun included) would draw with the wrong scale. This wrapper draws the
    fused 2-D shape and reshapes it.

    Args:
        initializer: the wrapped initializer (an instance, name or config).
        num_input_axes: int k, how many leading axes make the fused input axis.
    """

    def __init__(self, initializer, num_input_axes=1):
        self.initializer = keras.initializers.get(initializer)
        self.num_input_axes = num_input_axes

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        k = self.num_input_axes
        fused = (math.prod(shape[:k]), math.prod(shape[k:]))
        return keras.ops.reshape(self.initializer(fused, dtype=dtype), shape)

    def get_config(self):
        return {
            "initializer": keras.initializers.serialize(self.initializer),
            "num_input_axes": self.num_input_axes,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["initializer"] = keras.initializers.deserialize(config["initializer"])
        return cls(**config)


def fused_shape_initializer(initializer, num_input_axes):
    """`initializer` for a multi-head kernel: fans of the fused 2-D shape when they matter.

    `VarianceScaling` initializers (Glorot, He, LeCun included) are wrapped
    in `FusedShapeInitializer`; the others do not depend on the fans and are
    returned as they are (so their draws stay bit-identical).
    """
    initializer = keras.initializers.get(initializer)
    if isinstance(initializer, keras.initializers.VarianceScaling):
        return FusedShapeInitializer(initializer, num_input_axes)
    return initializer
