"""A training loop over `strategy.run` for `tf.distribute` strategies that Keras 3 `fit`
cannot drive.

Keras 3.15 + TF 2.21 `model.fit` fails under `MultiWorkerMirroredStrategy`
(keras-team/keras#20585): its symbolic build reduces a distributed batch with an eager
collective. `StrategyTrainer` needs neither: it runs `strategy.run` over a compiled train
step whose loss is reduced over the *global* batch, so that N workers give the same update
as one device at the same global batch. Subclasses say what a step computes
(`replica_results`) and what an epoch logs (`epoch_logs`): `DistributedTrainer` for the
MTCAE losses, `PretrainingTrainer` for masked video modelling.
"""

import csv
import json
import os
import time

import keras
import tensorflow as tf

from mtcae_keras.data.input_pipeline import replay_epochs


class StrategyTrainer:
    """The epoch loop, logs, checkpoints and per-worker backups of a `strategy.run` trainer.

    Build the model and the optimizer inside `strategy.scope()`; datasets yield global
    batches. Subclasses implement `replica_results` and `epoch_logs`.

    Args:
        model: a `keras.Model`.
        optimizer: a `keras.optimizers.Optimizer`, created in the strategy's scope.
        strategy: a `tf.distribute.Strategy`.
    """

    def __init__(self, model, optimizer, strategy):
        self.model = model
        self.optimizer = optimizer
        self.strategy = strategy
        with strategy.scope():
            self.optimizer.build(model.trainable_variables)
        self._train_step = None
        self._eval_step = None

    @property
    def is_chief(self):
        """True on the one worker that writes logs and checkpoints (worker 0 or the chief)."""
        return _is_chief(self.strategy)

    def _global_sum(self, value):
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)

    def replica_results(self, batch, training):
        """This replica's loss and the values an epoch sums, for one batch.

        Args:
            batch: one replica's share of a batch, as the dataset yields it.
            training: bool.

        Returns:
            `(loss, sums)`: the loss to differentiate, scaled so that the replicas' losses
            add up to the global batch's mean, and a flat dict of tensors that are summed
            over the replicas and the epoch's batches (what `epoch_logs` reads).
        """
        raise NotImplementedError

    def epoch_logs(self, sums, batches):
        """The epoch's logs (a dict of floats) from `replica_results`' sums (NumPy) over
        `batches` batches."""
        raise NotImplementedError

    def _replica_train_step(self, batch):
        with tf.GradientTape() as tape:
            loss, sums = self.replica_results(batch, training=True)
        variables = self.model.trainable_variables
        gradients = tape.gradient(loss, variables)
        self.optimizer.apply(gradients, variables)  # sums the replicas' gradients
        return sums

    def _replica_eval_step(self, batch):
        return self.replica_results(batch, training=False)[1]

    def _distributed(self, replica_fn):
        strategy = self.strategy

        @tf.function(reduce_retracing=True)
        def step(batch):
            results = strategy.run(replica_fn, args=(batch,))
            return tf.nest.map_structure(
                lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None), results
            )

        return step

    def _run_epoch(self, dataset, step, start=None, every=None, on_steps=None):
        """One pass of `step` over `dataset`: the epoch's logs.

        `start` (`_Position`) continues an epoch interrupted after `start.step` batches,
        with the sums of those batches; every `every` batches `on_steps(batches, sums)` is
        called (the step backups).
        """
        batches = start.step if start else 0
        sums = start.sums if start else None
        options = tf.data.Options()  # shard examples, not files: TFDS folds have few files
        policy = tf.data.experimental.AutoShardPolicy.DATA
        options.experimental_distribute.auto_shard_policy = policy
        dataset = dataset.with_options(options)
        if batches:  # the batches the interrupted run had done (same order: replay_epochs)
            dataset = dataset.skip(batches)
        resumed_at = batches
        for batch in self.strategy.experimental_distribute_dataset(dataset):
            # Backed up when a further batch exists: the epoch's end has its own backup.
            if every and on_steps and batches > resumed_at and batches % every == 0:
                on_steps(batches, sums)
            results = step(batch)  # summed on the device; read back once per epoch
            sums = results if sums is None else tf.nest.map_structure(tf.add, sums, results)
            batches += 1
        if not batches:
            raise ValueError("The dataset yielded no batch.")
        return self.epoch_logs(tf.nest.map_structure(lambda v: v.numpy(), sums), batches)

    def train_on_dataset(self, dataset, start=None, every=None, on_steps=None):
        """One pass over `dataset`, training; returns its `epoch_logs`.

        `start`, `every` and `on_steps` resume an interrupted epoch and back it up every
        `every` steps (`fit`'s `backup_every_steps`).
        """
        if self._train_step is None:
            self._train_step = self._distributed(self._replica_train_step)
        return self._run_epoch(dataset, self._train_step, start, every, on_steps)

    def evaluate(self, dataset):
        """The `epoch_logs` of one pass over `dataset` without updates."""
        if self._eval_step is None:
            self._eval_step = self._distributed(self._replica_eval_step)
        return self._run_epoch(dataset, self._eval_step)

    def fit(self, dataset, epochs, validation_data=None, log_path=None, checkpoint_path=None,
            monitor="val_expression_uar", mode="max", verbose=1, callbacks=None,
            tensorboard_dir=None, backup_dir=None, backup_every_steps=None,
            save_best_only=True):  # fmt: skip
        """Trains for `epochs`; keeps the best checkpoint on `monitor` (or the last one).

        Args:
            dataset: training `tf.data.Dataset` of global batches.
            epochs: int.
            validation_data: optional dataset evaluated after each epoch.
            log_path: optional CSV file for the per-epoch logs (written by the chief only).
            checkpoint_path: optional `.keras` path for the best model (chief only; the last
                one with `save_best_only=False`).
            monitor: str. The log that picks the best epoch (e.g. `val_expression_uar`,
                `val_loss`); without validation data, its training counterpart.
            mode: str. `max` or `min`: which way `monitor` improves.
            verbose: 0 silent, 1 one line per epoch (chief only).
            callbacks: Keras callbacks that act on epoch logs, run on every worker with the
                same (globally reduced) logs, so every worker takes the same decision:
                `ReduceLROnPlateau` (it changes this trainer's optimizer), `EarlyStopping`,
                `TerminateOnNaN`. Callbacks that need `fit`'s internals (`TensorBoard`,
                `BackupAndRestore`, `ModelCheckpoint`, `CSVLogger`) are refused: use
                `tensorboard_dir`, `checkpoint_path` and `log_path`.
            tensorboard_dir: optional folder for per-epoch scalars (chief only), laid out as
                Keras' `TensorBoard` callback does: `train/` and `validation/`, `epoch_<log>`.
            backup_dir: optional folder (one per worker; no shared file system needed). At
                the end of every epoch (and every `backup_every_steps` steps) each worker
                saves the model's and the optimizer's variables (learning rate and step count
                included), its place in the epoch with the epoch's running loss sums, and
                the best score; a restarted cluster continues from the newest backup that
                every worker holds, at the same batch of the same epoch order
                (`replay_epochs`), and the folder is removed when training ends. The
                callbacks' own counters (plateau and early stopping patience) start again
                after a restart, as with Keras' `BackupAndRestore`.
            backup_every_steps: optional int. Also back up every this many training steps
                within an epoch (long epochs lose less work to a failure).
            save_best_only: bool. False saves `checkpoint_path` after every epoch.

        Returns:
            list of per-epoch log dicts (with the `learning_rate` of each epoch).
        """
        if backup_every_steps is not None and (backup_dir is None or backup_every_steps < 1):
            raise ValueError(
                f"backup_every_steps={backup_every_steps} needs a backup_dir and a positive "
                "step count."
            )
        chief = self.is_chief
        callbacks = self._callbacks(callbacks)
        writers = _summary_writers(tensorboard_dir) if chief and tensorboard_dir else None
        history = []
        backup = _Backup(self, backup_dir) if backup_dir else None
        position = backup.restore() if backup is not None else _Position()
        self.resumed_from = (position.epoch, position.step)
        best = position.best
        if backup is not None and (position.epoch or position.step):
            replay_epochs(dataset, position.epoch)  # epoch k's order, not epoch 0's
            if chief and verbose:
                print(f"resuming from the backup of epoch {position.epoch + 1}, step "
                      f"{position.step}", flush=True)  # fmt: skip
        callbacks.on_train_begin()
        for epoch in range(position.epoch, epochs):
            start = time.time()
            callbacks.on_epoch_begin(epoch)
            learning_rate = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))

            def save_steps(step, sums, epoch=epoch, best=best):
                backup.save(_Position(epoch, step, sums, best))

            resumed = position if epoch == position.epoch and position.step else None
            logs = {"epoch": epoch, **self.train_on_dataset(
                dataset, resumed, backup_every_steps, save_steps if backup else None
            )}  # fmt: skip
            if validation_data is not None:
                logs.update({f"val_{k}": v for k, v in self.evaluate(validation_data).items()})
            logs["learning_rate"] = learning_rate
            logs["seconds"] = time.time() - start
            history.append(logs)
            if writers:
                _write_summaries(writers, logs, epoch)
            key = monitor if monitor in logs else monitor.removeprefix("val_")  # no val data
            score = logs[key] if mode == "max" else -logs[key]
            improved = best is None or score > best
            best = score if improved else best
            if chief and checkpoint_path and (improved or not save_best_only):
                self.model.save(checkpoint_path)
            if chief and log_path:
                _append_csv(log_path, logs)
            if chief and verbose:
                text = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "epoch")
                print(f"epoch {epoch + 1}/{epochs}  {text}", flush=True)
            callbacks.on_epoch_end(epoch, {k: v for k, v in logs.items() if k != "epoch"})
            if backup is not None:
                backup.save(_Position(epoch + 1, 0, None, best))
            if self.model.stop_training:
                break
        callbacks.on_train_end()
        if backup is not None:
            backup.remove()
        return history

    _UNSUPPORTED_CALLBACKS = ("TensorBoard", "BackupAndRestore", "ModelCheckpoint", "CSVLogger")

    def _callbacks(self, callbacks):
        """A `CallbackList` on the model, whose `optimizer` is this trainer's."""
        callbacks = list(callbacks or [])
        for callback in callbacks:
            if type(callback).__name__ in self._UNSUPPORTED_CALLBACKS:
                raise ValueError(
                    f"{type(callback).__name__} needs Keras fit's internals; {type(self).__name__}"
                    " has tensorboard_dir, checkpoint_path and log_path instead."
                )
        self.model.optimizer = self.optimizer  # what ReduceLROnPlateau adjusts
        self.model.stop_training = False
        return keras.callbacks.CallbackList(callbacks, model=self.model)


