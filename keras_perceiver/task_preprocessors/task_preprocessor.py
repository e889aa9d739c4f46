"""Base of the task preprocessors: raw data -> a task model's inputs in `tf.data` (keras-hub Preprocessor)."""

import keras
import tensorflow as tf


class TaskPreprocessor(keras.layers.Layer):
    """Raw inputs (strings, uint8 images, frame pairs, audio) -> the model's input dict, in TensorFlow ops.

    The keras-hub contract: `preprocessor(x, y=None, sample_weight=None)`
    returns `keras.utils.pack_x_y_sample_weight(inputs, y, sample_weight)`,
    so the same layer maps a `tf.data.Dataset` (`ds.map(preprocessor)`),
    runs inside `fit`/`predict`/`evaluate` of a task model that carries it
    (`model.preprocessor`), and becomes the client signature of an exported
    SavedModel (`keras_perceiver.export.ClientInputs.from_preprocessor`).
    It holds no trained weights and runs in TensorFlow (tf.data) whatever the
    Keras backend. A dict without any of the raw input names is taken as
    model inputs already and passes through. Subclasses define `convert(x)`
    and `input_signature`.

    Source: keras-hub `Preprocessor` and `PipelineModel`
    (`keras_hub/src/models/preprocessor.py`, `utils/pipeline_model.py`).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    @property
    def input_signature(self):
        """dict name -> `tf.TensorSpec` of the raw inputs (batch dimension None)."""
        raise NotImplementedError

    def convert(self, x):
        """Raw inputs (batched) -> the model's input dict (TensorFlow ops)."""
        raise NotImplementedError

    def _raw(self, x, key):
        """The raw input `key` of a dict `x` (or `x` itself), as a tensor; a named error for a missing key."""
        if isinstance(x, dict):
            if key not in x:
                raise ValueError(
                    f"{type(self).__name__}: missing raw input {key!r}. Expected keys "
                    f"{sorted(self.input_signature)}. Received: keys={sorted(x)}"
                )
            x = x[key]
        return tf.convert_to_tensor(x)

    def _numeric(self, x, key):
        """`_raw`, refused unless it holds numbers (a string or bool array gets a TypeError naming it)."""
        tensor = self._raw(x, key)
        if not (tensor.dtype.is_floating or tensor.dtype.is_integer):
            raise TypeError(
                f"{type(self).__name__}: `{key}` must hold numbers. Received: dtype {tensor.dtype.name}"
            )
        return tensor

    def call(self, x, y=None, sample_weight=None):
        if isinstance(x, dict) and not set(x) & set(self.input_signature):
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)  # model inputs already
        return keras.utils.pack_x_y_sample_weight(self.convert(x), y, sample_weight)

    def dataset(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False):
        """`x` (a `tf.data.Dataset` of raw examples or batches, or arrays/lists) as a preprocessed dataset.

        Arrays are batched by `batch_size` (32 by default) first, as
        keras-hub's `PipelineModel` does, after a full shuffle with
        `shuffle` (what `fit(shuffle=True)` does to arrays).

        Raises:
            ValueError: for `y`, `sample_weight` or `batch_size` with a
                dataset, or a single (unbatched) string or number.
        """
        if isinstance(x, tf.data.Dataset):
            if y is not None or sample_weight is not None or batch_size is not None:
                given = {"y": y, "sample_weight": sample_weight, "batch_size": batch_size}
                received = ", ".join(f"{k}={'given' if v is not None else None}" for k, v in given.items())
                raise ValueError(
                    f"{type(self).__name__}: a tf.data.Dataset carries its own labels and batches. Expected "
                    f"y=None, sample_weight=None, batch_size=None. Received: {received}"
                )
            data = x
        else:
            if isinstance(x, (str, bytes)) or (hasattr(x, "shape") and len(x.shape) == 0):
                raise ValueError(
                    f"{type(self).__name__}: expected a batch (a list or an array with a batch axis). "
                    f"Received: a single value {x!r:.60}; wrap it in a list."
                )
            data = tf.data.Dataset.from_tensor_slices(keras.utils.pack_x_y_sample_weight(x, y, sample_weight))
            if shuffle:
                data = data.shuffle(data.cardinality(), reshuffle_each_iteration=True)
            data = data.batch(batch_size or 32)
        return data.map(self, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
