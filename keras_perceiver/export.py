"""Export Keras models to TensorFlow SavedModels with named serving signatures and to TFLite; load them back.

TensorFlow-specific (README, Architecture map: serving): export goes through Keras' own
`keras.export.ExportArchive` (what `model.export(..., format="tf_saved_model")`
uses); TFLite files are converted from the SavedModel
(`tf.lite.TFLiteConverter.from_saved_model`), never with
`TFLiteConverter.from_keras_model`.

Client signatures (`ClientInputs`) take what a client has - raw UTF-8
strings (tokenized inside the graph), uint8 images, float audio, pairs of
uint8 frames - and map it to the model's inputs inside the exported graph;
`classification_outputs` and friends name the outputs.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from keras_perceiver.json_files import read_json_object
from keras_perceiver.layers.attention_maps import record_attention_maps
from keras_perceiver.task_preprocessors import FramePairTaskPreprocessor, TextTaskPreprocessor

DEFAULT_ENDPOINT = "serve"
SERVING_DEFAULT = "serving_default"
ATTENTION_MAPS_ENDPOINT = "attention_maps"
METADATA_FILE = "metadata.json"
TFLITE_QUANTIZATIONS = ("float32", "float16", "dynamic_int8")


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
    client_inputs=None,
    outputs=None,
    metadata=None,
    attention_maps=False,
):
    """Write `model`'s inference pass (training=False) as a TensorFlow SavedModel.

    The artifact has two endpoints, both usable by TF Serving and with inputs
    named after the model's inputs (e.g. `inputs`):
    - `serve`: returns the model's outputs in the model's own structure
      (as `model.export(path, format="tf_saved_model")` does); nested dicts,
      which signatures cannot hold, become one dict with `"outer/inner"`
      keys (e.g. HiP's `"input_reconstruction/image"`);
    - `serving_default` (the default signature): the same computation with
      outputs in a dict; a single output tensor is named `output_name`.
      With `client_inputs`, it takes the client's raw inputs instead (e.g.
      `text` strings or `image` uint8) and maps them to the model's inputs
      inside the graph; with `outputs`, it returns `outputs(model_outputs)`
      (e.g. `classification_outputs()`: logits, probabilities, top-k).
    With `attention_maps`, a third signature, `attention_maps`, takes the
    inputs of `serving_default` and returns the attention probabilities
    averaged over heads (`record_attention_maps`): `encoder_attention`
    (B, N, M), the latents over the inputs, and `decoder_attention`
    (B, O, N), the output queries over the latents.

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
        client_inputs: optional `ClientInputs` (see `image_client_inputs`,
            `text_client_inputs`, `audio_client_inputs`,
            `flow_client_inputs`, `ClientInputs.from_preprocessor`): the
            inputs of `serving_default`. None: the model's task preprocessor
            (`model.preprocessor`) where it has one, else the model's inputs.
        outputs: optional callable, model outputs -> dict of named tensors
            (tf ops), the outputs of `serving_default`.
        metadata: optional JSON-serializable dict written to
            `path/metadata.json` (e.g. the task, the data set and the
            metrics that apply; `training.evaluate` reads it). The client
            inputs' description is added under `"client_inputs"`.
        attention_maps: bool, add the `attention_maps` signature. Defaults
            to False.

    Returns:
        The `keras.export.ExportArchive` that was written.

    Raises:
        ValueError: if the model is not built, or if no signature can be
            derived from it (see `serving_input_signature`).

    Example:
    >>> from keras_perceiver.export import export_saved_model, load_saved_model
    >>> export_saved_model(model, "/tmp/saved_model", output_name="logits")  # doctest: +SKIP
    >>> serve = load_saved_model("/tmp/saved_model")  # doctest: +SKIP
    >>> tuple(serve({"inputs": images})["logits"].shape)  # doctest: +SKIP
    """
    if not model.built:
        raise ValueError(
            f"export_saved_model: the model must be built before export. Received: model.built={model.built}"
        )
    if input_signature is None:
        input_signature = serving_input_signature(model, include_optional_inputs)
    if client_inputs is None and getattr(model, "preprocessor", None) is not None:
        client_inputs = ClientInputs.from_preprocessor(model.preprocessor)

    # The model in one function of the numeric endpoint's signature, which `serve_named` calls too where
    # its model inputs fit that signature: the SavedModel then holds the model's graph once, not once per
    # endpoint.
    run_model = tf.function(lambda inputs: model(inputs, training=False), input_signature=[input_signature])

    def call_model(inputs):
        fitted = _fit_to_signature(inputs, input_signature)
        return model(inputs, training=False) if fitted is None else run_model(fitted)

    def serve(inputs):
        return flatten_nested_outputs(run_model(inputs))

    if outputs is not None and not callable(outputs):
        raise TypeError(f"export_saved_model: `outputs` must be callable. Received: {outputs!r}")
    if client_inputs is not None and not isinstance(client_inputs, ClientInputs):
        raise TypeError(
            "export_saved_model: `client_inputs` must be a ClientInputs (e.g. image_client_inputs(...)). "
            f"Received: {type(client_inputs).__name__}"
        )

    def serve_named(inputs):
        raw = inputs
        if client_inputs is not None:
            inputs = client_inputs.to_model_inputs(inputs)
        results = call_model(inputs)
        if outputs is not None:
            return dict(outputs(results))
        if client_inputs is not None and client_inputs.to_client_outputs is not None:
            return dict(client_inputs.to_client_outputs(raw, results))
        if isinstance(results, dict):
            return flatten_nested_outputs(results)
        if isinstance(results, (list, tuple)):
            return {f"{output_name}_{i}": output for i, output in enumerate(results)}
        return {output_name: results}

    def serve_attention_maps(inputs):
        if client_inputs is not None:
            inputs = client_inputs.to_model_inputs(inputs)
        with record_attention_maps() as maps:
            model(inputs, training=False)
        cross = maps.cross_attentions()
        return {
            "encoder_attention": tf.reduce_mean(cross[0], axis=1),
            "decoder_attention": tf.reduce_mean(cross[-1], axis=1),
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    _track_backing_variables(archive)
    archive.add_endpoint(DEFAULT_ENDPOINT, serve, input_signature=[input_signature])
    client_signature = input_signature if client_inputs is None else client_inputs.input_signature
    archive.add_endpoint(SERVING_DEFAULT, serve_named, input_signature=[client_signature])
    if attention_maps:
        archive.add_endpoint(
            ATTENTION_MAPS_ENDPOINT, serve_attention_maps, input_signature=[client_signature]
        )
    archive.write_out(str(path), verbose=verbose)
    if metadata is not None or client_inputs is not None:
        metadata = dict(metadata or {})
        if client_inputs is not None:
            metadata["client_inputs"] = client_inputs.description
        with open(os.path.join(str(path), METADATA_FILE), "w") as f:
            json.dump(metadata, f, indent=2, default=str)
    return archive


def _fit_to_signature(inputs, signature):
    """`inputs` (a structure of tensors) cast to `signature`'s dtypes, or None where they do not fit it:
    another structure, an incompatible shape, or another kind of dtype (`_dtype_kind`, as `check_request`)."""
    try:
        tf.nest.assert_same_structure(inputs, signature)
    except (ValueError, TypeError):
        return None
    fitted = []
    for value, spec in zip(tf.nest.flatten(inputs), tf.nest.flatten(signature)):
        value = tf.convert_to_tensor(value)
        if not spec.shape.is_compatible_with(value.shape):
            return None
        if _dtype_kind(value.dtype) != _dtype_kind(spec.dtype):
            return None
        fitted.append(value if value.dtype == spec.dtype else tf.cast(value, spec.dtype))
    return tf.nest.pack_sequence_as(signature, fitted)


def _track_backing_variables(archive):
    """Track the `tf.Variable`s behind the model's `keras.Variable`s, so that each weight is stored once.

    `ExportArchive.track` lists the `keras.Variable` wrappers, and the
    endpoints capture the `tf.Variable`s they wrap: two trackables per
    weight, which the SavedModel checkpoint wrote twice (twice the size on
    disk and twice the variable memory in TF Serving). Keras issue #23553
    (open for Keras 3.15); the fix proposed there (keras PR #23563) unwraps
    the same way.
    """
    trackable = archive._tf_trackable
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        backing = [getattr(variable, "_value", None) for variable in getattr(trackable, name)]
        if backing and all(isinstance(value, tf.Variable) for value in backing):  # the TensorFlow backend
            setattr(trackable, name, backing)


def flatten_nested_outputs(outputs):
    """A dict of dicts of tensors -> one dict with `"outer/inner"` keys (other structures unchanged).

    SavedModel signatures take a tensor, a sequence of tensors or a flat
    dict of tensors.
    """
    if not isinstance(outputs, dict) or not any(isinstance(v, dict) for v in outputs.values()):
        return outputs
    flat = {}
    for key, value in outputs.items():
        if isinstance(value, dict):
            for inner, tensor in flatten_nested_outputs(value).items():
                flat[f"{key}/{inner}"] = tensor
        else:
            flat[key] = value
    return flat


def read_metadata(path):
    """The `metadata.json` dict written by `export_saved_model` (an empty dict if there is none).

    Raises:
        ValueError: if the file is not a JSON object (`read_json_object`).
    """
    file = os.path.join(str(path), METADATA_FILE)
    if not os.path.isfile(file):
        return {}
    return read_json_object(file, "the metadata written by export_saved_model")


def check_request(input_signature, inputs):
    """The request `inputs` as tensors of the signature's dtypes, or a named error before the call.

    Args:
        input_signature: dict name -> `tf.TensorSpec`, the endpoint's inputs.
        inputs: dict name -> array, list or tensor; for a signature of one
            input, the value alone.

    Returns:
        dict name -> tensor. NumPy values of the same kind (float, signed or
        unsigned integer, bool, string) are cast to the signature's dtype.

    Raises:
        ValueError: for a request that is not a dict, unknown or missing
            inputs, a wrong rank or static dimension, or integers outside
            the signature's dtype (e.g. 300 for `uint8`).
        TypeError: for a value whose kind of dtype differs from the
            signature's (e.g. floats for `uint8` images, numbers for text).
    """
    if not isinstance(inputs, dict) and len(input_signature) == 1:
        inputs = {next(iter(input_signature)): inputs}  # a lone value for a signature of one input
    if not isinstance(inputs, dict):
        raise ValueError(
            f"The request must be a dict of {sorted(input_signature)}. Received: {type(inputs).__name__}"
        )
    unknown = sorted(set(inputs) - set(input_signature))
    missing = sorted(set(input_signature) - set(inputs))
    if unknown or missing:
        raise ValueError(
            f"The request must hold the inputs {sorted(input_signature)}. Received: {sorted(inputs)} "
            f"(unknown {unknown}, missing {missing})"
        )
    tensors = {}
    for name, spec in input_signature.items():
        value = inputs[name]
        tensor = value if tf.is_tensor(value) else tf.convert_to_tensor(np.asarray(value))
        if _dtype_kind(tensor.dtype) != _dtype_kind(spec.dtype):
            raise TypeError(
                f"Request input `{name}` must be {spec.dtype.name}. Received: dtype={tensor.dtype.name}"
            )
        if tensor.dtype != spec.dtype and _dtype_kind(spec.dtype) == "integer" and tf.size(tensor) > 0:
            low, high = int(tf.reduce_min(tensor)), int(tf.reduce_max(tensor))
            if low < spec.dtype.min or high > spec.dtype.max:
                raise ValueError(
                    f"Request input `{name}` must fit {spec.dtype.name} "
                    f"[{spec.dtype.min}, {spec.dtype.max}]. Received: min={low}, max={high}"
                )
        if tensor.dtype != spec.dtype:
            tensor = tf.cast(tensor, spec.dtype)
        if not spec.shape.is_compatible_with(tensor.shape):
            raise ValueError(
                f"Request input `{name}` must have shape {tuple(spec.shape)} (None: any size). "
                f"Received: {name}.shape={tuple(tensor.shape)}"
            )
        tensors[name] = tensor
    return tensors


def _dtype_kind(dtype):
    dtype = tf.as_dtype(dtype)
    if dtype == tf.string:
        return "string"
    if dtype == tf.bool:
        return "bool"
    if dtype.is_floating:
        return "float"
    return "integer"


def load_saved_model(path, endpoint=SERVING_DEFAULT):
    """Load a SavedModel written by `export_saved_model` as a callable.

    Args:
        path: str or path-like, the SavedModel directory.
        endpoint: str, `"serving_default"` (default; returns a dict of named
            outputs), `"serve"` (returns the model's output structure) or
            another signature of the artifact (e.g. `"attention_maps"`).

    Returns:
        A function `f(inputs) -> outputs` that takes the model's input
        structure (e.g. `{"inputs": images}`; numpy arrays or tensors) and
        returns tensors. It keeps the loaded object alive; the object itself
        is `f.saved_model`, the input specs `f.input_signature`.

    Raises:
        ValueError: if `endpoint` is not one of the artifact's endpoints.
    """
    # Exports with SentencePiece tokenization hold tensorflow-text ops, which a process must register
    # before it loads them (TF Serving links them in the same way).
    import tensorflow_text  # noqa: F401

    loaded = tf.saved_model.load(str(path))
    endpoints = set(loaded.signatures) | ({DEFAULT_ENDPOINT} if hasattr(loaded, DEFAULT_ENDPOINT) else set())
    if endpoint != DEFAULT_ENDPOINT and endpoint in loaded.signatures:
        signature = loaded.signatures[endpoint]
        input_signature = signature.structured_input_signature[1]

        def call(inputs):
            return signature(**check_request(input_signature, inputs))

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


# ---------------------------------------------------------------------------------------------- client inputs


class ClientInputs:
    """The raw inputs a client sends and how they become the model's inputs inside the serving graph.

    Args:
        input_signature: dict name -> `tf.TensorSpec`, the client's inputs
            (batch dimension None).
        to_model_inputs: callable, dict of client tensors -> the model's
            input structure (TensorFlow ops only: it is traced into the
            SavedModel).
        description: JSON-serializable dict describing the inputs (written
            to the export's metadata).
        to_client_outputs: optional callable, (client tensors, model
            outputs) -> dict of named tensors (TensorFlow ops): the outputs
            of `serving_default` when they need the raw inputs too (e.g.
            `ByteTaggingTaskPreprocessor.client_outputs`: words and tags of
            the texts from the logits of their windows). Defaults to None.

    Example:
    >>> import tensorflow as tf
    >>> from keras_perceiver.export import image_client_inputs, export_saved_model
    >>> client = image_client_inputs(model, normalize=lambda x: tf.cast(x, "float32") / 255)  # doctest: +SKIP
    >>> export_saved_model(model, path, client_inputs=client)  # doctest: +SKIP
    """

    @classmethod
    def from_preprocessor(cls, preprocessor):
        """The client signature of a `TaskPreprocessor`: its raw inputs and its conversion, the same
        preprocessing that the task model's `fit` and `predict` run (`keras_perceiver.task_preprocessors`)."""
        description = {"kind": type(preprocessor).__name__, "preprocessor_config": preprocessor.get_config()}
        return cls(
            dict(preprocessor.input_signature),
            preprocessor.convert,
            description,
            to_client_outputs=getattr(preprocessor, "client_outputs", None),
        )

    def __init__(self, input_signature, to_model_inputs, description=None, to_client_outputs=None):
        if not isinstance(input_signature, dict) or not all(
            isinstance(spec, tf.TensorSpec) for spec in input_signature.values()
        ):
            raise TypeError(
                f"ClientInputs: input_signature must be a dict of tf.TensorSpec. "
                f"Received: {input_signature!r}"
            )
        self.input_signature = input_signature
        self.to_model_inputs = to_model_inputs
        self.to_client_outputs = to_client_outputs
        self.description = dict(description or {})
        self.description.setdefault(
            "inputs",
            {
                name: {"dtype": spec.dtype.name, "shape": list(spec.shape)}
                for name, spec in input_signature.items()
            },
        )


def _model_input(model, input_name):
    """The symbolic input `input_name` of a Functional model (dict inputs) or its only input."""
    structure = model.input
    if isinstance(structure, dict):
        if input_name not in structure:
            raise ValueError(
                f"The model has no input {input_name!r}. Expected one of {sorted(structure)}. "
                f"Received: input_name={input_name!r}"
            )
        return structure[input_name], True
    return structure, False


def _wrap(model, input_name, value):
    return {input_name: value} if isinstance(model.input, dict) else value


def image_client_inputs(model, input_name="inputs", normalize=None, image_key="image", dtype="uint8"):
    """Client signature of image models: `image_key` uint8 (B, H, W, C) -> `normalize` -> the model input.

    Args:
        model: a Functional model with an image input of shape (H, W, C).
        input_name: str, the model's input. Defaults to `"inputs"`
            (`PerceiverIO`; `"images"` for `PerceiverImageClassifier`).
        normalize: callable, uint8 image tensor -> float32 model input
            (tf ops); None: `x / 255`.
        image_key: str, the client's input name. Defaults to `"image"` (the
            data readers' feature name).
        dtype: str, the client's pixel dtype. Defaults to `"uint8"`.

    Returns:
        A `ClientInputs`.
    """
    tensor, _ = _model_input(model, input_name)
    spec = tf.TensorSpec((None, *tensor.shape[1:]), tf.as_dtype(dtype), name=image_key)

    def to_model_inputs(inputs):
        image = inputs[image_key]
        value = normalize(image) if normalize is not None else tf.cast(image, tf.float32) / 255.0
        return _wrap(model, input_name, value)

    return ClientInputs({image_key: spec}, to_model_inputs, {"kind": "image", "model_input": input_name})


def text_client_inputs(
    tokenizer, text_key="text", token_ids_name="token_ids", padding_mask_name="padding_mask"
):
    """Client signature of text models: `text_key` raw UTF-8 strings (B,), tokenized inside the graph.

    Args:
        tokenizer: a layer mapping strings (B,) to a dict with `"token_ids"`
            and `"padding_mask"` (e.g. `ByteTokenizer(sequence_length=L)`;
            a fixed `sequence_length` matches models with fixed positions).
        text_key: str, the client's input name. Defaults to `"text"`.
        token_ids_name, padding_mask_name: str, the model's input names;
            `padding_mask_name=None` drops the mask.

    Returns:
        A `ClientInputs`.
    """
    preprocessor = TextTaskPreprocessor(tokenizer, token_ids_name, padding_mask_name, text_key)
    description = {"kind": "text", "tokenizer": type(tokenizer).__name__}
    if hasattr(tokenizer, "get_config"):
        description["tokenizer_config"] = {
            key: value
            for key, value in tokenizer.get_config().items()
            if key not in ("dtype", "name", "trainable")
        }
    return ClientInputs(preprocessor.input_signature, preprocessor.convert, description)


def audio_client_inputs(model, input_name="audio", audio_key="audio"):
    """Client signature of audio models: `audio_key` float32 samples (B, S) in [-1, 1], passed through.

    Args:
        model: a Functional model with an audio input of shape (S,) or (S, 1).
        input_name: str, the model's input. Defaults to `"audio"`.
        audio_key: str, the client's input name. Defaults to `"audio"`.

    Returns:
        A `ClientInputs`.
    """
    tensor, _ = _model_input(model, input_name)
    num_samples = tensor.shape[1]
    spec = tf.TensorSpec((None, num_samples), tf.float32, name=audio_key)

    def to_model_inputs(inputs):
        audio = inputs[audio_key]
        if len(tensor.shape) == 3:
            audio = audio[..., None]
        return _wrap(model, input_name, audio)

    return ClientInputs({audio_key: spec}, to_model_inputs, {"kind": "audio", "model_input": input_name})


def flow_client_inputs(model, input_name="frames", frame_keys=("frame0", "frame1")):
    """Client signature of flow models: two uint8 frames (B, H, W, 3) -> frames (B, 2, H, W, 3) in [-1, 1].

    The flow is computed from the first frame to the second (the model's
    output (B, H, W, 2) is (u, v) in pixels).

    Args:
        model: a Functional model with an input of shape (2, H, W, 3)
            (`PerceiverOpticalFlow`).
        input_name: str, the model's input. Defaults to `"frames"`.
        frame_keys: two str, the client's input names. Defaults to
            `("frame0", "frame1")`.

    Returns:
        A `ClientInputs`.
    """
    tensor, _ = _model_input(model, input_name)
    if len(tensor.shape) != 5 or tensor.shape[1] != 2:
        raise ValueError(
            "flow_client_inputs: expected a model input of shape (B, 2, H, W, C). "
            f"Received: {tuple(tensor.shape)}"
        )
    specs = {key: tf.TensorSpec((None, *tensor.shape[2:]), tf.uint8, name=key) for key in frame_keys}
    preprocessor = FramePairTaskPreprocessor(input_name, frame_keys)

    def to_model_inputs(inputs):
        return _wrap(model, input_name, preprocessor.convert(inputs)[input_name])

    return ClientInputs(specs, to_model_inputs, {"kind": "flow", "model_input": input_name})


def classification_outputs(top_k=5, logits_name="logits", class_names=None):
    """Named outputs of classifiers: logits, softmax probabilities, the top-k class ids and probabilities.

    Args:
        top_k: int, k (clipped to the number of classes). Defaults to 5.
        logits_name: str, the name of the raw output. Defaults to `"logits"`.
        class_names: optional K strings (a data set's names or a
            classifier's `id2label`): adds `"top_k_class_names"` (B, k).

    Returns:
        A callable (B, K) logits -> {"logits", "probabilities" (B, K),
        "top_k_class_ids" int32 (B, k), "top_k_probabilities" (B, k)[,
        "top_k_class_names" string (B, k)]}, for
        `export_saved_model(outputs=...)`.
    """

    def outputs(logits):
        logits = tf.cast(logits, tf.float32)
        probabilities = tf.nn.softmax(logits, axis=-1)
        k = min(int(top_k), int(logits.shape[-1]))
        top = tf.math.top_k(probabilities, k=k)
        return {
            logits_name: logits,
            "probabilities": probabilities,
            "top_k_class_ids": top.indices,
            "top_k_probabilities": top.values,
            **({"top_k_class_names": tf.gather(names, top.indices)} if names is not None else {}),
        }

    names = tf.constant([str(name) for name in class_names]) if class_names is not None else None
    return outputs


# ---------------------------------------------------------------------------------------------------- TFLite


def export_tflite(
    saved_model_dir, path, quantization="float32", signature_keys=(SERVING_DEFAULT,), select_tf_ops=False
):
    """Convert a SavedModel (e.g. from `export_saved_model`) to a TFLite flatbuffer file.

    Conversion leaks memory in the converting process (TensorFlow issue):
    convert in a separate process when converting many models
    (`python -m training.export` does one export per process).

    Args:
        saved_model_dir: str or path-like.
        path: str or path-like, the `.tflite` file to write.
        quantization: one of `TFLITE_QUANTIZATIONS`: `"float32"` (no
            quantization), `"float16"` (weights stored as float16, computed
            in float32), `"dynamic_int8"` (dynamic-range: int8 weights,
            activations quantized on the fly). Defaults to `"float32"`.
        signature_keys: sequence of str, the signatures to convert.
            Defaults to `("serving_default",)`.
        select_tf_ops: bool, allow TensorFlow ops that TFLite has no
            builtin for (e.g. the string ops of in-graph tokenization); the
            file then needs an interpreter with the Flex delegate. The
            `tensorflow` pip package's `tf.lite.Interpreter` has it up to
            TensorFlow 2.19 and not from 2.20 on (nor does `ai-edge-litert`),
            so on the default stack such a file converts but `load_tflite`
            raises `FlexDelegateError`. Defaults to False.

    Returns:
        int, the file size in bytes.

    Raises:
        ValueError: for an unknown quantization, or for TensorFlow ops
            without a TFLite builtin when `select_tf_ops` is False.
    """
    if quantization not in TFLITE_QUANTIZATIONS:
        raise ValueError(
            f"export_tflite: unknown quantization. Expected one of {TFLITE_QUANTIZATIONS}. "
            f"Received: quantization={quantization!r}"
        )
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=list(signature_keys)
    )
    if quantization in ("float16", "dynamic_int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if select_tf_ops:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    try:
        flatbuffer = converter.convert()
    except Exception as error:  # the converter raises its own ConverterError with MLIR diagnostics
        if not select_tf_ops and "neither a custom op nor a flex op" in str(error):
            raise ValueError(
                "export_tflite: the SavedModel uses TensorFlow ops that TFLite has no builtin for (e.g. the "
                "string ops of in-graph tokenization). Pass select_tf_ops=True (the file then needs the Flex "
                "delegate), or convert the `serve` signature. "
                f"Received: select_tf_ops=False ({saved_model_dir})"
            ) from error
        raise
    with open(str(path), "wb") as f:
        f.write(flatbuffer)
    return len(flatbuffer)


class FlexDelegateError(RuntimeError):
    """A TFLite file uses TensorFlow (Flex) ops that this Python interpreter cannot run.

    Raised by `load_tflite`, before any input is fed. The `tensorflow` pip
    package links the Flex delegate into `tf.lite.Interpreter` up to
    TensorFlow 2.19 only; the TensorFlow 2.17 environment of the `tfio`
    extra runs such files.
    """


def load_tflite(path, signature_key=SERVING_DEFAULT, num_threads=None):
    """A TFLite file's signature as a callable: dict of numpy arrays -> dict of numpy arrays.

    Inputs of any batch size are accepted (the interpreter resizes its
    input tensors to them).

    Args:
        path: str or path-like, a `.tflite` file.
        signature_key: str. Defaults to `"serving_default"`.
        num_threads: optional int, interpreter threads.

    Returns:
        A function `f(inputs: dict) -> dict`; `f.interpreter` is the
        `tf.lite.Interpreter`, `f.input_details` the signature's inputs.

    The function checks each request like the SavedModel's endpoints
    (`check_request`: names, dtypes, ranks, static dimensions) before the
    interpreter runs.

    Raises:
        FileNotFoundError: if `path` is not a file.
        ValueError: if the file has no such signature; from the function,
            for a request of batch size 0 (or one `check_request` refuses).
        FlexDelegateError: if the file needs the Flex delegate (TensorFlow
            ops, from `export_tflite(..., select_tf_ops=True)`) and this
            TensorFlow's interpreter has none (TensorFlow >= 2.20).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_tflite: no TFLite file. Expected a file at {str(path)!r}")
    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=num_threads)
    signatures = interpreter.get_signature_list()
    if signature_key not in signatures:
        raise ValueError(
            f"load_tflite: {str(path)!r} has no signature {signature_key!r}. Expected one of "
            f"{sorted(signatures)}. Received: signature_key={signature_key!r}"
        )
    try:
        interpreter.allocate_tensors()  # prepares every node: a missing Flex delegate shows here
    except RuntimeError as error:
        if "Flex delegate" not in str(error):
            raise
        raise FlexDelegateError(
            f"load_tflite: {str(path)!r} uses TensorFlow (Flex) ops, and the interpreter of TensorFlow "
            f"{tf.__version__} has no Flex delegate (the pip package links it up to TensorFlow 2.19). Run it "
            "where the Flex delegate is linked (e.g. the TensorFlow 2.17 environment of the `tfio` extra, or "
            f"an app with org.tensorflow:tensorflow-lite-select-tf-ops). Interpreter: {error}"
        ) from error
    runner = interpreter.get_signature_runner(signature_key)
    input_signature = {
        name: tf.TensorSpec([None if d < 0 else int(d) for d in detail["shape_signature"]], detail["dtype"])
        for name, detail in runner.get_input_details().items()
    }

    def call(inputs):
        tensors = check_request(input_signature, inputs)  # named errors before the interpreter sees them
        empty = {name: tuple(t.shape) for name, t in tensors.items() if t.shape.rank and t.shape[0] == 0}
        if empty:  # the interpreter cannot allocate a tensor of size 0
            raise ValueError(
                f"load_tflite: the request holds no examples. Expected a batch size >= 1. Received: {empty}"
            )
        return runner(**{name: tensor.numpy() for name, tensor in tensors.items()})

    call.interpreter = interpreter
    call.input_details = runner.get_input_details()
    return call
