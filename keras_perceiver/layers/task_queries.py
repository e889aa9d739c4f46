"""One learned decoder query per task or modality."""

import keras

from keras_perceiver.layers.trainable_queries import TrainableQueries


@keras.saving.register_keras_serializable(package="keras_perceiver")
class TaskQueries(TrainableQueries):
    """One learned query per named task or modality, in the order of `task_names`.

    The paper's GLUE multi-task decoder uses one query per task (Perceiver IO,
    arXiv 2107.14795, section 4.1); the multimodal decoder one embedding per
    modality. `task_names` lets a postprocessor split the (B, T, E) output
    back into a dict.

    Args:
        task_names: list of unique str, T tasks or modalities.
        num_channels: int, E.
        initializer: initializer of the (T, E) queries.

    Call arguments:
        inputs: tensor whose leading dimension is the batch B.

    Returns:
        (B, T, E) tensor, row t for `task_names[t]`.

    Raises:
        ValueError: if `task_names` is empty or has duplicates.

    Example:
    >>> import keras
    >>> from keras_perceiver.layers import TaskQueries
    >>> tuple(TaskQueries(["sst2", "mnli"], num_channels=8)(keras.ops.ones((2, 5, 3))).shape)
    (2, 2, 8)
    """

    def __init__(self, task_names, num_channels, initializer=None, **kwargs):
        kwargs.pop("num_queries", None)
        task_names = list(task_names)
        if not task_names or len(set(task_names)) != len(task_names):
            raise ValueError(
                f"`task_names` must be a non-empty list of unique names. Received: {task_names}"
            )
        super().__init__(
            num_queries=len(task_names), num_channels=num_channels, initializer=initializer, **kwargs
        )
        self.task_names = task_names

    def get_config(self):
        config = super().get_config()
        del config["num_queries"]
        config["task_names"] = self.task_names
        return config
