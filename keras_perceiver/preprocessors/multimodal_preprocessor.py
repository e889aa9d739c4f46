"""Multimodal input side: per-modality preprocessors, padded to one width, optionally masked, concatenated."""

import keras
from keras import ops

from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.validation import check_choice

MASK_MODES = ("training", "always")


@keras.saving.register_keras_serializable(package="keras_perceiver")
class MultimodalPreprocessor(keras.layers.Layer):
    """A dict of modality inputs -> one input array (B, M = sum of M_m, C).

    Each modality m is preprocessed by its own layer to (B, M_m, C_m); every
    output is padded on the channel axis to the common width C = max(C_m) +
    `min_padding_size` with a learned vector per modality (the same C - C_m
    values at every position: a modality embedding); positions of a modality
    listed in `mask_probs` are replaced, each with probability p, by a
    learned mask token of width C; the modalities are concatenated along the
    index axis in sorted name order.

    The per-modality sizes are static: `modality_sizes` (after the layer is
    built, e.g. by calling it on `keras.Input`s) and
    `compute_modality_sizes(input_shapes)` give the dict {modality: M_m};
    pass it to `MultimodalPostprocessor(modality_sizes=...)` (or to
    `keras.ops` slicing) to split decoder outputs again. The call returns a
    single tensor, so the layer composes in Functional models like any other.

    Masking. transformers (`torch.bernoulli` in `forward`) and DeepMind
    (`jax.random.bernoulli` with `hk.next_rng_key()`) draw the mask on every
    call, in training and at inference alike: the published Kinetics model
    uses `mask_probs={"audio": 0, "image": 0, "label": 1}`, so the label
    input is always replaced by its mask token and the model must predict
    it. Here `mask_mode="always"` reproduces that; the default
    `mask_mode="training"` masks only when `training=True` (so `predict`
    and evaluation see unmasked inputs), and `apply_mask=` at call time
    overrides either. Probabilities 0 and 1 need no random draw; other
    probabilities draw `keras.random.uniform(...) < p` from a
    `keras.random.SeedGenerator(seed)`, so a seeded layer gives the same
    sequence of masks on every run (the generator state is a
    non-trainable variable, saved with the model).

    Weight names (for checkpoint conversion): `{modality}_padding`, shape
    (1, C - C_m) (transformers `padding.{modality}`, DeepMind
    `{modality}_padding/pos_embs`) and `{modality}_mask_token`, shape (1, C)
    (transformers `mask.{modality}`, DeepMind `{modality}_mask_token/pos_embs`);
    the modality preprocessors keep their own names and weights.

    Unlike transformers, the layer does not return the inputs without
    positions (used only by decoders with `concat_preprocessed_input`,
    which no published multimodal model uses).

    Source: Perceiver IO (arXiv 2107.14795) section 4.3 and appendix
    (Kinetics-700 autoencoding: audio, video and label modalities padded to
    704 channels); transformers `PerceiverMultimodalPreprocessor`; DeepMind
    `io_processors.MultimodalPreprocessor`.

    Args:
        modalities: dict {name: layer}, each layer mapping its input to
            (B, M_m, C_m) (e.g. `AudioPreprocessor`, `ImagePreprocessor`,
            `OneHotPreprocessor`). Give the layers distinct names.
        mask_probs: dict {name: float in [0, 1]} or None (default: no
            masking); only the modalities listed get a mask token.
        min_padding_size: int >= 0, C - max(C_m). Defaults to 2
            (transformers' default; the published model uses 4).
        mask_mode: `"training"` (default) or `"always"` (the reference's
            behaviour), see above.
        seed: int or None, seed of the mask draws for probabilities strictly
            between 0 and 1. Defaults to None (unseeded).
        initializer: initializer of the padding vectors and mask tokens;
            truncated normal with stddev 0.02 (DeepMind's `init_scale`) by
            default.

    Call arguments:
        inputs: dict {name: tensor}, the inputs of every modality.
        training: bool or None, masks when True (with `mask_mode="training"`).
        apply_mask: bool or None, forces masking on or off for this call.

    Returns:
        (B, sum of M_m, C) tensor, modalities in sorted name order.

    Raises:
        ValueError: for an empty or non-dict `modalities`, mask probabilities
            outside [0, 1] or for unknown modalities, a negative
            `min_padding_size`, an unknown `mask_mode`, inputs whose keys
            differ from the modalities, or a modality output that is not
            (B, M_m, C_m).

    Example:
    >>> import keras
    >>> from keras_perceiver.preprocessors import MultimodalPreprocessor
    >>> from keras_perceiver.preprocessors import AudioPreprocessor, OneHotPreprocessor
    >>> layer = MultimodalPreprocessor(
    ...     {"audio": AudioPreprocessor(samples_per_patch=4, num_bands=2, name="audio"),
    ...      "label": OneHotPreprocessor(name="label")},
    ...     mask_probs={"label": 1.0}, mask_mode="always")
    >>> tuple(layer({"audio": keras.ops.ones((2, 16)), "label": keras.ops.ones((2, 3))}).shape)
    (2, 5, 11)
    >>> layer.modality_sizes
    {'audio': 4, 'label': 1}
    """

    def __init__(
        self,
        modalities,
        mask_probs=None,
        min_padding_size=2,
        mask_mode="training",
        seed=None,
        initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = self.__class__.__name__
        if not isinstance(modalities, dict) or not modalities:
            raise ValueError(
                f"{name}: `modalities` must be a non-empty dict {{name: preprocessor layer}}. "
                f"Received: modalities={modalities!r}"
            )
        for modality, layer in modalities.items():
            if not isinstance(modality, str) or not isinstance(layer, keras.layers.Layer):
                raise ValueError(
                    f"{name}: `modalities` must map str names to Keras layers. "
                    f"Received: {modality!r}: {type(layer).__name__}"
                )
        mask_probs = dict(mask_probs or {})
        unknown = sorted(set(mask_probs) - set(modalities))
        if unknown:
            raise ValueError(
                f"{name}: `mask_probs` names modalities that are not in `modalities`. "
                f"Expected a subset of {sorted(modalities)}. Received: {unknown}"
            )
        for modality, p in mask_probs.items():
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError(
                    f"{name}: mask probabilities must be numbers in [0, 1]. "
                    f"Received: mask_probs[{modality!r}]={p!r}"
                )
        if (
            isinstance(min_padding_size, bool)
            or not isinstance(min_padding_size, int)
            or min_padding_size < 0
        ):
            raise ValueError(
                "`min_padding_size` must be a non-negative integer. "
                f"Received: min_padding_size={min_padding_size!r}"
            )
        check_choice("mask_mode", mask_mode, MASK_MODES)
        self.modalities = dict(modalities)
        self.mask_probs = {k: float(v) for k, v in mask_probs.items()}
        self.min_padding_size = min_padding_size
        self.mask_mode = mask_mode
        self.seed = seed
        self.initializer = keras.initializers.get(initializer or default_kernel_initializer())
        self.seed_generator = None
        if any(0.0 < p < 1.0 for p in self.mask_probs.values()):
            self.seed_generator = keras.random.SeedGenerator(seed, name="mask_seed_generator")
        self._modality_sizes = None
        self._num_channels = None

    @property
    def modality_order(self):
        """The modality names in concatenation order (sorted)."""
        return sorted(self.modalities)

    def _check_keys(self, inputs, what):
        if not isinstance(inputs, dict) or set(inputs) != set(self.modalities):
            received = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(
                f"{self.__class__.__name__}: {what} must be a dict with one entry per modality. "
                f"Expected keys {self.modality_order}. Received: {received}"
            )

    def _output_shapes(self, inputs_shape):
        """{modality: (B, M_m, C_m)} of the modality preprocessors."""
        self._check_keys(inputs_shape, "`inputs`")
        shapes = {}
        for modality in self.modality_order:
            layer = self.modalities[modality]
            in_shape = tuple(inputs_shape[modality])
            try:
                shape = tuple(layer.compute_output_shape(in_shape))
            except NotImplementedError:
                shape = tuple(layer.compute_output_spec(keras.KerasTensor(in_shape)).shape)
            if len(shape) != 3 or None in shape[1:]:
                raise ValueError(
                    f"{self.__class__.__name__}: the preprocessor of modality {modality!r} must output "
                    f"(B, M, C) with known M and C. Received: output shape {shape}"
                )
            shapes[modality] = shape
        return shapes

    def compute_modality_sizes(self, inputs_shape):
        """{modality: M_m} for a dict of input shapes, in sorted order."""
        return {m: shape[1] for m, shape in self._output_shapes(inputs_shape).items()}

    @property
    def modality_sizes(self):
        """{modality: M_m} of the built layer, in sorted order (None before building)."""
        return None if self._modality_sizes is None else dict(self._modality_sizes)

    @property
    def num_channels(self):
        """The common width C of the built layer (None before building)."""
        return self._num_channels

    def build(self, inputs_shape):
        for modality in self.modality_order:
            self._check_keys(inputs_shape, "`inputs`")
            layer = self.modalities[modality]
            if not layer.built:
                layer.build(tuple(inputs_shape[modality]))
        shapes = self._output_shapes(inputs_shape)
        self._modality_sizes = {m: shape[1] for m, shape in shapes.items()}
        self._num_channels = max(shape[2] for shape in shapes.values()) + self.min_padding_size
        self.paddings = {}
        self.mask_tokens = {}
        for modality in self.modality_order:
            self.paddings[modality] = self.add_weight(
                name=f"{modality}_padding",
                shape=(1, self._num_channels - shapes[modality][2]),
                initializer=clone_initializer(self.initializer),
            )
        for modality in sorted(self.mask_probs):
            self.mask_tokens[modality] = self.add_weight(
                name=f"{modality}_mask_token",
                shape=(1, self._num_channels),
                initializer=clone_initializer(self.initializer),
            )
        self.built = True

    def _masking(self, training, apply_mask):
        if apply_mask is not None:
            return bool(apply_mask)
        return self.mask_mode == "always" or bool(training)

    def call(self, inputs, training=None, apply_mask=None):
        self._check_keys(inputs, "`inputs`")
        masking = self._masking(training, apply_mask)
        outputs = []
        for modality in self.modality_order:
            x = self.modalities[modality](inputs[modality], training=training)
            x = ops.cast(x, self.compute_dtype)
            expected = self._modality_sizes[modality]
            if len(x.shape) != 3 or x.shape[1] != expected:
                raise ValueError(
                    f"{self.__class__.__name__}: modality {modality!r} gave shape {tuple(x.shape)}; the "
                    f"layer was built for (B, {expected}, C). Received: "
                    f"inputs[{modality!r}].shape={tuple(inputs[modality].shape)}"
                )
            batch_size = ops.shape(x)[0]
            padding = ops.cast(self.paddings[modality], self.compute_dtype)
            padding = ops.broadcast_to(padding[None], (batch_size, expected, padding.shape[-1]))
            x = ops.concatenate([x, padding], axis=-1)
            p = self.mask_probs.get(modality, 0.0)
            if masking and p > 0.0:
                token = ops.cast(self.mask_tokens[modality], self.compute_dtype)[None]  # (1, 1, C)
                if p >= 1.0:
                    x = ops.broadcast_to(token, ops.shape(x))
                else:
                    draws = keras.random.uniform((batch_size, expected), seed=self.seed_generator)
                    x = ops.where(ops.expand_dims(draws < p, -1), token, x)
            outputs.append(x)
        return ops.concatenate(outputs, axis=1)

    def compute_output_shape(self, inputs_shape):
        shapes = self._output_shapes(inputs_shape)
        batch = shapes[self.modality_order[0]][0]
        channels = max(shape[2] for shape in shapes.values()) + self.min_padding_size
        return (batch, sum(shape[1] for shape in shapes.values()), channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "modalities": {
                    m: keras.saving.serialize_keras_object(layer) for m, layer in self.modalities.items()
                },
                "mask_probs": dict(self.mask_probs),
                "min_padding_size": self.min_padding_size,
                "mask_mode": self.mask_mode,
                "seed": self.seed,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["modalities"] = {
            m: keras.saving.deserialize_keras_object(layer) for m, layer in config["modalities"].items()
        }
        return cls(**config)
