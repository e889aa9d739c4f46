"""Callbacks of the training jobs: fault tolerance, history CSV, best checkpoints, NaN stop, TensorBoard.

A run killed at any moment resumes from its last backup and ends with the
same weights as an uninterrupted run with the same seed (with deterministic
ops on, `keras.utils.set_random_seed` + `tf.config.experimental.enable_op_determinism`).
Three pieces make that hold:

- `AtomicBackupAndRestore` (a `keras.callbacks.BackupAndRestore`) saves the
  weights, the optimizer state (step counter, moments) and the epoch at the
  end of every epoch, committed in one step (a backup cut half-way leaves
  the previous one whole), and restores them when `fit` starts again;
- the training data of epoch `e` depends only on `(seed, e)` (see
  `training/pipeline.py`), and `training.train` starts the pipeline at the
  restored epoch (`backup_epoch`);
- `EpochSeeds` sets the random state of every layer (dropout) from
  `(seed, e)` at the start of epoch `e`, so it needs no backup.

The training history (one row of logged losses and metrics per epoch) is
Keras' own `keras.callbacks.CSVLogger` in append mode: a resumed run adds
its epochs to the same `history.csv` (the header is written once). The
logger runs before the backup at each epoch end, so a run killed between
the two logs an epoch that the resumed run repeats; `training.plots.read_history`
keeps the last row of each epoch.
"""

import json
import os

import keras
import numpy as np

BACKUP_SUBDIR = "backup"
BEST_WEIGHTS_FILE = "best.weights.h5"
HISTORY_FILE = "history.csv"
TENSORBOARD_SUBDIR = "logs"
# File written by keras.callbacks.BackupAndRestore next to its weights ({"epoch": ..., "batch": ...}).
BACKUP_METADATA_FILE = "training_metadata.json"
SEED_STATE_NAME = "seed_generator_state"


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose backups are committed in one step.

    Keras overwrites its weights file and then its metadata file in place, so
    a process killed between or during the two writes resumes from a
    truncated file (a crash) or from the weights of one epoch with the epoch
    number of the one before (a silently different run; seen under load in
    `tests/training/test_fault_tolerance.py`). Here each backup writes the
    weights to a new file (`epoch_<e>_batch_<b>.weights.h5`), then replaces
    the metadata (`training_metadata.json`, `{"epoch", "batch", "weights"}`)
    with `os.replace`, the commit; older weights files are removed after it.
    The metadata therefore always names a complete weights file of its own
    epoch. A backup that Keras' own callback wrote (metadata without
    `"weights"`) is restored as Keras restores it.

    Args:
        backup_dir: str, the backup directory (removed when `fit` ends, with
            `delete_checkpoint=True`, the default).
        save_freq: `"epoch"` (default) or an int number of batches.
        delete_checkpoint: bool. Defaults to True.
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch_{self._current_epoch}_batch_{self._last_batch_seen}.weights.h5"
        self.model.save_weights(os.path.join(self.backup_dir, name), overwrite=True)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name}
        temporary = self._training_metadata_path + ".tmp"
        with open(temporary, "w") as f:
            json.dump(metadata, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self._training_metadata_path)
        for other in os.listdir(self.backup_dir):
            if other.endswith(".weights.h5") and other != name:
                os.remove(os.path.join(self.backup_dir, other))

    def _load_model(self):
        metadata = None
        if os.path.isfile(self._training_metadata_path):
            with open(self._training_metadata_path) as f:
                try:
                    metadata = json.load(f)
                except ValueError as error:  # only Keras' in-place writes can be cut half-way
                    # OSError: `on_train_begin` then restores Keras' previous copy, if there is one.
                    path = self._training_metadata_path
                    raise OSError(f"Unreadable backup metadata {path}: {error}") from error
        if not metadata or "weights" not in metadata:
            return super()._load_model()  # none yet, or written by keras.callbacks.BackupAndRestore
        if not self.model.built:
            raise ValueError(
                "AtomicBackupAndRestore: the model must be built before `fit()` to restore a backup. "
                f"Received: an unbuilt model {self.model.name!r}"
            )
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, metadata["weights"]))
        self.model._initial_epoch = int(metadata["epoch"])


