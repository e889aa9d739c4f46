"""The pre-norm residual MLP that follows every Perceiver attention."""

import keras
from keras import ops

from keras_perceiver.layers.dense_matmul import dense_matmul
from keras_perceiver.layers.drop_path import DropPath, check_drop_path_rate
from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.validation import (
    check_channels,
    check_choice,
    check_numeric_dtype,
    check_positive_int,
    check_rank,
)

ACTIVATIONS = ("gelu", "gelu_approximate", "squared_relu")


def get_activation(name):
    """`"gelu"`: exact erf GELU (transformers); `"gelu_approximate"`: tanh form (DeepMind Perceiver IO);
    `"squared_relu"`: `relu(x) ** 2` (DeepMind HiP's `sq_relu`)."""
    check_choice("activation", name, ACTIVATIONS)
    if name == "squared_relu":
        return lambda x: ops.square(ops.relu(x))
    approximate = name == "gelu_approximate"
    return lambda x: keras.activations.gelu(x, approximate=approximate)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class MLPBlock(keras.layers.Layer):
    """`x + DropPath(Dropout(Dense(Act(Dense(LayerNorm(x))))))`, hidden width `widening_factor * C`.

    Source: transformers `modeling_perceiver.PerceiverMLP` with the residual of
    `PerceiverLayer`; DeepMind `perceiver.py` `MLP`; HiP (arXiv 2202.10890)
    official `perceiver_helpers.py` `Dense` (squared ReLU) and
    `perceiver_blocks.py` `SelfAttention` (drop path).

    Args:
        widening_factor: int, hidden width multiplier. Defaults to 4.
        activation: `"gelu"` (exact, transformers, default),
            `"gelu_approximate"` (tanh, DeepMind Perceiver IO) or
            `"squared_relu"` (`relu(x) ** 2`, DeepMind HiP).
        dropout: float, dropout on the MLP output. Defaults to 0.
        layer_norm_epsilon: float. Defaults to 1e-5 (the reference's).
        kernel_initializer, bias_initializer: initializers of both Dense layers.
        drop_path_rate: float in [0, 1), stochastic depth on the MLP branch
            (`DropPath`, one draw per example, at training time). Defaults
            to 0.
        drop_path_scale_by_keep: bool, rescale kept branches by 1/(1 - rate).
            Defaults to False (DeepMind's HiP).
        num_groups: int, G: the batch axis holds B x G rows (groups folded
            into the batch, `fold_groups`); the drop-path draw is shared by an
            example's groups. Defaults to 1.

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
        drop_path_rate=0.0,
        drop_path_scale_by_keep=False,
        num_groups=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("widening_factor", widening_factor)
        check_choice("activation", activation, ACTIVATIONS)
        check_drop_path_rate(drop_path_rate)
        check_positive_int("num_groups", num_groups)
        self.widening_factor = widening_factor
        self.activation = activation
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer or default_kernel_initializer())
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.drop_path_rate = drop_path_rate
        self.drop_path_scale_by_keep = drop_path_scale_by_keep
        self.num_groups = num_groups

    def build(self, x_shape):
        channels = x_shape[-1]
        self._channels = channels
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
        self.drop_path = None
        if self.drop_path_rate > 0:
            self.drop_path = DropPath(
                self.drop_path_rate,
                scale_by_keep=self.drop_path_scale_by_keep,
                num_groups=self.num_groups,
                dtype=self.dtype_policy,
                name="drop_path",
            )
        self.layer_norm.build(x_shape)
        self.dense_1.build(x_shape)
        self.dense_2.build(tuple(x_shape[:-1]) + (self.widening_factor * channels,))
        self._act = get_activation(self.activation)
        self.built = True

    def call(self, x, training=None):
        name = self.__class__.__name__
        check_numeric_dtype("x", x, name, floating=True)  # the residual operand
        check_rank("x", x, (3, 4), name)
        check_channels("x", x, self._channels, name)
        # As 2-D matmuls (`dense_matmul`): TensorFlow fuses the first one with its bias and activation.
        h = dense_matmul(self.dense_1, self.layer_norm(x), activation=self._act)
        h = dense_matmul(self.dense_2, h)
        h = self.dropout_layer(h, training=training)
        if self.drop_path is not None:
            h = self.drop_path(h, training=training)
        # The residual adds use `+`, not `ops.add`: Keras' TensorFlow `add` takes a (0, 1, C) operand
        # (an empty batch of one query) for a bias vector and fails in `BiasAdd`.
        return x + h

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
                "drop_path_rate": self.drop_path_rate,
                "drop_path_scale_by_keep": self.drop_path_scale_by_keep,
                "num_groups": self.num_groups,
            }
        )
        return config
