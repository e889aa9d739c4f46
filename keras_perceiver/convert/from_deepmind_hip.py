"""Load DeepMind's Haiku parameters of the Hierarchical Perceiver (HiP) into the HiP models.

The official HiP code (github `google-deepmind/hierarchical_perceiver`,
`perceiver.py` `HiP`, built by `build_perceiver` under the module name
`perceiver`) names its parameters by Haiku module paths; `hk.Linear`
weights are (in, out), the layout of a Keras Dense kernel, and the attention
projections are Linear layers whose outputs split into heads head-major
(`h * head_dim + c`), so they map onto the [in, heads, head_dim] and
[heads, head_dim, out] kernels by a reshape. Every parameter maps to exactly
one Keras variable:

- `perceiver/embedder/~embed/embed_<m>/{w,b}` -> `embedder/embed_<m>`;
  `perceiver/embedder/~unembed/unembed_<m>/{w,b}` -> `unembedder/unembed_<m>`;
- `perceiver/position_encoder/pos_emb_mae_<m>/pos_embs` ->
  `position_encoder/positions_<m>`; `.../position_encoding_linear[_k]/w` ->
  `position_encoder/projection_<m>` of the k-th modality (the input dict's
  order; Haiku numbers the projections by position, not by name);
- `perceiver/block_<i>/~/hi_p_cross_attention/`: `query_inputs/pos_embs` ->
  the block's latents (G*N, D); `pre_attention_residual_linear` -> its
  `skip_projection`; `layer_norm`, `layer_norm_1`, `layer_norm_2` -> the
  query, input and MLP norms (`scale`/`offset` -> `gamma`/`beta`);
  `attention/{query,key,value,attention_output}_linear` -> the attention's
  `query`, `key`, `value`, `attention_output`; `dense/mlp_hidden_linear`,
  `dense/mlp_output_linear` -> `mlp/dense_1`, `mlp/dense_2`;
- `perceiver/block_<i>/~/self_attend_id_<j>/`: `layer_norm` (attention),
  `layer_norm_1` (MLP), `attention/...`, `dense/...` -> self-attention j;
- `perceiver/reconstruction_head/hi_p_cross_attention/...` -> the
  `reconstruction_head`'s cross-attention (it has no `query_inputs`).

The official `HiPClassBottleneck` template (`HiPClassBottleneck`, and a
`HiPBackbone` with `label_modalities`) names things differently:

- the blocks are `perceiver/perceiver_block_<i>/~/...`;
- the k-th label modality (k = 1, 2, ... in the input dict's order) has
  its own embedder and position encoder: `perceiver/embedder_<k>/~embed/
  embed_<m>`, `.../embedder_<k>/~unembed/unembed_<m>` and
  `perceiver/position_encoder_<k>/pos_emb_mae_<m>/pos_embs` ->
  `label_embedder/embed_<m>`, `label_unembedder/unembed_<m>`,
  `label_position_encoder/positions_<m>` (no projection); the other
  modalities keep `embedder`, `position_encoder` (numbered among them);
- the label head, created first, is `perceiver/reconstruction_head/...` ->
  `label_reconstruction_head`, and the final one
  `perceiver/reconstruction_head_1/...` -> `reconstruction_head`.

A `HiPClassifier` takes the same parameters as its `HiPClassBottleneck`
without the final head and the data modalities' un-embedding (ignored); the
decoder blocks are loaded into its backbone (which the classifier does not
use).

No checkpoints of HiP were published; the converter is tested on
parameters written by the official code (`tests/fixtures/hip`).
"""

import os
import re
from collections.abc import Mapping

import numpy as np

from keras_perceiver.convert.from_deepmind import _flatten, read_haiku_params

MODULE_NAME = "perceiver"


def _linear(scope, dense, use_bias=True):
    """Haiku Linear `scope/{w,b}` -> a Dense or EinsumDense layer's kernel and bias."""
    rules = {f"{scope}/w": dense.kernel}
    if use_bias:
        rules[f"{scope}/b"] = dense.bias
    return rules


def _layer_norm(scope, layer_norm):
    return {f"{scope}/scale": layer_norm.gamma, f"{scope}/offset": layer_norm.beta}


def _attention(scope, attention):
    rules = {}
    for haiku, layer in (
        ("query_linear", attention.query_dense),
        ("key_linear", attention.key_dense),
        ("value_linear", attention.value_dense),
        ("attention_output_linear", attention.output_dense),
    ):
        rules.update(_linear(f"{scope}/{haiku}", layer))
    return rules


def _mlp(scope, mlp):
    return {
        **_linear(f"{scope}/mlp_hidden_linear", mlp.dense_1),
        **_linear(f"{scope}/mlp_output_linear", mlp.dense_2),
    }


def _hip_cross_attention(scope, cross_attention):
    """A `CrossAttention` as the official `HiPCrossAttention` (its latents and skip apart)."""
    return {
        **_layer_norm(f"{scope}/layer_norm", cross_attention.query_norm),
        **_layer_norm(f"{scope}/layer_norm_1", cross_attention.inputs_norm),
        **_attention(f"{scope}/attention", cross_attention.attention),
        **_layer_norm(f"{scope}/layer_norm_2", cross_attention.mlp.layer_norm),
        **_mlp(f"{scope}/dense", cross_attention.mlp),
    }