def backup_epoch(backup_dir):
    """The epoch a `BackupAndRestore` backup in `backup_dir` resumes at (0 when there is none).

    Reads the metadata that `AtomicBackupAndRestore` commits with each
    backup; for a backup of Keras' own callback whose metadata is unreadable
    (a run killed while writing it), its previous copy (`double_checkpoint`).
    """
    for name in (BACKUP_METADATA_FILE, BACKUP_METADATA_FILE + ".bkp"):
        path = os.path.join(backup_dir, name)
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    return int(json.load(f)["epoch"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return 0


BACKUP_MODEL_FILE = "model_config.json"


def check_backup_model(backup_dir, model):
    """Refuse to resume a backup of another model; record this model's configuration for later resumes.

    `BackupAndRestore` restores weights by layer structure: resuming a
    backup written by a different model (another `--override`, task or
    code version, in the same `--model_dir`) fails inside `fit` with
    Keras' "objects could not be loaded". The configuration of the model
    that writes the backup is kept in `backup_dir/model_config.json`; a
    later run with a backup whose recorded configuration (layer names
    aside: Keras numbers unnamed layers per process) differs gets a
    ValueError naming the directory and what to do, before training. A
    backup without that file (from an older run) is left to Keras.

    Args:
        backup_dir: str, the `BackupAndRestore` directory.
        model: the `keras.Model` about to be trained.

    Raises:
        ValueError: if the backup records another model configuration.
    """
    config = _without_names(json.loads(json.dumps(model.get_config(), sort_keys=True, default=str)))
    path = os.path.join(backup_dir, BACKUP_MODEL_FILE)
    if backup_epoch(backup_dir) > 0 and os.path.isfile(path):
        with open(path) as f:
            recorded = json.load(f)
        if recorded != config:
            raise ValueError(
                f"The model directory holds the backup of a run of another model: {backup_dir} (epoch "
                f"{backup_epoch(backup_dir)}). Expected the configuration recorded in {BACKUP_MODEL_FILE}. "
                "Received: a different model configuration. Resume with the flags of that run, or remove "
                "the backup directory (or use another --model_dir) to start afresh."
            )
    os.makedirs(backup_dir, exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(config, f, sort_keys=True)
    os.replace(temporary, path)


def _without_names(config):
    """A config with every `"name"` entry removed (Keras numbers unnamed layers per process)."""
    if isinstance(config, dict):
        return {key: _without_names(value) for key, value in config.items() if key != "name"}
    if isinstance(config, list):
        return [_without_names(value) for value in config]
    return config


def epoch_seed(seed, epoch, index=0):
    """A 31-bit integer derived from (seed, epoch, index), stable across processes and platforms."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])
    return int(state.generate_state(1, dtype=np.uint32)[0] >> 1)


def seed_state_variables(model):
    """The random-state variables (`keras.random.SeedGenerator` states) of the model's layers."""
    return [v for v in model.variables if v.name == SEED_STATE_NAME]


class EpochSeeds(keras.callbacks.Callback):
    """Set every layer's random state (e.g. dropout masks) from `(seed, epoch)` at each epoch start.

    Keras checkpoints (and `BackupAndRestore`) do not save the states of
    `keras.random.SeedGenerator`s; with this callback the random numbers of
    epoch `e` do not depend on what ran before, so a resumed run draws the
    same dropout masks as an uninterrupted one.

    Args:
        seed: int, the run's seed.

    Example:
    >>> from training.callbacks import EpochSeeds
    >>> callback = EpochSeeds(seed=0)
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        for index, variable in enumerate(seed_state_variables(self.model)):
            value = np.array([epoch_seed(self.seed, epoch, index), 0], dtype=variable.dtype)
            variable.assign(value)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` whose file is replaced in one step.

    Keras writes the checkpoint in place, so a kill during the write leaves a
    truncated file where the last good checkpoint was. Here Keras writes to a
    hidden sibling (`.<name>.partial-checkpoint.weights.h5`), which then
    replaces `filepath` with `os.replace`: `filepath` always holds a complete
    checkpoint (the previous one until the new one is whole).

    Args:
        filepath: str, the checkpoint file (no `{epoch}` formatting).
        **kwargs: `keras.callbacks.ModelCheckpoint` arguments.
    """

    def __init__(self, filepath, **kwargs):
        self.final_filepath = os.path.abspath(filepath)
        directory, name = os.path.split(self.final_filepath)
        suffix = ".weights.h5" if kwargs.get("save_weights_only") else os.path.splitext(name)[1]
        super().__init__(os.path.join(directory, f".{name}.partial-checkpoint{suffix}"), **kwargs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if os.path.exists(self.filepath):
            os.replace(self.filepath, self.final_filepath)


def build_callbacks(
    model_dir,
    seed,
    backup=True,
    monitor=None,
    monitor_mode="auto",
    tensorboard=True,
    terminate_on_nan=True,
    history=True,
):
    """The callbacks of a training run writing under `model_dir`.

    Args:
        model_dir: str, the run's (or worker's) output directory.
        seed: int, the run's seed (for `EpochSeeds`).
        backup: bool, fault tolerance: `BackupAndRestore` in
            `model_dir/backup` (removed when `fit` completes). Defaults to True.
        monitor: optional str, a logged quantity (e.g. `"val_accuracy"`); the
            weights of the best epoch by it are saved to
            `model_dir/best.weights.h5`. Needs validation data for `val_*`.
        monitor_mode: `"auto"`, `"min"` or `"max"`. Defaults to `"auto"`.
        tensorboard: bool, TensorBoard logs in `model_dir/logs`. Defaults to True.
        terminate_on_nan: bool, stop at the first NaN loss. Defaults to True.
        history: bool, append one row per epoch (the logged losses and
            metrics) to `model_dir/history.csv` (`keras.callbacks.CSVLogger`,
            `append=True`). Defaults to True.

    Returns:
        A list of `keras.callbacks.Callback`s (`EpochSeeds` always).
    """
    callbacks = [EpochSeeds(seed)]
    if history:
        # Before the backup: a kill between the two repeats a logged epoch rather than losing one.
        callbacks.append(keras.callbacks.CSVLogger(os.path.join(model_dir, HISTORY_FILE), append=True))
    if backup:
        callbacks.append(
            AtomicBackupAndRestore(os.path.join(model_dir, BACKUP_SUBDIR), save_freq="epoch")
        )
    if terminate_on_nan:
        callbacks.append(keras.callbacks.TerminateOnNaN())
    if monitor:
        callbacks.append(
            AtomicModelCheckpoint(
                os.path.join(model_dir, BEST_WEIGHTS_FILE),
                monitor=monitor,
                mode=monitor_mode,
                save_best_only=True,
                save_weights_only=True,
            )
        )
    if tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(
                os.path.join(model_dir, TENSORBOARD_SUBDIR), write_graph=False, profile_batch=0
            )
        )
    return callbacks
