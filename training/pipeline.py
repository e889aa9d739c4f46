"""tf.data pipelines of the training jobs: examples -> model inputs, per replica, resumable.

`train_dataset` feeds `model.fit` through
`strategy.distribute_datasets_from_function`: each input pipeline (one per
worker) reads the examples, keeps its shard, maps them with the task's
deterministic `preprocess` (parallel, then cached when asked), and then, for
every epoch `e` from the first one to run:

    shuffle(seed = f(seed, e, pipeline)) -> repeat -> enumerate -> parallel map of
    `to_inputs(example, training=True, seed=(f(seed, e), i))` -> batch (per-replica
    size, full batches) -> optional batch augmentation -> take(batches of one epoch)

and prefetches. Everything random in epoch `e` (order, masking, crops) is a
function of `(seed, e)` only (the datasets of the epochs are concatenated,
each with its own seeds), so a run resumed at epoch `e` reads the same
batches as an uninterrupted one (`training/callbacks.py`).

`eval_dataset` is the plain batched (global batch, every example) dataset
that Keras distributes itself for `evaluate`/validation.
"""

import math

import tensorflow as tf

from training.callbacks import epoch_seed

AUTOTUNE = tf.data.AUTOTUNE
# Largest shuffle buffer: by default the whole (cached) training set is shuffled, up to this many
# examples. Readers often list examples grouped by class or language; a smaller buffer then feeds
# batches of one class at a time and the model learns the order instead of the task.
MAX_SHUFFLE_BUFFER = 200_000
# Seed of the random parts of evaluation inputs (e.g. which tokens a masked-LM test example masks).
EVAL_SEED = 20_211


def assert_finite(batch, what):
    """`batch` (a tuple of nests of tensors) unchanged, but failing when a float tensor holds NaN or inf.

    The error (TensorFlow's `InvalidArgumentError`, raised by `fit`/`evaluate`
    when the batch is read) names the feature, e.g. "training batch:
    `0/images` holds NaN or inf": a broken data set or preprocessing stops the
    job at its first bad batch, before a NaN loss (`TerminateOnNaN`) or a
    silently wrong model.
    """

    def check(path, value):
        if isinstance(value, dict):
            return {key: check(f"{path}/{key}", item) for key, item in value.items()}
        if isinstance(value, (tuple, list)):
            return type(value)(check(f"{path}/{i}", item) for i, item in enumerate(value))
        if not value.dtype.is_floating:
            return value
        return tf.debugging.assert_all_finite(
            value,
            f"{what}: `{path.lstrip('/')}` holds NaN or inf; expected finite floats (check the data set and "
            "its preprocessing)",
        )

    checked = check("", tuple(batch))
    return checked if len(checked) > 1 else checked[0]


def count_examples(dataset):
    """Number of elements: the known cardinality, else one pass over the dataset."""
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError("The dataset is infinite; pass `steps_per_epoch` and `num_examples`.")
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def steps_per_epoch(num_examples, global_batch_size, num_input_pipelines=1):
    """Full global batches per epoch when every input pipeline reads `num_examples / pipelines`.

    Raises:
        ValueError: if there is not one full global batch.
    """
    steps = (num_examples // num_input_pipelines) * num_input_pipelines // global_batch_size
    if steps < 1:
        raise ValueError(
            f"The training set has {num_examples} examples, fewer than one global batch of "
            f"{global_batch_size} ({num_input_pipelines} input pipelines). Lower `batch_size`."
        )
    return steps


def _epoch_seed(seed, epoch, input_pipeline_id):
    """The seed of one epoch of one input pipeline (a Python int: `Dataset.shuffle` needs one)."""
    return epoch_seed(seed, epoch, input_pipeline_id)


def _concatenate(datasets):
    """Concatenate in a balanced tree (depth log2(n) for the n epochs of a long run)."""
    while len(datasets) > 1:
        pairs = [datasets[i : i + 2] for i in range(0, len(datasets), 2)]
        datasets = [pair[0].concatenate(pair[1]) if len(pair) == 2 else pair[0] for pair in pairs]
    return datasets[0]


def _with_input_options(dataset, deterministic=True):
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)


