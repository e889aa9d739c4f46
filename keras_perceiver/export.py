"""Export Keras models to TensorFlow SavedModels with named serving signatures, and load them back.

TensorFlow-specific (DESIGN.md section 5.9): export goes through Keras' own
`keras.export.ExportArchive` (what `model.export(..., format="tf_saved_model")`
uses), never `tf.lite.TFLiteConverter.from_keras_model`.
"""

import keras
import tensorflow as tf

DEFAULT_ENDPOINT = "serve"
SERVING_DEFAULT = "serving_default"


def _is_optional_input(tensor):
    """True for a `keras.Input(..., optional=True)` tensor (e.g. `padding_mask`)."""
    operation = getattr(tensor, "_keras_history", (None,))[0]
    return bool(getattr(operation, "optional", False))


def _tensor_spec(tensor):
    return tf.TensorSpec(shape=tuple(tensor.shape), dtype=tensor.dtype, name=tensor.name)


def serving_input_signature(model, include_optional_inputs=False):
    """The named `tf.TensorSpec`s of a model's inputs, for a serving signature.

    Args:
        model: a built Functional or Sequential `keras.Model` (every
            `keras_perceiver` task model is one).
        include_optional_inputs: bool, also list inputs declared with
            `keras.Input(..., optional=True)` (e.g. `padding_mask`). Defaults
            to False: a serving signature cannot leave a tensor out, so the
            optional inputs are dropped and the model sees None for them.

    Returns:
        A dict name -> `tf.TensorSpec` (batch dimension None) for dict-input
        models, else a single `tf.TensorSpec` or a list of them, in the
        structure of `model.input`.

    Raises:
        ValueError: if the model has no symbolic inputs (a subclassed model:
            pass `input_signature` to `export_saved_model` instead), or if
            every input is optional.
    """
    try:
        structure = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
    except (AttributeError, ValueError, TypeError, IndexError) as error:
        raise ValueError(
            "serving_input_signature needs a Functional or Sequential model with symbolic inputs. "
            f"Received: model of type {type(model).__name__}; pass `input_signature` explicitly."
        ) from error
    if isinstance(structure, dict):
        specs = {
            name: _tensor_spec(tensor)
            for name, tensor in structure.items()
            if include_optional_inputs or not _is_optional_input(tensor)
        }
        if not specs:
            raise ValueError(
                "serving_input_signature: every input of the model is optional. "
                f"Received: inputs={sorted(structure)}; pass include_optional_inputs=True."
            )
        return specs
    if isinstance(structure, (list, tuple)):
        return [_tensor_spec(tensor) for tensor in structure]
    return _tensor_spec(structure)


def export_saved_model(
    model,
    path,
    input_signature=None,
    include_optional_inputs=False,
    output_name="outputs",
    verbose=False,
):
    """Write `model`'s inference pass (training=False) as a TensorFlow SavedModel.

    The artifact has two endpoints, both usable by TF Serving and with inputs
    named after the model's inputs (e.g. `inputs`):
    - `serve`: returns the model's outputs in the model's own structure
      (as `model.export(path, format="tf_saved_model")` does);
    - `serving_default` (the default signature): the same computation with
      outputs in a dict; a single output tensor is named `output_name`.

    Optional model inputs (e.g. `padding_mask`) are left out of the
    signatures unless `include_optional_inputs`; all dimensions that are
    None in the model (the batch) stay dynamic.

    Source: `keras.export.ExportArchive` (Keras 3); TF Serving signature
    conventions.

    Args:
        model: a built `keras.Model`.
        path: str or path-like, the output directory.
        input_signature: optional structure of `tf.TensorSpec` /
            `keras.InputSpec` matching the model's single call argument;
            None derives it with `serving_input_signature`.
        include_optional_inputs: bool, see `serving_input_signature`.
            Defaults to False.
        output_name: str, the signature output key of a single-tensor
            output. Defaults to `"outputs"`.
        verbose: bool, let Keras print the exported endpoints.

    Returns:
        The `keras.export.ExportArchive` that was written.

    Raises:
        ValueError: if the model is not built, or if no signature can be
            derived from it (see `serving_input_signature`).

    Example:
    >>> export_saved_model(model, "/tmp/saved_model", output_name="logits")  # doctest: +SKIP
    >>> serve = load_saved_model("/tmp/saved_model")  # doctest: +SKIP
    >>> serve({"inputs": images})["logits"].shape  # doctest: +SKIP
    """
    if not model.built:
        raise ValueError(
            f"export_saved_model: the model must be built before export. Received: model.built={model.built}"
        )
    if input_signature is None:
        input_signature = serving_input_signature(model, include_optional_inputs)

    def serve(inputs):
        return model(inputs, training=False)

    def serve_named(inputs):
        outputs = model(inputs, training=False)
        if isinstance(outputs, dict):
            return outputs
        if isinstance(outputs, (list, tuple)):
            return {f"{output_name}_{i}": output for i, output in enumerate(outputs)}
        return {output_name: outputs}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(DEFAULT_ENDPOINT, serve, input_signature=[input_signature])
    archive.add_endpoint(SERVING_DEFAULT, serve_named, input_signature=[input_signature])
    archive.write_out(str(path), verbose=verbose)
    return archive


def load_saved_model(path, endpoint=SERVING_DEFAULT):
    """Load a SavedModel written by `export_saved_model` as a callable.

    Args:
        path: str or path-like, the SavedModel directory.
        endpoint: str, `"serving_default"` (default; returns a dict of named
            outputs) or `"serve"` (returns the model's output structure).

    Returns:
        A function `f(inputs) -> outputs` that takes the model's input
        structure (e.g. `{"inputs": images}`; numpy arrays or tensors) and
        returns tensors. It keeps the loaded object alive; the object itself
        is `f.saved_model`, the input specs `f.input_signature`.

    Raises:
        ValueError: if `endpoint` is not one of the artifact's endpoints.
    """
    loaded = tf.saved_model.load(str(path))
    endpoints = set(loaded.signatures) | ({DEFAULT_ENDPOINT} if hasattr(loaded, DEFAULT_ENDPOINT) else set())
    if endpoint == SERVING_DEFAULT and SERVING_DEFAULT in loaded.signatures:
        signature = loaded.signatures[SERVING_DEFAULT]
        input_signature = signature.structured_input_signature[1]

        def call(inputs):
            if not isinstance(inputs, dict) and len(input_signature) == 1:
                inputs = {next(iter(input_signature)): inputs}
            return signature(**{name: tf.convert_to_tensor(value) for name, value in inputs.items()})

    elif endpoint != SERVING_DEFAULT and hasattr(loaded, endpoint):
        function = getattr(loaded, endpoint)
        input_signature = function.input_signature[0] if function.input_signature else None

        def call(inputs):
            return function(inputs)

    else:
        raise ValueError(
            f"load_saved_model: the SavedModel at {str(path)!r} has no endpoint {endpoint!r}. "
            f"Expected one of {sorted(endpoints)}. Received: endpoint={endpoint!r}"
        )
    call.saved_model = loaded
    call.input_signature = input_signature
    return call
