"""ONNX export of a model's numeric endpoint (tensors in, tensors out) with Keras' exporter (tf2onnx).

`keras.Model.export(path, format="onnx")` converts the model's `tf.function`
with tf2onnx. One TensorFlow op of our graphs has no tf2onnx handler: `Erfc`
(TensorFlow 2.21 computes the exact GELU as 0.5 x erfc(-x / sqrt 2)), so
`export_onnx` registers one that writes erfc(x) as 1 - Erf(x) (ONNX `Erf`,
opset 9 and later). String and tensorflow-text ops (the client signatures of
text models) do not convert: the exported endpoint is the model's own.

Source: keras `keras/src/export/onnx.py`; tf2onnx handler registration
(`tf2onnx.handler.tf_op`); ONNX operator `Erf`.
"""

import os

import keras
import numpy as np


def _register_erfc():
    """Teach tf2onnx `Erfc` once per process (its handler table is global)."""
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    @tf_op("Erfc")
    class Erfc:
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            erf = ctx.make_node("Erf", [node.input[0]])
            dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
            one = ctx.make_const(utils.make_name(node.name + "_one"), np.array(1, dtype=dtype))
            node.type = "Sub"
            ctx.replace_inputs(node, [one.output[0], erf.output[0]])


_REGISTERED = []


def export_onnx(model, path, input_signature=None):
    """Write `model`'s numeric endpoint to the ONNX file `path`; return `path`.

    Args:
        model: a built Keras model (TensorFlow backend).
        path: str, the `.onnx` file to write.
        input_signature: optional, as `keras.Model.export` (default: the
            model's inputs with a dynamic batch size).

    Returns:
        str, `path`. The file's outputs are the model's in `keras.tree.flatten`
        order (nested dict outputs, e.g. HiP's, become a list).

    Raises:
        ImportError: without tf2onnx and onnx (`pip install keras-perceiver[onnx]`).
    """
    try:
        import tf2onnx  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "ONNX export needs tf2onnx and onnx: pip install 'keras-perceiver[onnx]'"
        ) from error
    if not _REGISTERED:
        _register_erfc()
        _REGISTERED.append(True)
    path = os.fspath(path)
    if isinstance(model.output, dict):  # tf2onnx takes a list of outputs: flatten (HiP has nested dicts)
        model = keras.Model(model.input, keras.tree.flatten(model.output), name=model.name)
        model(model.input)  # Keras exports only models that have been called
    model.export(path, format="onnx", input_signature=input_signature, verbose=False)
    return path


def onnx_feed(session, inputs, fill_padding_masks=False):
    """The feed dict of an onnxruntime `session` from the model's inputs, matched by name.

    Keras names the ONNX input of a dict model's input `name` either `name`
    or `name_name`; each session input takes the array of the input it
    names.

    Args:
        session: an `onnxruntime.InferenceSession` of an `export_onnx` file.
        inputs: dict of the model's input name -> array (B, ...).
        fill_padding_masks: bool, feed all-True masks (B, ...) to session
            inputs named `*padding_mask` that `inputs` leaves out (optional
            masks a client omits). Defaults to False.

    Returns:
        dict session input name -> array.

    Raises:
        ValueError: for a session input that no key of `inputs` names.
    """
    feed = {}
    batch_size = len(next(iter(inputs.values()))) if inputs else 0
    for spec in session.get_inputs():
        name = next((key for key in inputs if spec.name in (key, f"{key}_{key}")), None)
        if name is None and fill_padding_masks and spec.name.endswith("padding_mask"):
            feed[spec.name] = np.ones((batch_size, *spec.shape[1:]), bool)
            continue
        if name is None:
            raise ValueError(
                f"ONNX input {spec.name!r} matches no model input. Expected one of {sorted(inputs)} (or "
                f"`<name>_<name>`). Received: {spec.name!r}"
            )
        feed[spec.name] = inputs[name]
    return feed
