"""Convert DeepMind's Haiku Perceiver IO parameters (the official release) to keras_perceiver models.

DeepMind released Perceiver IO as Haiku parameter pickles: a mapping of
module scopes to parameter arrays, e.g.
`params["perceiver_encoder/~/cross_attention/attention/linear"]["w"]`.
Haiku's `hk.Linear` stores `w` as (in, out), which is Keras' kernel layout,
so kernels are not transposed (transformers transposes them for torch).

The scope names follow transformers'
`convert_perceiver_haiku_to_pytorch.py` (the script that made the
transformers checkpoints from the same pickles):

- encoder: `perceiver_encoder/~/trainable_position_encoding` (`pos_embs`,
  the latents), `perceiver_encoder/~/cross_attention`,
  `perceiver_encoder/~/self_attention`, `..._1`, ... (one per self-attend of
  a block; blocks share them);
- in a cross-attention: `layer_norm` (queries), `layer_norm_1`
  (keys/values), `attention/linear`, `linear_1`, `linear_2`, `linear_3`
  (query, key, value, output), `layer_norm_2` and `mlp/linear`,
  `mlp/linear_1`; in a self-attention: `layer_norm`, `attention/...`,
  `layer_norm_1`, `mlp/...`; layer norms have `scale` and `offset`;
- language model: `embed` (`embeddings`), `trainable_position_encoding`
  (`pos_embs`, input positions), `basic_decoder/~/trainable_position_encoding`
  (`pos_embs`, decoder queries), `basic_decoder/cross_attention`,
  `embedding_decoder` (`bias`).

Pickles can execute arbitrary code when they are read. `from_deepmind`
refuses them unless `allow_pickle=True`, which is only for files from a
source you trust. A `.npz` archive of the same parameters (keys
`"scope/name"`) is read safely without it.
"""

import os
import pickle
import re
from collections.abc import Mapping

import numpy as np

from keras_perceiver.models.perceiver_masked_lm import PerceiverMaskedLM

SUPPORTED_ARCHITECTURES = ("language_perceiver",)

_ENCODER = "perceiver_encoder/~/"
_DECODER_CROSS_ATTENTION = "basic_decoder/cross_attention"
_SELF_ATTENTION = re.compile(r"^perceiver_encoder/~/self_attention(?:_(\d+))?/")


def _flatten(params, prefix=""):
    """{scope: {name: array}} (or deeper, or already flat) -> {"scope/name": array}."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def read_haiku_params(path, allow_pickle=False):
    """Read Haiku parameters as {"scope/name": float32 array}.

    Args:
        path: str, a pickle of the parameters (a mapping of scopes to
            mappings of arrays, optionally wrapped as `{"params": ...,
            "state": ...}`), or a `.npz` archive with `"scope/name"` keys.
        allow_pickle: bool, read a pickle. Pickles can execute arbitrary code
            when read: only for trusted files. Defaults to False.

    Returns:
        dict of parameter name -> float32 numpy array.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: for a pickle without `allow_pickle=True`, or a file that
            does not hold a mapping of arrays.
        ImportError: if the pickle refers to a module that is not installed
            (e.g. `haiku` for old `FlatMapping` pickles).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Expected a DeepMind Haiku parameter file. Received: path={path!r}")
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as archive:
            return {name: np.asarray(archive[name], np.float32) for name in archive.files}
    if not allow_pickle:
        raise ValueError(
            f"{path!r} is a pickle: reading it can execute arbitrary code hidden in the file. Pass "
            "allow_pickle=True only if you trust its source (e.g. DeepMind's own release), or convert it "
            "once to a .npz archive with 'scope/name' keys, which is read safely."
        )
    try:
        with open(path, "rb") as f:
            checkpoint = pickle.load(f)  # noqa: S301 - opt-in above, documented as unsafe
    except ModuleNotFoundError as error:
        raise ImportError(
            f"The pickle {path!r} refers to the module {error.name!r}, which is not installed (old Haiku "
            "pickles store `haiku` FlatMappings): install it, or re-save the parameters as nested dicts "
            "of numpy arrays."
        ) from error
    if isinstance(checkpoint, Mapping) and "params" in checkpoint:
        params = _flatten(checkpoint["params"])
        params.update(_flatten(checkpoint.get("state") or {}))
    elif isinstance(checkpoint, Mapping):
        params = _flatten(checkpoint)
    else:
        raise ValueError(
            f"{path!r} does not hold Haiku parameters: expected a mapping of module scopes to arrays. "
            f"Received: {type(checkpoint).__name__}"
        )
    try:
        return {name: np.asarray(value, np.float32) for name, value in params.items()}
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path!r}: a parameter is not a numeric array ({error})") from error