def _self_attention(scope, self_attention):
    return {
        **_layer_norm(f"{scope}/layer_norm", self_attention.layer_norm),
        **_attention(f"{scope}/attention", self_attention.attention),
        **_layer_norm(f"{scope}/layer_norm_1", self_attention.mlp.layer_norm),
        **_mlp(f"{scope}/dense", self_attention.mlp),
    }


def _block(scope, block):
    encoder = block.encoder
    cross = f"{scope}/~/hi_p_cross_attention"
    rules = {f"{cross}/query_inputs/pos_embs": encoder.latents}
    if encoder.skip_projection is not None:
        rules.update(_linear(f"{cross}/pre_attention_residual_linear", encoder.skip_projection))
    rules.update(_hip_cross_attention(cross, encoder.cross_attention))
    if block.processor is not None:
        for j, layer in enumerate(block.processor.self_attends):
            rules.update(_self_attention(f"{scope}/~/self_attend_id_{j}", layer))
    return rules


def _unpack(model):
    """(backbone, head model or None) of a HiP model; a TypeError for anything else."""
    from keras_perceiver.models import HierarchicalPerceiver, HiPBackbone, HiPClassBottleneck, HiPClassifier

    if isinstance(model, (HierarchicalPerceiver, HiPClassBottleneck, HiPClassifier)):
        return model.backbone, model
    if isinstance(model, HiPBackbone):
        return model, None
    raise TypeError(
        "from_deepmind_hip: `model` must be a `HierarchicalPerceiver`, `HiPClassBottleneck`, "
        f"`HiPClassifier` or `HiPBackbone`. Received: {type(model).__name__}"
    )


def _label_scopes(backbone):
    """{label modality: its Haiku number k} (`embedder_<k>`, `position_encoder_<k>`), in input order."""
    labels = [m for m in backbone.input_shapes if m in backbone.label_modalities]
    return {m: k for k, m in enumerate(labels, start=1)}


def hip_parameter_names(model, module_name=MODULE_NAME):
    """The Haiku parameter names of a built HiP model, each with the Keras variable it loads.

    Args:
        model: a `HierarchicalPerceiver` or `HiPClassBottleneck` (official
            `HiP` / `HiPClassBottleneck`), a `HiPClassifier` (a class
            bottleneck without its final head and data un-embedding) or a
            `HiPBackbone` (without any reconstruction head or un-embedding).
        module_name: the Haiku name of the top module. Defaults to
            `"perceiver"` (official `build_perceiver`).

    Returns:
        dict of Haiku name -> `keras.Variable`, in the model's order.
    """
    backbone, head = _unpack(model)
    p = module_name
    rules = {}
    for modality, dense in backbone.embedder.embeddings.items():
        rules.update(_linear(f"{p}/embedder/~embed/embed_{modality}", dense))
    encoder = backbone.position_encoder
    for k, modality in enumerate(encoder.index_dims):
        rules[f"{p}/position_encoder/pos_emb_mae_{modality}/pos_embs"] = encoder.positions[
            modality
        ].position_embeddings
        if encoder.use_projection:
            suffix = "" if k == 0 else f"_{k}"
            rules[f"{p}/position_encoder/position_encoding_linear{suffix}/w"] = encoder.projections[
                modality
            ].kernel
    labels = _label_scopes(backbone)
    for modality, k in labels.items():
        rules.update(
            _linear(f"{p}/embedder_{k}/~embed/embed_{modality}", backbone.label_embedder.embeddings[modality])
        )
        rules[f"{p}/position_encoder_{k}/pos_emb_mae_{modality}/pos_embs"] = (
            backbone.label_position_encoder.positions[modality].position_embeddings
        )
    block_name = "perceiver_block" if labels else "block"
    for i, block in enumerate(backbone.hip_blocks):
        rules.update(_block(f"{p}/{block_name}_{i}", block))
    if head is None:
        return rules
    final_head = "reconstruction_head"
    if labels:
        final_head = "reconstruction_head_1"
        rules.update(
            _hip_cross_attention(
                f"{p}/reconstruction_head/hi_p_cross_attention",
                head.label_reconstruction_head.cross_attention,
            )
        )
        for modality, dense in head.label_unembedder.unembeddings.items():
            rules.update(_linear(f"{p}/embedder_{labels[modality]}/~unembed/unembed_{modality}", dense))
    if getattr(head, "reconstruction_head", None) is not None:
        rules.update(
            _hip_cross_attention(
                f"{p}/{final_head}/hi_p_cross_attention", head.reconstruction_head.cross_attention
            )
        )
        for modality, dense in head.unembedder.unembeddings.items():
            rules.update(_linear(f"{p}/embedder/~unembed/unembed_{modality}", dense))
    return rules


