"""HiP's per-modality linear embedding {m: (B, M_m, C_m)} -> {m: (B, M_m, E)} and its un-embedding."""

import keras

from keras_perceiver.layers.initializers import clone_initializer
from keras_perceiver.validation import check_modality_values, check_positive_int


def hip_initializer():
    """HiP's kernel initializer: `VarianceScaling(1.0, "fan_in", "truncated_normal")` (Haiku's default)."""
    return keras.initializers.VarianceScaling(1.0, mode="fan_in", distribution="truncated_normal")


def check_modality_name(name, layer_name):
    """Raise unless `name` can name a sublayer (a non-empty string without '/')."""
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(
            f"{layer_name}: modality names must be non-empty strings without '/'. Received: {name!r}"
        )


def _check_dict(name, inputs, expected, layer_name):
    if not isinstance(inputs, dict):
        raise ValueError(
            f"{layer_name}: `{name}` must be a dict of modality name -> (B, M, C) tensor. "
            f"Received: {type(inputs).__name__}"
        )
    if expected is not None and set(inputs) != set(expected):
        raise ValueError(
            f"{layer_name}: `{name}` must hold the modalities {list(expected)}. Received: {list(inputs)}"
        )


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ModalityEmbedder(keras.layers.Layer):
    """Embed every modality {m: (B, M_m, C_m)} to a common width: {m: (B, M_m, E)}.

    One Dense layer `embed_<m>` (bias) per modality, built from the first
    call's shapes, so that modalities of any channel count share one grouped
    array afterwards.

    Source: HiP (arXiv 2202.10890) section 3; official `perceiver_blocks.py`
    `Embedder.embed`.

    Args:
        num_embedding_channels: int, E.
        kernel_initializer: initializer of the kernels. Defaults to HiP's
            `VarianceScaling(1.0, "fan_in", "truncated_normal")`.
        bias_initializer: Defaults to zeros.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: dict of modality name -> (B, M_m, C_m) tensor.

    Returns:
        dict of modality name -> (B, M_m, E) tensor.

    Raises:
        ValueError: for a non-dict input, a modality name with '/', inputs
            that are not rank 3, or modalities or channel counts other than
            the built ones.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import ModalityEmbedder
    >>> embedder = ModalityEmbedder(num_embedding_channels=8)
    >>> out = embedder({"image": keras.ops.ones((2, 10, 3)), "label": keras.ops.ones((2, 1, 5))})
    >>> {m: tuple(x.shape) for m, x in out.items()}
    {'image': (2, 10, 8), 'label': (2, 1, 8)}
    """

    def __init__(self, num_embedding_channels, kernel_initializer=None, bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("num_embedding_channels", num_embedding_channels)
        self.num_embedding_channels = num_embedding_channels
        self.kernel_initializer = keras.initializers.get(kernel_initializer or hip_initializer())
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, inputs_shape):
        name = self.__class__.__name__
        _check_dict("inputs", inputs_shape, None, name)
        self.embeddings = {}
        self._channels = {}
        for modality, shape in inputs_shape.items():
            check_modality_name(modality, name)
            layer = keras.layers.Dense(
                self.num_embedding_channels,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                bias_initializer=clone_initializer(self.bias_initializer),
                dtype=self.dtype_policy,
                name=f"embed_{modality}",
            )
            layer.build(shape)
            self.embeddings[modality] = layer
            self._channels[modality] = shape[-1]
        self.built = True

    def call(self, inputs):
        name = self.__class__.__name__
        _check_dict("inputs", inputs, self._channels, name)
        check_modality_values("inputs", inputs, name, channels=self._channels)
        return {modality: self.embeddings[modality](x) for modality, x in inputs.items()}

    def compute_output_shape(self, inputs_shape):
        return {m: tuple(shape[:-1]) + (self.num_embedding_channels,) for m, shape in inputs_shape.items()}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_embedding_channels": self.num_embedding_channels,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ModalityUnembedder(keras.layers.Layer):
    """Map every modality {m: (B, M_m, E)} back to its own width: {m: (B, M_m, C_m)}.

    One Dense layer `unembed_<m>` (bias) per modality. Its kernel starts at
    zero (HiP's `VarianceScaling(0.0)`), so a fresh model reconstructs
    exactly its biases (zeros).

    Source: HiP (arXiv 2202.10890); official `perceiver_blocks.py`
    `Embedder.unembed`.

    Args:
        output_channels: dict of modality name -> C_m.
        kernel_initializer: Defaults to zeros (HiP's).
        bias_initializer: Defaults to zeros.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: dict of modality name -> (B, M_m, E) tensor, the modalities of
            `output_channels`.

    Returns:
        dict of modality name -> (B, M_m, C_m) tensor.

    Raises:
        ValueError: for an empty `output_channels`, a modality name with '/',
            or inputs with other modalities, ranks or widths than the built
            ones.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import ModalityUnembedder
    >>> unembedder = ModalityUnembedder(output_channels={"image": 3})
    >>> tuple(unembedder({"image": keras.ops.ones((2, 10, 8))})["image"].shape)
    (2, 10, 3)
    """

    def __init__(self, output_channels, kernel_initializer="zeros", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(output_channels, dict) or not output_channels:
            raise ValueError(
                "ModalityUnembedder: `output_channels` must be a non-empty dict of modality name -> C. "
                f"Received: output_channels={output_channels!r}"
            )
        for modality, channels in output_channels.items():
            check_modality_name(modality, self.__class__.__name__)
            check_positive_int(f"output_channels[{modality!r}]", channels)
        self.output_channels = {str(m): int(c) for m, c in output_channels.items()}
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unembeddings = {
            modality: keras.layers.Dense(
                channels,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                bias_initializer=clone_initializer(self.bias_initializer),
                dtype=self.dtype_policy,
                name=f"unembed_{modality}",
            )
            for modality, channels in self.output_channels.items()
        }

    def build(self, inputs_shape):
        _check_dict("inputs", inputs_shape, self.output_channels, self.__class__.__name__)
        self._width = {}
        for modality, layer in self.unembeddings.items():
            layer.build(inputs_shape[modality])
            self._width[modality] = inputs_shape[modality][-1]
        self.built = True

    def call(self, inputs):
        name = self.__class__.__name__
        _check_dict("inputs", inputs, self.output_channels, name)
        check_modality_values("inputs", inputs, name, channels=self._width)
        return {modality: self.unembeddings[modality](inputs[modality]) for modality in self.output_channels}

    def compute_output_shape(self, inputs_shape):
        return {m: tuple(inputs_shape[m][:-1]) + (c,) for m, c in self.output_channels.items()}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_channels": dict(self.output_channels),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