class _ParamReader:
    """Pops Haiku parameters by scope and name, so that unconverted ones can be reported."""

    def __init__(self, params):
        self.params = dict(params)

    def has(self, scope, name):
        return f"{scope}/{name}" in self.params

    def pop(self, scope, name):
        key = f"{scope}/{name}"
        if key not in self.params:
            raise ValueError(
                f"The Haiku parameters have no {key!r}: they do not match the architecture and "
                f"configuration being converted. Present, e.g.: {sorted(self.params)[:5]}"
            )
        return self.params.pop(key)

    def shape(self, scope, name):
        key = f"{scope}/{name}"
        if key not in self.params:
            raise ValueError(
                f"The Haiku parameters have no {key!r}, needed to infer the model's configuration"
            )
        return self.params[key].shape


def _assign(variable, value, key):
    if tuple(variable.shape) != tuple(value.shape):
        raise ValueError(
            f"Shape mismatch converting {key!r} to {variable.path}: expected {tuple(variable.shape)}, "
            f"received {tuple(value.shape)}"
        )
    variable.assign(value)


def _load_layer_norm(layer, reader, scope):
    _assign(layer.gamma, reader.pop(scope, "scale"), f"{scope}/scale")
    _assign(layer.beta, reader.pop(scope, "offset"), f"{scope}/offset")


def _load_linear(layer, reader, scope):
    _assign(layer.kernel, reader.pop(scope, "w"), f"{scope}/w")
    _assign(layer.bias, reader.pop(scope, "b"), f"{scope}/b")


def _load_attention(attention, reader, scope):
    """Haiku `linear` .. `linear_3` (w: (in, out)) -> per-head kernels (in, heads, head_dim)."""
    heads = attention.num_heads
    for ours, linear in (
        (attention.query_dense, "linear"),
        (attention.key_dense, "linear_1"),
        (attention.value_dense, "linear_2"),
    ):
        w, b = reader.pop(f"{scope}/{linear}", "w"), reader.pop(f"{scope}/{linear}", "b")
        _assign(ours.kernel, w.reshape(w.shape[0], heads, -1), f"{scope}/{linear}/w")
        _assign(ours.bias, b.reshape(heads, -1), f"{scope}/{linear}/b")
    w = reader.pop(f"{scope}/linear_3", "w")
    _assign(attention.output_dense.kernel, w.reshape(heads, -1, w.shape[1]), f"{scope}/linear_3/w")
    _assign(attention.output_dense.bias, reader.pop(f"{scope}/linear_3", "b"), f"{scope}/linear_3/b")


def _load_mlp(mlp, reader, norm_scope, scope):
    _load_layer_norm(mlp.layer_norm, reader, norm_scope)
    _load_linear(mlp.dense_1, reader, f"{scope}/mlp/linear")
    _load_linear(mlp.dense_2, reader, f"{scope}/mlp/linear_1")


def _load_cross_attention(block, reader, scope):
    _load_layer_norm(block.query_norm, reader, f"{scope}/layer_norm")
    _load_layer_norm(block.inputs_norm, reader, f"{scope}/layer_norm_1")
    _load_attention(block.attention, reader, f"{scope}/attention")
    _load_mlp(block.mlp, reader, f"{scope}/layer_norm_2", scope)