def train_dataset(
    strategy,
    load_examples,
    to_inputs,
    global_batch_size,
    steps,
    seed,
    epochs,
    initial_epoch=0,
    preprocess=None,
    batch_augment=None,
    cache=True,
    shuffle_buffer=None,
    num_examples=None,
):
    """The distributed training dataset: `steps` global batches for each epoch in [initial_epoch, epochs).

    Args:
        strategy: the `tf.distribute.Strategy` the model was built under.
        load_examples: function () -> `tf.data.Dataset` of unbatched example
            dicts, in a fixed order (a `training.data` reader).
        to_inputs: function (example, training, seed) -> `(x, y)` or
            `(x, y, sample_weight)` of one example; `seed` is an int64 (2,)
            tensor for `tf.random.stateless_*` ops.
        global_batch_size: int, split evenly over the replicas.
        steps: int, global batches per epoch (see `steps_per_epoch`).
        seed: int, the run's seed.
        epochs: int, the last epoch (exclusive).
        initial_epoch: int, the first epoch to produce (a resumed run).
            Defaults to 0.
        preprocess: optional function example -> example, deterministic
            (decoding, normalization), applied before the cache.
        batch_augment: optional function (x, y) -> (x, y) on per-replica
            batches (e.g. MixUp/CutMix).
        cache: bool, cache the preprocessed examples in memory. Defaults to True.
        shuffle_buffer: optional int, shuffle buffer size. Defaults to the
            examples of one input pipeline (`num_examples / pipelines`), at
            most `MAX_SHUFFLE_BUFFER`: a full shuffle.
        num_examples: optional int, examples of the training set (see
            `count_examples`); needed when `shuffle_buffer` is None.

    Returns:
        A `tf.distribute.DistributedDataset` for `model.fit(..., steps_per_epoch=steps)`.

    Raises:
        ValueError: if the global batch does not split evenly over the replicas.
    """
    num_replicas = strategy.num_replicas_in_sync
    if global_batch_size % num_replicas:
        raise ValueError(
            f"`batch_size` (the global batch) must be divisible by the number of replicas. "
            f"Received: batch_size={global_batch_size}, replicas={num_replicas}"
        )

    def dataset_fn(input_context):
        per_replica_batch = input_context.get_per_replica_batch_size(global_batch_size)
        replicas_per_pipeline = num_replicas // input_context.num_input_pipelines
        batches_per_epoch = steps * replicas_per_pipeline
        buffer = shuffle_buffer
        if buffer is None:
            if num_examples is None:
                raise ValueError("train_dataset: pass `num_examples` or `shuffle_buffer`.")
            buffer = max(min(num_examples // input_context.num_input_pipelines, MAX_SHUFFLE_BUFFER), 1)
        examples = load_examples()
        if input_context.num_input_pipelines > 1:
            examples = examples.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if preprocess is not None:
            examples = examples.map(preprocess, num_parallel_calls=AUTOTUNE)
        if cache:
            examples = examples.cache()

        def one_epoch(epoch):
            epoch_seed = _epoch_seed(seed, epoch, input_context.input_pipeline_id)
            # Not reshuffled per iteration: Keras iterates the dataset once more to build the model
            # (a first batch), which would otherwise change the order of the epoch that comes first.
            shuffled = examples.shuffle(buffer, seed=epoch_seed, reshuffle_each_iteration=False)

            def map_example(index, example):
                return to_inputs(
                    example, training=True, seed=tf.stack([tf.constant(epoch_seed, tf.int64), index])
                )

            batches = (
                shuffled.repeat()
                .enumerate()
                .map(map_example, num_parallel_calls=AUTOTUNE)
                .batch(per_replica_batch, drop_remainder=True)
            )
            if batch_augment is not None:
                batches = batches.map(batch_augment, num_parallel_calls=AUTOTUNE)
            return batches.map(lambda *batch: assert_finite(batch, "training batch")).take(
                batches_per_epoch
            )

        dataset = _concatenate(
            [one_epoch(epoch) for epoch in range(initial_epoch, max(epochs, initial_epoch + 1))]
        )
        return _with_input_options(dataset).prefetch(AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)


def eval_dataset(load_examples, to_inputs, batch_size, preprocess=None, cache=True):
    """Every example once, in order, in batches of `batch_size` (the last one partial).

    Args:
        load_examples, to_inputs, preprocess, cache: as for `train_dataset`
            (`to_inputs` is called with `training=False` and the seed
            `(EVAL_SEED, index of the example)`: the same every time).
        batch_size: int, the global batch size.

    Returns:
        A `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)` batches.
    """
    examples = load_examples()
    if preprocess is not None:
        examples = examples.map(preprocess, num_parallel_calls=AUTOTUNE)
    if cache:
        examples = examples.cache()
    dataset = examples.enumerate().map(
        lambda index, example: to_inputs(
            example, training=False, seed=tf.stack([tf.constant(EVAL_SEED, tf.int64), index])
        ),
        num_parallel_calls=AUTOTUNE,
    )
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.batch(batch_size).map(lambda *batch: assert_finite(batch, "evaluation batch"))
    return dataset.prefetch(AUTOTUNE).with_options(options)


def eval_steps(num_examples, batch_size):
    """Batches of `eval_dataset` (the last one partial)."""
    return math.ceil(num_examples / batch_size)
