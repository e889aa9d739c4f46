"""Output side of a multi-task classifier: one decoder query per task, one head per task."""

import keras

from keras_perceiver.layers.initializers import clone_initializer, default_kernel_initializer
from keras_perceiver.validation import check_positive_int, check_rank


@keras.saving.register_keras_serializable(package="keras_perceiver")
class MultiTaskPostprocessor(keras.layers.Layer):
    """Decoder outputs (B, T, E) of T task queries -> `{task: (B, K_task) logits}`.

    Row t (the query of `tasks[t]`, in the order of the dict) goes through
    its own Dense layer to that task's number of classes.

    Source: Perceiver IO (arXiv 2107.14795) section 4.1 (GLUE multi-task
    queries).

    Args:
        tasks: dict of task name -> number of classes K_task (> 0), ordered
            like the decoder's task queries.
        kernel_initializer: initializer of the heads.

    Call arguments:
        inputs: (B, T, E) decoder outputs.

    Returns:
        dict of task name -> (B, K_task) logits.

    Raises:
        ValueError: for an empty `tasks`, a non-positive class count, or
            inputs that are not rank 3 with T = len(tasks).

    Example:
    >>> import keras
    >>> from keras_perceiver.postprocessors.multi_task_postprocessor import MultiTaskPostprocessor
    >>> tuple(MultiTaskPostprocessor({"sst2": 2, "stsb": 1})(keras.ops.ones((4, 2, 8)))["sst2"].shape)
    (4, 2)
    """

    def __init__(self, tasks, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if not tasks:
            raise ValueError(f"`tasks` must name at least one task. Received: tasks={tasks!r}")
        for name, num_classes in tasks.items():
            check_positive_int(f"tasks[{name!r}]", num_classes)
        self.tasks = dict(tasks)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_kernel_initializer()
        )
        self.heads = {
            name: keras.layers.Dense(
                num_classes,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name=f"{name}_head",
            )
            for name, num_classes in self.tasks.items()
        }

    def build(self, inputs_shape):
        for head in self.heads.values():
            head.build((inputs_shape[0], inputs_shape[-1]))
        self.built = True

    def call(self, inputs):
        name = self.__class__.__name__
        check_rank("inputs", inputs, 3, name)
        if inputs.shape[1] is not None and inputs.shape[1] != len(self.tasks):
            raise ValueError(
                f"{name}: expected one decoder output per task ({len(self.tasks)}: {list(self.tasks)}). "
                f"Received: inputs.shape={tuple(inputs.shape)}"
            )
        return {task: self.heads[task](inputs[:, t, :]) for t, task in enumerate(self.tasks)}

    def compute_output_spec(self, inputs):
        return {
            task: keras.KerasTensor((inputs.shape[0], k), dtype=self.compute_dtype)
            for task, k in self.tasks.items()
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tasks": self.tasks,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