def _load_self_attention(block, reader, scope):
    _load_layer_norm(block.layer_norm, reader, f"{scope}/layer_norm")
    _load_attention(block.attention, reader, f"{scope}/attention")
    _load_mlp(block.mlp, reader, f"{scope}/layer_norm_1", scope)


def _self_attention_scope(index):
    return f"{_ENCODER}self_attention" + (f"_{index}" if index else "")


def _count_self_attends(params):
    indices = {int(m.group(1) or 0) for m in map(_SELF_ATTENTION.match, params) if m}
    if indices != set(range(len(indices))):
        raise ValueError(
            f"The Haiku self-attention scopes are not numbered 0..n-1. Received: {sorted(indices)}"
        )
    return len(indices)


def _shared_width(kind, cross, self_, cross_default, self_default):
    """The encoder's `qk_channels`/`v_channels` argument that gives these cross/self-attention widths."""
    if cross == self_:
        return cross
    if (cross, self_) == (cross_default, self_default):
        return None
    raise ValueError(
        f"The encoder's cross-attention ({cross}) and self-attention ({self_}) {kind} widths differ and are "
        f"not the defaults ({cross_default}, {self_default}): keras_perceiver sets one width for both."
    )


def _language_perceiver_config(reader):
    """The `PerceiverMaskedLM` arguments that the parameter shapes determine."""
    vocab_size, embedding_dim = reader.shape("embed", "embeddings")
    num_latents, latent_dim = reader.shape(f"{_ENCODER}trainable_position_encoding", "pos_embs")
    self_attention = _self_attention_scope(0)
    cross_mlp_width = reader.shape(f"{_ENCODER}cross_attention/mlp/linear", "w")[1]
    cross_qk = reader.shape(f"{_ENCODER}cross_attention/attention/linear", "w")[1]
    cross_v = reader.shape(f"{_ENCODER}cross_attention/attention/linear_2", "w")[1]
    self_qk = reader.shape(f"{self_attention}/attention/linear", "w")[1]
    self_v = reader.shape(f"{self_attention}/attention/linear_2", "w")[1]
    return {
        "vocab_size": vocab_size,
        "max_sequence_length": reader.shape("trainable_position_encoding", "pos_embs")[0],
        "embedding_dim": embedding_dim,
        "num_latents": num_latents,
        "latent_dim": latent_dim,
        "num_self_attends_per_block": _count_self_attends(reader.params),
        # One setting for the encoder's cross- and self-attention, as in DeepMind's PerceiverEncoder;
        # None when both use their defaults (cross: the input width, self: the latent width; v = qk).
        "qk_channels": _shared_width("qk", cross_qk, self_qk, embedding_dim, latent_dim),
        "v_channels": _shared_width("v", cross_v, self_v, cross_qk, self_qk),
        "cross_attention_widening_factor": cross_mlp_width // latent_dim,
        "self_attention_widening_factor": reader.shape(f"{self_attention}/mlp/linear", "w")[1] // latent_dim,
        "decoder_qk_channels": reader.shape(f"{_DECODER_CROSS_ATTENTION}/attention/linear", "w")[1],
        "decoder_v_channels": reader.shape(f"{_DECODER_CROSS_ATTENTION}/attention/linear_2", "w")[1],
        "decoder_widening_factor": (
            reader.shape(f"{_DECODER_CROSS_ATTENTION}/mlp/linear", "w")[1] // embedding_dim
        ),
    }


# What the shapes cannot tell: the published language perceiver's values (DeepMind's colab), overridable.
_LANGUAGE_PERCEIVER_DEFAULTS = {
    "num_blocks": 1,
    "num_cross_attention_heads": 8,
    "num_self_attention_heads": 8,
    "decoder_num_heads": 8,
    "activation": "gelu_approximate",  # jax.nn.gelu's default is the tanh approximation
}


