"""The pre-norm residual MLP that follows every Perceiver attention."""

import keras
from keras import ops

from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.validation import check_choice, check_positive_int

ACTIVATIONS = ("gelu", "gelu_approximate")


def get_activation(name):
    """`"gelu"`: exact erf GELU (transformers); `"gelu_approximate"`: tanh form (DeepMind)."""
    check_choice("activation", name, ACTIVATIONS)
    approximate = name == "gelu_approximate"
    return lambda x: keras.activations.gelu(x, approximate=approximate)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class MLPBlock(keras.layers.Layer):
    """`x + Dropout(Dense(Act(Dense(LayerNorm(x)))))`, hidden width `widening_factor * C`.

    Source: transformers `modeling_perceiver.PerceiverMLP` with the residual of
    `PerceiverLayer`; DeepMind `perceiver.py` `MLP`.

    Args:
        widening_factor: int, hidden width multiplier. Defaults to 4.
        activation: `"gelu"` (exact, transformers, default) or
            `"gelu_approximate"` (tanh, DeepMind).
        dropout: float, dropout on the MLP output. Defaults to 0.
        layer_norm_epsilon: float. Defaults to 1e-5 (the reference's).
        kernel_initializer, bias_initializer: initializers of both Dense layers.

    Call arguments:
        x: (B, T, C) tensor.

    Returns:
        (B, T, C) tensor.
    """

    def __init__(
        self,
        widening_factor=4,
        activation="gelu",
        dropout=0.0,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("widening_factor", widening_factor)
        check_choice("activation", activation, ACTIVATIONS)
        self.widening_factor = widening_factor
        self.activation = activation
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_kernel_initializer()
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, x_shape):
        channels = x_shape[-1]
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.dense_1 = keras.layers.Dense(
            self.widening_factor * channels,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="dense_1",
        )
        self.dense_2 = keras.layers.Dense(
            channels,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name="dense_2",
        )
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.layer_norm.build(x_shape)
        self.dense_1.build(x_shape)
        self.dense_2.build(tuple(x_shape[:-1]) + (self.widening_factor * channels,))
        self._act = get_activation(self.activation)
        self.built = True

    def call(self, x, training=None):
        h = self.dense_2(self._act(self.dense_1(self.layer_norm(x))))
        return ops.add(x, self.dropout_layer(h, training=training))

    def compute_output_shape(self, x_shape):
        return x_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "widening_factor": self.widening_factor,
                "activation": self.activation,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
