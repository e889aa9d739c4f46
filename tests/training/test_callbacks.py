"""Callbacks: where a backup resumes, per-epoch random states, the callback list."""

import csv
import json
import os

import keras
import numpy as np

from tests.test_case import TestCase
from training.callbacks import (
    BACKUP_METADATA_FILE,
    HISTORY_FILE,
    AtomicBackupAndRestore,
    AtomicModelCheckpoint,
    EpochSeeds,
    backup_epoch,
    build_callbacks,
    check_backup_model,
    seed_state_variables,
)


class StopAtEpoch(keras.callbacks.Callback):
    """Raises RuntimeError("interrupted") when `epoch` begins (a killed run)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


def linear_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


class CallbacksTest(TestCase):
    def test_backup_epoch(self):
        directory = self.make_temp_dir()
        self.assertEqual(backup_epoch(os.path.join(directory, "missing")), 0)
        with open(os.path.join(directory, BACKUP_METADATA_FILE + ".bkp"), "w") as f:
            json.dump({"epoch": 2, "batch": 0}, f)
        with open(os.path.join(directory, BACKUP_METADATA_FILE), "w") as f:
            f.write('{"epo')  # cut while writing: the previous copy is used
        self.assertEqual(backup_epoch(directory), 2)
        with open(os.path.join(directory, BACKUP_METADATA_FILE), "w") as f:
            json.dump({"epoch": 3, "batch": 0}, f)
        self.assertEqual(backup_epoch(directory), 3)

    def test_backup_epoch_reads_what_keras_writes(self):
        directory = os.path.join(self.make_temp_dir(), "backup")
        backup = keras.callbacks.BackupAndRestore(directory, double_checkpoint=True)
        x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
        with self.assertRaisesRegex(RuntimeError, "interrupted"):
            linear_model().fit(x, y, epochs=4, verbose=0, callbacks=[backup, StopAtEpoch(2)])
        self.assertEqual(backup_epoch(directory), 2)

    def test_atomic_backup_commits_weights_and_epoch_together(self):
        directory = os.path.join(self.make_temp_dir(), "backup")
        x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
        keras.utils.set_random_seed(0)
        uninterrupted = linear_model()
        initial = uninterrupted.get_weights()
        uninterrupted.fit(x, y, epochs=4, verbose=0)

        model = linear_model()
        model.set_weights(initial)
        with self.assertRaisesRegex(RuntimeError, "interrupted"):
            callbacks = [AtomicBackupAndRestore(directory), StopAtEpoch(2)]
            model.fit(x, y, epochs=4, verbose=0, callbacks=callbacks)
        with open(os.path.join(directory, BACKUP_METADATA_FILE)) as f:
            metadata = json.load(f)
        self.assertEqual(metadata, {"epoch": 2, "batch": 0, "weights": "epoch_2_batch_0.weights.h5"})
        self.assertEqual(sorted(n for n in os.listdir(directory) if n.endswith(".h5")), [metadata["weights"]])
        self.assertEqual(backup_epoch(directory), 2)
        # Killed while writing epoch 3's weights: a truncated file that the metadata does not name.
        with open(os.path.join(directory, "epoch_3_batch_0.weights.h5"), "wb") as f:
            f.write(b"\x89HDF\r\n")
        resumed = linear_model()  # other initial weights: the backup replaces them
        begun = []
        record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: begun.append(epoch))
        resumed.fit(x, y, epochs=4, verbose=0, callbacks=[AtomicBackupAndRestore(directory), record])
        self.assertEqual(begun, [2, 3])
        for a, b in zip(resumed.get_weights(), uninterrupted.get_weights()):
            self.assertAllClose(a, b, atol=0, rtol=0)
        self.assertFalse(os.path.exists(directory))  # removed when fit ends

    def test_a_backup_of_another_model_is_refused_before_training(self):
        directory = os.path.join(self.make_temp_dir(), "backup")
        backup = keras.callbacks.BackupAndRestore(directory, double_checkpoint=True)
        model = linear_model()
        check_backup_model(directory, model)  # no backup yet: records the configuration
        x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
        with self.assertRaisesRegex(RuntimeError, "interrupted"):
            model.fit(x, y, epochs=4, verbose=0, callbacks=[backup, StopAtEpoch(2)])
        # The same architecture in another process/order (other auto-generated layer names) resumes.
        keras.layers.Dense(3)  # moves Keras' layer-name counter
        check_backup_model(directory, linear_model())
        resumed = linear_model()
        resumed.fit(x, y, epochs=4, verbose=0, callbacks=[backup])
        # Another model: a named error instead of Keras' "objects could not be loaded" inside fit.
        self.assertFalse(os.path.exists(directory))  # a finished fit removes the backup (and the record)
        model = linear_model()
        check_backup_model(directory, model)
        with self.assertRaisesRegex(RuntimeError, "interrupted"):
            model.fit(x, y, epochs=4, verbose=0, callbacks=[backup, StopAtEpoch(1)])
        wider = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4), keras.layers.Dense(1)])
        with self.assertRaisesRegex(
            ValueError, r"backup of a run of another model.*epoch 1.*remove the backup"
        ):
            check_backup_model(directory, wider)

    def test_history_csv_is_appended_to_by_a_resumed_run(self):
        directory = self.make_temp_dir()
        model = linear_model()
        x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
        callbacks = build_callbacks(directory, seed=0, tensorboard=False)
        with self.assertRaisesRegex(RuntimeError, "interrupted"):
            model.fit(x, y, epochs=4, verbose=0, callbacks=[*callbacks, StopAtEpoch(2)])
        path = os.path.join(directory, HISTORY_FILE)
        with open(path, newline="") as f:
            self.assertEqual([row["epoch"] for row in csv.DictReader(f)], ["0", "1"])
        # A fresh process: new callbacks, the backup restores epoch 2.
        callbacks = build_callbacks(directory, seed=0, tensorboard=False)
        history = model.fit(x, y, epochs=4, verbose=0, callbacks=callbacks)
        self.assertLen(history.history["loss"], 2)
        with open(path, newline="") as f:
            text = f.read()
        self.assertEqual(text.count("epoch,"), 1, msg=f"header written twice:\n{text}")
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([row["epoch"] for row in rows], ["0", "1", "2", "3"])
        self.assertAllClose([float(row["loss"]) for row in rows[2:]], history.history["loss"], rtol=1e-6)
        losses = [float(row["loss"]) for row in rows]
        self.assertTrue(all(a > b for a, b in zip(losses, losses[1:])), msg=f"training continued: {losses}")

    def test_epoch_seeds_make_dropout_a_function_of_the_epoch(self):
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dropout(0.5), keras.layers.Dropout(0.5)])
        self.assertLen(seed_state_variables(model), 2)
        callback = EpochSeeds(seed=7)
        callback.set_model(model)
        x = np.ones((2, 64), "float32")

        def masks(epoch):
            callback.on_epoch_begin(epoch)
            return [model(x, training=True).numpy() for _ in range(2)]

        first = masks(3)
        masks(4)
        again = masks(3)
        np.testing.assert_array_equal(first[0], again[0])
        np.testing.assert_array_equal(first[1], again[1])
        self.assertFalse(np.array_equal(first[0], first[1]), msg="the state must advance within an epoch")
        self.assertFalse(np.array_equal(first[0], masks(4)[0]), msg="epochs must differ")
        states = [v.numpy()[0] for v in seed_state_variables(model)]
        self.assertNotEqual(states[0], states[1])

    def test_build_callbacks(self):
        directory = self.make_temp_dir()
        callbacks = build_callbacks(directory, seed=0, monitor="val_accuracy")
        types = [type(c) for c in callbacks]
        for expected in (
            EpochSeeds,
            AtomicBackupAndRestore,
            keras.callbacks.TerminateOnNaN,
            AtomicModelCheckpoint,
            keras.callbacks.TensorBoard,
            keras.callbacks.CSVLogger,
        ):
            self.assertIn(expected, types)
        minimal = build_callbacks(
            directory, 0, backup=False, tensorboard=False, terminate_on_nan=False, history=False
        )
        self.assertEqual([type(c) for c in minimal], [EpochSeeds])

    def test_checkpoint_replaces_its_file_in_one_step(self):
        directory = self.make_temp_dir()
        path = os.path.join(directory, "best.weights.h5")
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        x, y = np.ones((8, 3), "float32"), np.zeros((8, 2), "float32")
        checkpoint = AtomicModelCheckpoint(path, monitor="loss", save_best_only=True, save_weights_only=True)
        model.fit(x, y, epochs=2, verbose=0, callbacks=[checkpoint])
        self.assertEqual(os.listdir(directory), ["best.weights.h5"])
        saved = [w.numpy() for w in model.weights]
        # A write that dies half-way (here: raises after writing half of its bytes) leaves the last good file.
        real = keras.Model.save_weights

        def broken(self, target, *args, **kwargs):
            real(self, target, *args, **kwargs)
            with open(target, "r+b") as f:
                f.truncate(os.path.getsize(target) // 2)
            raise OSError("disk died")

        keras.Model.save_weights = broken
        checkpoint.best = float("inf")  # the next epoch is the best so far: it is saved
        try:
            with self.assertRaisesRegex(OSError, "disk died"):
                model.fit(x, y * 0 + 5, epochs=1, verbose=0, callbacks=[checkpoint])
        finally:
            keras.Model.save_weights = real
        restored = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        restored.load_weights(path)
        for ours, theirs in zip(restored.weights, saved):
            self.assertAllClose(ours, theirs, atol=0)
