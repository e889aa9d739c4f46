"""`tf.distribute` strategies by name, for the training jobs.

`get_strategy(name)` returns the strategy that `training.train` builds the
model and optimizer under (`strategy.scope()`) and feeds through
`strategy.distribute_datasets_from_function`:

- `"auto"`: a TPU when one is named (`tpu=`, the `TPU_NAME` environment
  variable) or attached (a TPU VM), else `MirroredStrategy` over all GPUs,
  else the CPU (`OneDeviceStrategy("/cpu:0")`).
- `"mirrored"`: `MirroredStrategy` over `devices` (default: all GPUs, or
  every logical CPU when there is no GPU; see `split_cpu`).
- `"multi_worker"`: `MultiWorkerMirroredStrategy` configured from the
  `TF_CONFIG` environment variable (one process per worker).
- `"tpu"`: `TPUStrategy` on the TPU named by `tpu` (`"local"` for a TPU VM).
- `"cpu"`: `OneDeviceStrategy("/cpu:0")`.

The TPU is never probed through the GCE metadata server unless asked for
(`"tpu"`, or `"auto"` with a TPU name), so `"auto"` returns at once on
machines without a TPU.
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "mirrored", "multi_worker", "tpu", "cpu")


def split_cpu(num_devices):
    """Split the first physical CPU into `num_devices` logical devices ("/cpu:0", "/cpu:1", ...).

    Lets `MirroredStrategy` run data parallel on one CPU (tests, CPU-only
    machines). Must run before TensorFlow initializes its devices (before the
    first op).

    Raises:
        ValueError: for `num_devices` < 1.
        RuntimeError: if the devices are already initialized with another split.
    """
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
        raise ValueError(f"`num_devices` must be a positive integer. Received: num_devices={num_devices!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
        )
    except RuntimeError as error:
        raise RuntimeError(
            f"Could not split the CPU into {num_devices} logical devices: TensorFlow's devices are "
            f"already initialized ({error}). Call split_cpu before any TensorFlow op."
        ) from error


def tf_config():
    """The parsed `TF_CONFIG` environment variable, or None when it is unset.

    Raises:
        ValueError: if it is not JSON with a `cluster` dict and a `task` dict
            with `type` and `index`.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}). Received: TF_CONFIG={raw!r}") from error
    task = config.get("task") if isinstance(config, dict) else None
    if (
        not isinstance(config, dict)
        or not isinstance(config.get("cluster"), dict)
        or not isinstance(task, dict)
        or "type" not in task
        or "index" not in task
    ):
        raise ValueError(
            'TF_CONFIG must look like {"cluster": {"worker": ["host:port", ...]}, "task": {"type": '
            f'"worker", "index": 0}}}}. Received: TF_CONFIG={raw!r}'
        )
    return config


def is_chief(strategy):
    """True for the process that writes the shared outputs (checkpoints, exports, logs).

    Every process of a single-machine strategy is the chief; under
    `MultiWorkerMirroredStrategy` it is worker 0 (or the task named `chief`).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0)


def num_workers(strategy):
    """Number of worker processes (input pipelines) of the strategy: 1 unless multi-worker."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(len(spec.get("worker", [])) + len(spec.get("chief", [])), 1)


def worker_dir(model_dir, strategy):
    """`model_dir` for the chief; `model_dir/worker_<id>` for the other workers.

    Under `MultiWorkerMirroredStrategy` every worker saves (some saves need all
    workers), but only the chief's copy is the result; the other workers write
    theirs here.
    """
    if is_chief(strategy):
        return model_dir
    return os.path.join(model_dir, f"worker_{strategy.cluster_resolver.task_id}")


def _multi_worker_reduce(strategy):
    """Make `strategy.reduce` accept what Keras 3's `fit` passes it under `MultiWorkerMirroredStrategy`.

    Keras 3.15 calls, in multi-worker mode only:
    - `strategy.reduce("MEAN", batch, axis=None)` on a first batch to build the
      model: with dict inputs this fails ("Attempt to convert a value
      ({'inputs': PerReplica...}) ... to a Tensor"; keras-team/keras#20329),
      as `reduce` takes one tensor, not a structure;
    - `strategy.reduce("MEAN", log, axis=0)` on the scalar logs (loss,
      metrics): "Invalid reduction dimension 0 for input with 0 dimensions";
    - `strategy.reduce("SUM", log)` without `axis`, which `reduce` requires.
    The replacement reduces each tensor of a structure separately, reduces
    scalars across replicas only (`axis=None`), and defaults `axis` to None:
    what those calls mean.
    """
    reduce = strategy.reduce

    def reduce_one(reduce_op, value, axis):
        if axis is not None:
            local = strategy.experimental_local_results(value)[0]
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                axis = None
        return reduce(reduce_op, value, axis=axis)

    def reduce_each(reduce_op, value, axis=None):
        return tf.nest.map_structure(lambda v: reduce_one(reduce_op, v, axis), value)

    strategy.reduce = reduce_each
    return strategy


def _tpu_strategy(tpu):
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=None if tpu == "local" else tpu)
    if tpu != "local":
        tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def get_strategy(name="auto", tpu=None, devices=None):
    """The `tf.distribute.Strategy` named `name` (see the module docstring).

    Args:
        name: str, one of `STRATEGIES`. Defaults to `"auto"`.
        tpu: optional str, TPU name or `grpc://` address (`"local"` for the
            TPU of a TPU VM). Defaults to the `TPU_NAME` environment variable.
        devices: optional list of device names for `"mirrored"`.

    Returns:
        A `tf.distribute.Strategy`; `num_replicas_in_sync` is the number of
        replicas the global batch is split over.

    Raises:
        ValueError: for an unknown name, `devices` with another strategy than
            `"mirrored"`, `"multi_worker"` without a valid `TF_CONFIG`, or
            `"tpu"` with no TPU to connect to.

    Example:
    >>> from training.strategies import get_strategy
    >>> strategy = get_strategy("cpu")
    >>> strategy.num_replicas_in_sync
    1
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {list(STRATEGIES)}. Received: strategy={name!r}")
    if devices and name != "mirrored":
        raise ValueError(f"`devices` is only used by strategy='mirrored'. Received: strategy={name!r}")
    tpu = tpu or os.environ.get("TPU_NAME")
    if name == "auto":
        if tpu or tf.config.list_physical_devices("TPU"):
            return _tpu_strategy(tpu or "local")
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if name == "mirrored":
        if not devices:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(list(devices))
    if name == "multi_worker":
        if tf_config() is None:
            raise ValueError(
                "strategy='multi_worker' reads the cluster from the TF_CONFIG environment variable, "
                'which is not set. Expected e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:port", '
                '"host2:port"]}, "task": {"type": "worker", "index": 0}}\''
            )
        return _multi_worker_reduce(tf.distribute.MultiWorkerMirroredStrategy())
    if not tpu:
        raise ValueError(
            "strategy='tpu' needs a TPU: pass `tpu` (a name, a grpc:// address, or 'local' on a TPU VM) or "
            "set TPU_NAME. Received: tpu=None"
        )
    try:
        return _tpu_strategy(tpu)
    except (ValueError, tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as error:
        raise ValueError(f"No TPU found for tpu={tpu!r}: {error}") from error
