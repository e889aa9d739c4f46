"""Multimodal output side: split decoder outputs by modality (sorted order), postprocess each."""

import math

import keras
from keras import ops

from keras_perceiver.validation import check_rank


def split_modalities(inputs, modality_sizes):
    """Split (B, O, C) along the index axis into {modality: (B, O_m, C)} in sorted name order.

    Sizes are ints or scalar integer tensors (for dynamic sizes, e.g. a
    number of subsampled output indices known only at run time).

    Source: transformers `restructure`; DeepMind `io_processors.restructure`.
    """
    outputs = {}
    start = 0
    for modality in sorted(modality_sizes):
        size = modality_sizes[modality]
        if isinstance(start, int) and isinstance(size, int):
            outputs[modality] = inputs[:, start : start + size]
        else:
            outputs[modality] = ops.slice(
                inputs, (0, start, 0), (ops.shape(inputs)[0], size, ops.shape(inputs)[2])
            )
        start = start + size
    return outputs


@keras.saving.register_keras_serializable(package="keras_perceiver")
class MultimodalPostprocessor(keras.layers.Layer):
    """Decoder outputs (B, O, C) -> {modality: postprocessed output}.

    The O outputs are split into consecutive blocks of O_m outputs, one per
    modality in sorted name order (the order `MultimodalPreprocessor` and
    the multimodal decoder queries concatenate in), and each block goes
    through its modality's postprocessor layer (e.g. `AudioPostprocessor`,
    `ProjectionPostprocessor`). The sizes O_m come from, in this order:
    the call's `output_indices` (for a subsampled modality, O_m is the number
    of its indices, which may be dynamic), the call's `modality_sizes`, then
    the constructor's `modality_sizes`. With `output_index_shapes`, a
    modality decoded in full (O_m equal to the product of its shape) is
    reshaped from (B, O_m, C') to (B, *shape, C'), e.g. video outputs back to
    (B, T, H, W, 3); a subsampled modality stays flat (B, O_m, C').

    Sublayers keep their own names (weights `{name}/classifier/...`).

    Source: Perceiver IO (arXiv 2107.14795) section 4.3; transformers
    `PerceiverMultimodalPostprocessor` (`input_is_dict=False`) and
    `restructure`; DeepMind `io_processors.MultimodalPostprocessor`.

    Args:
        modalities: dict {name: layer}, each layer mapping (B, O_m, C) to
            that modality's output. Give the layers distinct names.
        modality_sizes: dict {name: int} or None, the default O_m (e.g.
            `MultimodalPreprocessor.modality_sizes`, or the numbers of
            decoder queries). Defaults to None.
        output_index_shapes: dict {name: tuple of ints} or None, index shapes
            to restore for modalities decoded in full (their product must be
            O_m). Defaults to None.

    Call arguments:
        inputs: (B, O, C) decoder outputs, O = sum of O_m.
        modality_sizes: optional dict {name: int}, overrides the
            constructor's.
        output_indices: optional dict {name: (B, O_m) or (O_m,) indices or
            None}; a modality with indices has O_m = their count.

    Returns:
        dict {name: output of that modality's postprocessor}.

    Raises:
        ValueError: for an empty `modalities`, sizes or shapes that name
            unknown modalities, a missing size, inputs that are not rank 3,
            or (static) sizes that do not add up to O.

    Example:
    >>> import keras
    >>> from keras_perceiver.postprocessors import MultimodalPostprocessor
    >>> from keras_perceiver.postprocessors import AudioPostprocessor, ProjectionPostprocessor
    >>> layer = MultimodalPostprocessor(
    ...     {"audio": AudioPostprocessor(samples_per_patch=4, name="audio"),
    ...      "label": ProjectionPostprocessor(10, name="label")},
    ...     modality_sizes={"audio": 6, "label": 1})
    >>> outputs = layer(keras.ops.ones((2, 7, 8)))
    >>> tuple(outputs["audio"].shape), tuple(outputs["label"].shape)
    ((2, 24), (2, 1, 10))
    """

    def __init__(self, modalities, modality_sizes=None, output_index_shapes=None, **kwargs):
        super().__init__(**kwargs)
        name = self.__class__.__name__
        if not isinstance(modalities, dict) or not modalities:
            raise ValueError(
                f"{name}: `modalities` must be a non-empty dict {{name: postprocessor layer}}. "
                f"Received: modalities={modalities!r}"
            )
        for arg_name, arg in (
            ("modality_sizes", modality_sizes),
            ("output_index_shapes", output_index_shapes),
        ):
            unknown = sorted(set(arg or {}) - set(modalities))
            if unknown:
                raise ValueError(
                    f"{name}: `{arg_name}` names modalities that are not in `modalities`. "
                    f"Expected a subset of {sorted(modalities)}. Received: {unknown}"
                )
        self.modalities = dict(modalities)
        self.modality_sizes = (
            None if modality_sizes is None else {k: int(v) for k, v in modality_sizes.items()}
        )
        self.output_index_shapes = (
            None
            if output_index_shapes is None
            else {k: tuple(int(n) for n in v) for k, v in output_index_shapes.items()}
        )

    def _sizes(self, inputs, modality_sizes, output_indices):
        name = self.__class__.__name__
        given = dict(self.modality_sizes or {})
        given.update(modality_sizes or {})
        sizes = {}
        for modality in sorted(self.modalities):
            indices = (output_indices or {}).get(modality)
            if indices is not None:
                count = indices.shape[-1]
                sizes[modality] = int(count) if count is not None else ops.shape(indices)[-1]
            elif modality in given:
                sizes[modality] = int(given[modality])
            else:
                raise ValueError(
                    f"{name}: no size for modality {modality!r}. Expected `modality_sizes` (constructor or "
                    f"call) or `output_indices` for every modality in {sorted(self.modalities)}. "
                    f"Received sizes for {sorted(given)}"
                )
        total = inputs.shape[1]
        if (
            total is not None
            and all(isinstance(s, int) for s in sizes.values())
            and sum(sizes.values()) != total
        ):
            raise ValueError(
                f"{name}: the modality sizes {sizes} add up to {sum(sizes.values())}, but the inputs have "
                f"{total} outputs. Received: inputs.shape={tuple(inputs.shape)}"
            )
        return sizes

    def build(self, inputs_shape):
        self.built = True

    def call(self, inputs, modality_sizes=None, output_indices=None):
        check_rank("inputs", inputs, 3, self.__class__.__name__)
        sizes = self._sizes(inputs, modality_sizes, output_indices)
        blocks = split_modalities(inputs, sizes)
        outputs = {}
        for modality in sorted(self.modalities):
            out = self.modalities[modality](blocks[modality])
            shape = (self.output_index_shapes or {}).get(modality)
            size = sizes[modality]
            if shape is not None and isinstance(size, int) and size == math.prod(shape):  # decoded in full
                out = ops.reshape(out, (-1, *shape, out.shape[-1]))
            outputs[modality] = out
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "modalities": {
                    m: keras.saving.serialize_keras_object(layer) for m, layer in self.modalities.items()
                },
                "modality_sizes": self.modality_sizes,
                "output_index_shapes": self.output_index_shapes,
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
