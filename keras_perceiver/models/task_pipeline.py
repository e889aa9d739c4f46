"""Raw-input fit, predict, evaluate of task models with a task preprocessor (as keras-hub PipelineModel)."""

import keras

# Keyword arguments of every task model's constructor that go to `keras.Model` or to the mixins, not to the
# head (name, trainable; the task preprocessor; a classifier's class names).
MODEL_KEYWORDS = ("name", "trainable", "preprocessor", "id2label")


def _is_model_input_dict(model, x):
    """True for a dict keyed by the model's own input names (already preprocessed)."""
    return isinstance(x, dict) and bool(x) and set(x) <= {tensor.name for tensor in model.inputs}


def _is_preprocessed(model, x):
    """True for model inputs: a dict of them, a dataset of them, or a distributed dataset (tf.distribute)."""
    if _is_model_input_dict(model, x):
        return True
    spec = getattr(x, "element_spec", None)
    if spec is None:
        return False
    if not isinstance(spec, (dict, tuple)):  # e.g. a tf.distribute dataset: built from model inputs
        # By module rather than isinstance: the modelling code imports no TensorFlow (JAX/PyTorch backends).
        return type(x).__module__.startswith("tensorflow.python.distribute")
    features = spec[0] if isinstance(spec, tuple) else spec
    return _is_model_input_dict(model, features)


class TaskPipelineMixin:
    """`model.preprocessor`: a `TaskPreprocessor` that `fit`, `predict` and `evaluate` run on raw data.

    With a preprocessor, raw inputs (lists of strings, uint8 images of any
    size, frame pairs, audio; arrays or a `tf.data.Dataset`) are mapped by it
    in `tf.data` before the model sees them, as keras-hub's tasks do;
    `validation_data` too. A dict keyed by the model's own input names skips
    the preprocessor (already preprocessed), and `model.preprocessor = None`
    turns it off. `model(x)` itself always takes the model's inputs.
    The preprocessor is part of the config (`"preprocessor"`), so it travels
    with `save`, `save_to_preset` and `from_preset`.

    Source: keras-hub `Task` / `PipelineModel` (`keras_hub/src/utils/pipeline_model.py`).
    """

    def __init__(self, *args, preprocessor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.preprocessor = preprocessor

    def _raw_dataset(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False):
        """`x` preprocessed as a dataset, or None when `x` goes to the model as it is."""
        if self.preprocessor is None or x is None or _is_preprocessed(self, x):
            return None
        return self.preprocessor.dataset(x, y, sample_weight, batch_size, shuffle=shuffle)

    def _retrace_for_new_sizes(self, data, functions=("predict_function",)):
        """Models with free input axes (images of any size): new step functions for new sizes.

        Keras traces `predict`, `evaluate` and `fit` steps with
        `reduce_retracing`, which would relax the sizes to None on the
        second size; the positions need them known. `functions` names the
        model attributes to reset when the sizes differ from their last ones.
        """
        free_axes = getattr(self, "free_input_axes", None)
        if not free_axes:
            return
        if hasattr(data, "element_spec"):
            spec = data.element_spec[0] if isinstance(data.element_spec, tuple) else data.element_spec
        else:
            spec = self.named_inputs(data)
        if not isinstance(spec, dict):
            return
        sizes = tuple(
            (name, tuple(getattr(spec[name], "shape", ())[axis] for axis in axes))
            for name, axes in sorted(free_axes.items())
            if name in spec and len(getattr(spec[name], "shape", ())) > max(axes)
        )
        traced = self.__dict__.setdefault("_traced_sizes", {})
        for function in functions:
            if traced.get(function, sizes) != sizes:
                setattr(self, function, None)
            traced[function] = sizes

    def predict(self, x, batch_size=None, **kwargs):
        data = self._raw_dataset(x, batch_size=batch_size)
        self._retrace_for_new_sizes(x if data is None else data)
        if data is None:
            return super().predict(x, batch_size=batch_size, **kwargs)
        return super().predict(data, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        data = self._raw_dataset(x, y, sample_weight, batch_size)
        self._retrace_for_new_sizes(x if data is None else data, ("test_function",))
        if data is None:
            return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)
        return super().evaluate(data, **kwargs)

    def fit(self, x=None, y=None, batch_size=None, sample_weight=None, validation_data=None, **kwargs):
        if validation_data is not None:
            pair = validation_data if isinstance(validation_data, tuple) else (validation_data,)
            raw = self._raw_dataset(*pair)
            validation_data = validation_data if raw is None else raw
        shuffle = kwargs.pop("shuffle", True)
        data = self._raw_dataset(x, y, sample_weight, batch_size, shuffle=shuffle)
        self._retrace_for_new_sizes(x if data is None else data, ("train_function", "test_function"))
        if data is None:
            return super().fit(
                x,
                y,
                batch_size=batch_size,
                sample_weight=sample_weight,
                validation_data=validation_data,
                shuffle=shuffle,
                **kwargs,
            )
        return super().fit(data, validation_data=validation_data, shuffle=False, **kwargs)

    def _preprocessor_config(self, config):
        if self.preprocessor is not None:
            config["preprocessor"] = keras.saving.serialize_keras_object(self.preprocessor)
        return config

    @staticmethod
    def _pop_preprocessor(config):
        """(config without `"preprocessor"`, the deserialized task preprocessor or None)."""
        config = dict(config)
        preprocessor = config.pop("preprocessor", None)
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        return config, preprocessor