def _build_language_perceiver(reader, dtype, overrides):
    config = {**_language_perceiver_config(reader), **_LANGUAGE_PERCEIVER_DEFAULTS, **overrides}
    model = PerceiverMaskedLM(dtype=dtype, **config)
    text = model.get_layer("text_preprocessor")
    _assign(text.token_embeddings, reader.pop("embed", "embeddings"), "embed/embeddings")
    _assign(
        text.position_embeddings,
        reader.pop("trainable_position_encoding", "pos_embs"),
        "trainable_position_encoding/pos_embs",
    )
    encoder = model.get_layer("encoder")
    _assign(
        encoder.latents,
        reader.pop(f"{_ENCODER}trainable_position_encoding", "pos_embs"),
        f"{_ENCODER}trainable_position_encoding/pos_embs",
    )
    _load_cross_attention(encoder.cross_attention, reader, f"{_ENCODER}cross_attention")
    for i, block in enumerate(model.get_layer("processor").self_attends):
        _load_self_attention(block, reader, _self_attention_scope(i))
    _assign(
        model.get_layer("decoder_queries").position_embeddings,
        reader.pop("basic_decoder/~/trainable_position_encoding", "pos_embs"),
        "basic_decoder/~/trainable_position_encoding/pos_embs",
    )
    _load_cross_attention(model.get_layer("decoder").cross_attention, reader, _DECODER_CROSS_ATTENTION)
    _assign(text.output_bias, reader.pop("embedding_decoder", "bias"), "embedding_decoder/bias")
    return model


_BUILDERS = {"language_perceiver": _build_language_perceiver}


def from_deepmind(path, architecture="language_perceiver", allow_pickle=False, dtype=None, **overrides):
    """Build a keras_perceiver model from DeepMind's Haiku Perceiver IO parameters.

    Architectures:
    - `"language_perceiver"` (DeepMind's `language_perceiver_io_bytes`
      masked LM on UTF-8 bytes) -> `PerceiverMaskedLM` taking
      `{"token_ids": (B, L), "padding_mask": (B, L)}` and returning
      (B, L, vocab_size) logits. DeepMind's byte ids are ours (PAD 0 ...
      byte + 6) and it adds no [CLS]/[SEP].

    The sizes (vocabulary, sequence length, widths, latents, number of
    self-attends, widening factors, qk/v channels) are read from the
    parameter shapes. What the shapes cannot tell defaults to the published
    model's values and can be overridden: `num_blocks=1`,
    `num_cross_attention_heads=8`, `num_self_attention_heads=8`,
    `decoder_num_heads=8`, `activation="gelu_approximate"` (DeepMind's
    tanh GELU).

    Security: DeepMind's files are Python pickles, which can execute
    arbitrary code when read. They are refused unless `allow_pickle=True`;
    set it only for files from a source you trust. A `.npz` archive with
    `"scope/name"` keys holds the same parameters and is read safely.

    Args:
        path: str, the Haiku parameter pickle (or `.npz`).
        architecture: str, one of `SUPPORTED_ARCHITECTURES`. Defaults to
            `"language_perceiver"`.
        allow_pickle: bool, read a pickle (unsafe for untrusted files).
            Defaults to False.
        dtype: dtype policy of the built model.
        **overrides: constructor arguments of the built model (e.g. heads).

    Returns:
        The model with the converted weights.

    Raises:
        FileNotFoundError: for a missing file.
        ValueError: for a pickle without `allow_pickle=True`, an unknown
            architecture, parameters missing or of the wrong shape, or
            parameters left unconverted.

    Example:
    >>> model = from_deepmind("language_perceiver_io_bytes.pickle", allow_pickle=True)  # doctest: +SKIP
    """
    if architecture not in _BUILDERS:
        raise ValueError(
            f"Unsupported DeepMind architecture {architecture!r}. "
            f"Expected one of {list(SUPPORTED_ARCHITECTURES)}"
        )
    reader = _ParamReader(read_haiku_params(path, allow_pickle=allow_pickle))
    model = _BUILDERS[architecture](reader, dtype, overrides)
    if reader.params:
        raise ValueError(
            f"{len(reader.params)} Haiku parameters were not converted (architecture {architecture!r} "
            f"does not use them): {sorted(reader.params)[:5]}"
        )
    return model
