"""Combine inputs with their position encodings: optional projection, then concat or add."""

import keras
from keras import ops

from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.validation import (
    check_channels,
    check_choice,
    check_numeric_dtype,
    check_positive_int,
    check_rank,
    static_shape,
)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PositionCombiner(keras.layers.Layer):
    """`concat([x, P(pos)])` or `x + P(pos)`, with P a Dense to `project_pos_dim` or identity.

    Source: transformers `PerceiverImagePreprocessor` (`concat_or_add_pos`,
    `project_pos_dim`); DeepMind `io_processors.ImagePreprocessor`.

    Args:
        concat_or_add_pos: `"concat"` (default) or `"add"`; `"add"` needs
            equal widths after projection.
        project_pos_dim: int or None, Dense projection width of the position
            encodings; None leaves them as they are.
        kernel_initializer: initializer of the projection.

    Call arguments:
        inputs: (B, M, C) tensor.
        position_encodings: (B, M, P) tensor.

    Returns:
        (B, M, C + P') for concat, (B, M, C) for add, P' the projected width.

    Raises:
        ValueError: for `"add"` with widths that differ.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import PositionCombiner
    >>> tuple(PositionCombiner()(keras.ops.ones((2, 5, 3)), keras.ops.ones((2, 5, 4))).shape)
    (2, 5, 7)
    """

    def __init__(self, concat_or_add_pos="concat", project_pos_dim=None, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        check_choice("concat_or_add_pos", concat_or_add_pos, ("concat", "add"))
        check_positive_int("project_pos_dim", project_pos_dim, allow_none=True)
        self.concat_or_add_pos = concat_or_add_pos
        self.project_pos_dim = project_pos_dim
        self.kernel_initializer = keras.initializers.get(kernel_initializer or default_kernel_initializer())
        self.projection = None
        if project_pos_dim is not None:
            self.projection = keras.layers.Dense(
                project_pos_dim,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name="projection",
            )

    def build(self, inputs_shape, position_encodings_shape):
        self._inputs_shape = tuple(inputs_shape)
        self._position_channels = position_encodings_shape[-1]
        pos_width = position_encodings_shape[-1]
        if self.projection is not None:
            self.projection.build(position_encodings_shape)
            pos_width = self.project_pos_dim
        if self.concat_or_add_pos == "add" and pos_width != inputs_shape[-1]:
            raise ValueError(
                "PositionCombiner: `add` needs position encodings as wide as the inputs. "
                f"Expected {inputs_shape[-1]} channels, received {pos_width} "
                "(set project_pos_dim to the input width)."
            )
        self.built = True

    def call(self, inputs, position_encodings):
        name = self.__class__.__name__
        check_numeric_dtype("inputs", inputs, name)
        check_numeric_dtype("position_encodings", position_encodings, name, floating=True)
        check_rank("inputs", inputs, len(self._inputs_shape), name)
        check_rank("position_encodings", position_encodings, len(self._inputs_shape), name)
        check_channels("inputs", inputs, self._inputs_shape[-1], name)
        check_channels("position_encodings", position_encodings, self._position_channels, name)
        shape, pos_shape = static_shape(inputs), static_shape(position_encodings)
        if any(a is not None and b is not None and a != b for a, b in zip(shape[:-1], pos_shape[:-1])):
            raise ValueError(
                f"{name}: `position_encodings` must match `inputs` on every axis but the channels. "
                f"Received: inputs.shape={shape}, position_encodings.shape={pos_shape}"
            )
        pos = ops.cast(position_encodings, inputs.dtype)
        if self.projection is not None:
            pos = self.projection(pos)
        if self.concat_or_add_pos == "add":
            return ops.add(inputs, pos)
        return ops.concatenate([inputs, pos], axis=-1)

    def compute_output_shape(self, inputs_shape, position_encodings_shape):
        if self.concat_or_add_pos == "add":
            return inputs_shape
        pos_width = self.project_pos_dim or position_encodings_shape[-1]
        return tuple(inputs_shape[:-1]) + (inputs_shape[-1] + pos_width,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "concat_or_add_pos": self.concat_or_add_pos,
                "project_pos_dim": self.project_pos_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