def _ignored(name, model, module_name):
    """Whether a parameter belongs to a head that `model` does not have (a backbone or a classifier)."""
    from keras_perceiver.models import HiPBackbone, HiPClassifier

    p = re.escape(module_name)
    if isinstance(model, HiPBackbone):  # every reconstruction head and un-embedding
        return re.match(rf"{p}/(reconstruction_head(_\d+)?/|embedder(_\d+)?/~unembed/)", name) is not None
    if isinstance(model, HiPClassifier):  # the final head and the data modalities' un-embedding
        return re.match(rf"{p}/(reconstruction_head_1/|embedder/~unembed/)", name) is not None
    return False


def _haiku_shape(variable):
    """The shape of the Haiku parameter that a Keras variable holds (attention kernels fused to 2-D)."""
    shape = tuple(variable.shape)
    name = variable.path.split("/")[-1]
    parent = variable.path.split("/")[-2] if "/" in variable.path else ""
    if parent in ("query", "key", "value") and name == "kernel":
        return (shape[0], int(np.prod(shape[1:])))
    if parent in ("query", "key", "value") and name == "bias":
        return (int(np.prod(shape)),)
    if parent == "attention_output" and name == "kernel":
        return (int(np.prod(shape[:-1])), shape[-1])
    return shape


def from_deepmind_hip(params, model, module_name=MODULE_NAME, allow_pickle=False):
    """Load the official HiP's Haiku parameters into a built HiP model (in place).

    Every parameter must map to one variable of the model and every trainable
    weight must receive one: the model's configuration has to be the
    checkpoint's (same modalities in the same order, groups, latents, widths,
    heads, `num_position_encoding_channels` switching the position
    projection on or off).

    The official `HiP` template loads into a `HierarchicalPerceiver`, the
    `HiPClassBottleneck` template into a `HiPClassBottleneck` (the same
    `label_modalities`) or a `HiPClassifier`.

    Args:
        params: a dict of Haiku name -> array (`"perceiver/block_0/~/
            hi_p_cross_attention/query_inputs/pos_embs"`, ...; Haiku's nested
            {module: {name: array}} and `{"params": ...}` forms work too), or
            the path of a `.npz` archive with those keys (or of a pickle,
            with `allow_pickle=True`).
        model: a built `HierarchicalPerceiver`, `HiPClassBottleneck`,
            `HiPClassifier` (which ignores the final head and the data
            un-embedding) or `HiPBackbone` (which ignores every
            reconstruction head and un-embedding).
        module_name: the Haiku name of the top module. Defaults to
            `"perceiver"`.
        allow_pickle: bool, read a pickle file: only for trusted files.
            Defaults to False.

    Returns:
        The model, with the parameters loaded.

    Raises:
        TypeError: for a model that is not a HiP model.
        ValueError: naming every missing, unexpected, mis-shaped (expected
            and received shapes) or non-numeric parameter, or for a file that
            is not a readable `.npz` archive (its size), or a pickle without
            `allow_pickle`.
        FileNotFoundError: for a path that does not exist.

    Example:
    >>> from keras_perceiver.convert import from_deepmind_hip
    >>> model = from_deepmind_hip("hip_params.npz", model)  # doctest: +SKIP
    """
    if isinstance(params, (str, os.PathLike)):
        params = read_haiku_params(params, allow_pickle=allow_pickle)
    elif isinstance(params, Mapping):
        params = _flatten(params["params"] if "params" in params else params)
    else:
        raise TypeError(
            "from_deepmind_hip: `params` must be a dict of Haiku name -> array or a file path. "
            f"Received: {type(params).__name__}"
        )
    rules = hip_parameter_names(model, module_name)
    params = {name: value for name, value in params.items() if not _ignored(name, model, module_name)}
    missing = [name for name in rules if name not in params]
    unexpected = sorted(name for name in params if name not in rules)
    problems = []
    if missing:
        problems.append(f"missing parameters {missing}")
    if unexpected:
        problems.append(f"unexpected parameters {unexpected}")
    values = {}
    for name, variable in rules.items():
        if name not in params:
            continue
        value = np.asarray(params[name])
        expected = _haiku_shape(variable)
        if value.dtype.kind not in "fiu":
            problems.append(f"{name}: expected a numeric array, received dtype {value.dtype}")
        elif tuple(value.shape) != expected:
            problems.append(f"{name}: expected shape {expected}, received {tuple(value.shape)}")
            continue
        values[name] = value.reshape(tuple(variable.shape))
    if problems:
        raise ValueError(
            "from_deepmind_hip: the parameters do not match the model (its configuration must be the "
            "checkpoint's): " + "; ".join(problems)
        )
    loaded = {id(variable) for variable in rules.values()}
    unloaded = [w.path for w in model.trainable_weights if id(w) not in loaded]
    if unloaded:  # a layer this converter does not know (a model changed after its release)
        raise ValueError(f"from_deepmind_hip: no Haiku parameter maps to the weights {unloaded}")
    for name, variable in rules.items():
        variable.assign(values[name].astype(variable.dtype))
    return model