class _Position:
    """Where training stands: the epoch, the batches done in it with their summed results
    (`_run_epoch`'s `sums`), and the best score so far."""

    def __init__(self, epoch=0, step=0, sums=None, best=None):
        self.epoch, self.step, self.sums, self.best = epoch, step, sums, best

    def to_json(self):
        sums = None
        if self.sums is not None:  # a flat dict of tensors (replica_results' sums)
            sums = {k: keras.ops.convert_to_numpy(v).tolist() for k, v in self.sums.items()}
        return json.dumps({"epoch": self.epoch, "step": self.step, "sums": sums,
                           "best": self.best})  # fmt: skip

    @classmethod
    def from_json(cls, text):
        state = json.loads(text)
        sums = state["sums"]
        if sums is not None:
            sums = {k: tf.constant(v, tf.float32) for k, v in sums.items()}
        return cls(state["epoch"], state["step"], sums, state["best"])


class _Backup:
    """Per-worker checkpoints of a `DistributedTrainer`'s whole training state.

    Numbered by the optimizer's step count; the two newest are kept, so that when a worker
    died while saving, the cluster can fall back to the one before, which every worker has.
    """

    def __init__(self, trainer, folder):
        self.folder = folder
        self.strategy = trainer.strategy
        self.iterations = trainer.optimizer.iterations
        self.progress = tf.Variable(_Position().to_json(), dtype=tf.string, trainable=False)
        checkpoint = tf.train.Checkpoint(
            model=list(trainer.model.variables), optimizer=list(trainer.optimizer.variables),
            progress=self.progress,
        )  # fmt: skip
        self.manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=2)

    def _gathered(self, value):
        """`value` (a float) of every worker, gathered."""
        local = tf.constant([value], tf.float64)
        gathered = self.strategy.run(
            lambda: tf.distribute.get_replica_context().all_gather(local, axis=0)
        )
        return [float(v) for v in self.strategy.experimental_local_results(gathered)[0].numpy()]

    def restore(self):
        """The `_Position` of the newest backup that every worker holds (a fresh one
        without backups)."""
        numbers = {int(path.rsplit("-", 1)[1]): path for path in self.manager.checkpoints}
        newest = self._gathered(max(numbers, default=-1))
        if max(newest) < 0:
            return _Position()
        target = int(min(newest))
        held = self._gathered(float(target in numbers))
        if target < 0 or min(held) < 1:
            raise RuntimeError(
                f"{self.folder}: the workers hold no backup in common (newest of each worker: "
                f"step {', '.join(str(int(n)) for n in newest)}). Remove every worker's backup "
                "folder to restart from scratch."
            )
        self.manager.checkpoint.restore(numbers[target]).assert_consumed()
        return _Position.from_json(self.progress.numpy().decode())

    def save(self, position):
        self.progress.assign(position.to_json())
        self.manager.save(checkpoint_number=int(self.iterations.numpy()))

    def remove(self):
        tf.io.gfile.rmtree(self.folder)


def _is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0)


def _summary_writers(folder):
    return {part: tf.summary.create_file_writer(os.path.join(folder, part))
            for part in ("train", "validation")}  # fmt: skip


def _write_summaries(writers, logs, epoch):
    for key, value in logs.items():
        if key in ("epoch", "seconds"):
            continue
        part = "validation" if key.startswith("val_") else "train"
        with writers[part].as_default():
            tf.summary.scalar(f"epoch_{key.removeprefix('val_')}", value, step=epoch)
    for writer in writers.values():
        writer.flush()


def _append_csv(path, logs):
    new = not os.path.exists(path)
    with open(path, "a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(logs))
        if new:
            writer.writeheader()
        writer.writerow(logs)
