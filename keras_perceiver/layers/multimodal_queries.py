"""Decoder queries of several modalities, padded to a common width and concatenated."""

import keras
import numpy as np
from keras import ops

from keras_perceiver.layers.fourier_position_encoding import FourierPositionEncoding
from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.validation import check_positive_int

QUERY_TYPES = ("fourier", "trainable")


def index_positions(indices, index_dims):
    """Positions (..., d) in [-1, 1) of flat indices (...) into a row-major grid `index_dims`.

    Coordinate i along an axis of size n maps to `-1 + 2 * i / n`: the
    reference's positions of subsampled decoder queries (transformers
    `PerceiverBasicDecoder.decoder_query` with `subsampled_points`; DeepMind
    `BasicDecoder`), computed with the same float32 operations.
    """
    indices = ops.cast(indices, "int32")
    coordinates = []
    stride = int(np.prod(index_dims))
    for n in index_dims:
        stride //= n
        coordinates.append((indices // stride) % n)
    coordinates = ops.stack(coordinates, axis=-1)
    sizes = ops.convert_to_tensor(np.asarray(index_dims, "float32"))
    return ops.cast(2 * coordinates, "float32") / sizes - 1.0


def _normalize_spec(modality, spec):
    """Validated copy of one modality's query spec with tuples and defaults filled in."""
    if not isinstance(spec, dict) or spec.get("type") not in QUERY_TYPES:
        raise ValueError(
            f"MultimodalQueries: the spec of modality {modality!r} must be a dict with 'type' in "
            f"{list(QUERY_TYPES)}. Received: {spec!r}"
        )
    spec = dict(spec)
    if spec["type"] == "fourier":
        allowed = {"type", "index_dims", "num_bands", "max_resolution", "concat_pos", "sine_only"}
        spec["index_dims"] = tuple(spec.get("index_dims") or ())
        if not spec["index_dims"]:
            raise ValueError(
                f"MultimodalQueries: Fourier modality {modality!r} needs `index_dims`. Received: {spec!r}"
            )
        for i, n in enumerate(spec["index_dims"]):
            check_positive_int(f"{modality}.index_dims[{i}]", n)
        check_positive_int(f"{modality}.num_bands", spec.get("num_bands"))
        spec["max_resolution"] = tuple(spec.get("max_resolution") or spec["index_dims"])
        spec.setdefault("concat_pos", True)
        spec.setdefault("sine_only", False)
    else:
        allowed = {"type", "num_queries", "num_channels"}
        spec.setdefault("num_queries", 1)
        check_positive_int(f"{modality}.num_queries", spec["num_queries"])
        check_positive_int(f"{modality}.num_channels", spec.get("num_channels"))
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(
            f"MultimodalQueries: unknown keys {unknown} in the spec of modality {modality!r}. "
            f"Expected keys among {sorted(allowed)}"
        )
    return spec


@keras.saving.register_keras_serializable(package="keras_perceiver")
class MultimodalQueries(keras.layers.Layer):
    """Decoder queries (B, O, E) of several modalities, each padded to E and concatenated.

    Every modality has its own queries: Fourier features of its output grid
    (video (T, H, W), audio patches (S / samples_per_patch,)) or learned
    queries (the label). Each modality's queries are padded on the channel
    axis with a learned vector of that modality to the common width
    E = max(C_m) + `min_padding_size`, and the modalities are concatenated in
    sorted name order. A subset of each modality's query points can be
    decoded (training on subsampled outputs, chunked decoding): see
    `output_indices` and `chunk_indices`.

    Fourier positions follow the reference's subsampled decoding: coordinate
    i of an axis of size n is at `-1 + 2 * i / n`, whether the points are
    subsampled or not, so that any subset or chunking of the queries gives
    the same rows as the full set.

    Source: Perceiver IO (arXiv 2107.14795) section 4.3 (multimodal
    autoencoding); transformers `PerceiverMultimodalDecoder.decoder_query`
    with `PerceiverBasicDecoder(position_encoding_only=True)` per modality;
    DeepMind `perceiver.MultimodalDecoder`.

    Args:
        modalities: dict name -> spec. A Fourier spec is
            `{"type": "fourier", "index_dims": tuple, "num_bands": int,
            "max_resolution": tuple or None (defaults to index_dims),
            "concat_pos": bool (True), "sine_only": bool (False)}`; a learned
            spec is `{"type": "trainable", "num_queries": int (1),
            "num_channels": int}`.
        min_padding_size: int, padding channels of the widest modality.
            Defaults to 2 (transformers' `PerceiverMultimodalDecoder`).
        initializer: initializer of the learned queries and of the padding
            vectors; truncated normal with stddev 0.02 by default.

    Call arguments:
        inputs: tensor whose leading dimension is the batch B.
        output_indices: optional dict modality -> (O_m,) or (B, O_m) integer
            indices into that modality's flattened queries; modalities left
            out (or None) are decoded in full.
        modalities: optional list of modality names: only their queries
            are built (e.g. to decode one modality at a time: the decoder
            treats every query independently). Defaults to all.

    Returns:
        (B, O, E) tensor, O = sum of the selected modalities' query counts,
        in sorted modality order (see `query_counts`).

    Raises:
        ValueError: for an empty `modalities`, a malformed spec,
            `min_padding_size` < 0, or `output_indices` or `modalities`
            naming an unknown modality.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import MultimodalQueries
    >>> queries = MultimodalQueries({
    ...     "audio": {"type": "fourier", "index_dims": (6,), "num_bands": 2},
    ...     "label": {"type": "trainable", "num_channels": 8},
    ... })
    >>> tuple(queries(keras.ops.ones((2, 3, 1))).shape)
    (2, 7, 10)
    """

    def __init__(self, modalities, min_padding_size=2, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(modalities, dict) or not modalities:
            raise ValueError(
                "`modalities` must be a non-empty dict of modality specs. "
                f"Received: modalities={modalities!r}"
            )
        if type(min_padding_size) is not int or min_padding_size < 0:
            raise ValueError(
                "`min_padding_size` must be a non-negative integer. "
                f"Received: min_padding_size={min_padding_size!r}"
            )
        self.modalities = {name: _normalize_spec(name, modalities[name]) for name in sorted(modalities)}
        self.min_padding_size = min_padding_size
        self.initializer = keras.initializers.get(initializer or default_kernel_initializer())
        self.query_layers = {}
        for name, spec in self.modalities.items():
            if spec["type"] == "fourier":
                layer = FourierPositionEncoding(
                    spec["num_bands"],
                    index_dims=spec["index_dims"],
                    max_resolution=spec["max_resolution"],
                    concat_pos=spec["concat_pos"],
                    sine_only=spec["sine_only"],
                    dtype=self.dtype_policy,
                    name=f"{name}_position_encoding",
                )
            else:
                layer = TrainableQueries(
                    num_queries=spec["num_queries"],
                    num_channels=spec["num_channels"],
                    initializer=clone_initializer(self.initializer),
                    dtype=self.dtype_policy,
                    name=f"{name}_queries",
                )
            self.query_layers[name] = layer

    @property
    def modality_names(self):
        """Modality names in the order of the concatenated queries (sorted)."""
        return list(self.modalities)

    @property
    def query_channels(self):
        """dict modality -> width C_m of its queries before padding."""
        return {
            name: layer.output_channels if isinstance(layer, FourierPositionEncoding) else layer.num_channels
            for name, layer in self.query_layers.items()
        }

    @property
    def output_channels(self):
        """E, the common width: the widest modality + `min_padding_size`."""
        return max(self.query_channels.values()) + self.min_padding_size

    @property
    def query_counts(self):
        """dict modality -> number of query points when decoded in full."""
        return {
            name: int(np.prod(spec["index_dims"])) if spec["type"] == "fourier" else spec["num_queries"]
            for name, spec in self.modalities.items()
        }

    def chunk_indices(self, start, stop):
        """Per-modality indices of the queries in positions [start, stop) of the full concatenation.

        Decoding the queries of successive chunks and concatenating each
        modality's outputs gives the full decode, without ever building more
        than `stop - start` queries (chunked decoding of a large output).

        Returns:
            dict modality -> int32 numpy array (O_m,), possibly empty.

        Raises:
            ValueError: unless 0 <= start < stop <= total number of queries.
        """
        total = sum(self.query_counts.values())
        if not 0 <= start < stop <= total:
            raise ValueError(
                f"MultimodalQueries: expected 0 <= start < stop <= {total} (the number of queries). "
                f"Received: start={start}, stop={stop}"
            )
        indices, offset = {}, 0
        for name, count in self.query_counts.items():
            lo, hi = max(start - offset, 0), min(stop - offset, count)
            indices[name] = np.arange(lo, max(lo, hi), dtype="int32")
            offset += count
        return indices

    def build(self, inputs_shape=None, output_indices_shape=None):
        width = self.output_channels
        self.paddings = {}
        for name, layer in self.query_layers.items():
            if isinstance(layer, TrainableQueries):
                layer.build()
            pad = width - self.query_channels[name]
            if pad > 0:
                self.paddings[name] = self.add_weight(
                    name=f"{name}_padding", shape=(pad,), initializer=clone_initializer(self.initializer)
                )
        self.built = True

    def _modality_queries(self, name, inputs, indices):
        layer = self.query_layers[name]
        if isinstance(layer, TrainableQueries):
            return layer(inputs, output_indices=indices)
        if indices is None:
            indices = np.arange(self.query_counts[name], dtype="int32")
        positions = index_positions(indices, self.modalities[name]["index_dims"])
        return layer(inputs, positions=positions)

    def _check_names(self, names, argument):
        unknown = sorted(set(names) - set(self.modalities))
        if unknown:
            raise ValueError(
                f"MultimodalQueries: `{argument}` names unknown modalities {unknown}. "
                f"Expected names among {self.modality_names}"
            )

    def call(self, inputs, output_indices=None, modalities=None):
        output_indices = output_indices or {}
        self._check_names(output_indices, "output_indices")
        if modalities is not None:
            self._check_names(modalities, "modalities")
        names = [name for name in self.modality_names if modalities is None or name in modalities]
        if not names:
            raise ValueError(f"MultimodalQueries: `modalities` selects no modality. Received: {modalities!r}")
        batch_size = ops.shape(inputs)[0]
        width = self.output_channels
        queries = []
        for name in names:
            x = ops.cast(self._modality_queries(name, inputs, output_indices.get(name)), self.compute_dtype)
            if name in self.paddings:
                pad = ops.cast(self.paddings[name], self.compute_dtype)
                shape = (batch_size, ops.shape(x)[1], width - self.query_channels[name])
                x = ops.concatenate([x, ops.broadcast_to(pad, shape)], axis=-1)
            queries.append(x)
        return ops.concatenate(queries, axis=1) if len(queries) > 1 else queries[0]

    def compute_output_spec(self, inputs, output_indices=None, modalities=None):
        output_indices = output_indices or {}
        total = 0
        for name, count in self.query_counts.items():
            if modalities is not None and name not in modalities:
                continue
            if output_indices.get(name) is not None:
                count = output_indices[name].shape[-1]
            total = None if total is None or count is None else total + count
        return keras.KerasTensor((inputs.shape[0], total, self.output_channels), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "modalities": self.modalities,
                "min_padding_size": self.min_padding_size,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
