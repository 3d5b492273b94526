"""MirroredStrategy over two logical CPUs equals one device at the same global batch."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from mtcae_keras import VideoMAEBackbone, build_mtcae_model
    from mtcae_keras.training import compile_mtcae_model

    def run(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            backbone = VideoMAEBackbone.from_preset("videomae_tiny")
            model = build_mtcae_model(
                backbone, "cascaded_vit", 6, num_frames=4, decoder="tiny",
                freeze_encoder=False, dropout_rate=0.0, attention_dropout_rate=0.0,
                input_dropout_rate=0.0, head_dropout_rate=0.0)
            compile_mtcae_model(model, 6, jit_compile=False)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((8, 4, 32, 32, 3)).astype("float32")
        y = {"boxes": rng.random((8, 4, 4)).astype("float32"),
             "landmarks": rng.random((8, 4, 10)).astype("float32"),
             "expression": rng.integers(0, 6, 8)}
        mask = np.ones((8, 4), "float32")
        mask[1, 2] = mask[5, 0] = 0.0  # one masked frame in each replica's half
        w = {"boxes": mask, "landmarks": mask, "expression": np.ones(8, "float32")}
        history = model.fit(x, y, sample_weight=w, batch_size=8, epochs=3, shuffle=False,
                            verbose=0)
        return history.history["loss"], model.get_weights()

    devices = tf.config.list_logical_devices("CPU")
    assert len(devices) == 2, devices
    single_loss, single_weights = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored = tf.distribute.MirroredStrategy([d.name for d in devices])
    assert mirrored.num_replicas_in_sync == 2
    mirrored_loss, mirrored_weights = run(mirrored)
    np.savez(sys.argv[1], single_loss=single_loss, mirrored_loss=mirrored_loss,
             weight_diff=max(float(np.abs(a - b).max())
                             for a, b in zip(single_weights, mirrored_weights)))
    """
)


def test_mirrored_equals_single_device(tmp_path):
    out = tmp_path / "result.npz"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", SCRIPT, str(out)], check=True, env=env, cwd=root)
    result = np.load(out)
    np.testing.assert_allclose(result["mirrored_loss"], result["single_loss"], rtol=1e-5)
    assert result["single_loss"][2] < result["single_loss"][0]  # it trained
    assert float(result["weight_diff"]) <= 1e-5


WORKER_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    from mtcae_keras import VideoMAEBackbone, build_mtcae_model
    from mtcae_keras.training import compile_mtcae_model
    from mtcae_keras.training.distributed_trainer import DistributedTrainer

    out, mode = sys.argv[1], sys.argv[2]
    if mode == "multi_worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()

    def make_model():
        keras.utils.set_random_seed(0)
        backbone = VideoMAEBackbone.from_preset("videomae_tiny")
        return build_mtcae_model(
            backbone, "cascaded_vit", 6, num_frames=4, decoder="tiny", freeze_encoder=False,
            dropout_rate=0.0, attention_dropout_rate=0.0, input_dropout_rate=0.0,
            head_dropout_rate=0.0)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4, 32, 32, 3)).astype("float32")
    y = {"boxes": rng.random((16, 4, 4)).astype("float32"),
         "landmarks": rng.random((16, 4, 10)).astype("float32"),
         "expression": rng.integers(0, 6, 16)}
    mask = np.ones((16, 4), "float32")
    mask[1, 2] = mask[5, :] = mask[10, 1:] = 0.0  # uneven: replicas hold different face counts
    w = {"boxes": mask, "landmarks": mask, "expression": np.ones(16, "float32")}
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(8).with_options(options)

    with strategy.scope():
        model = make_model()
        optimizer = keras.optimizers.AdamW(1e-3, weight_decay=1e-3)
    trainer = DistributedTrainer(model, optimizer, strategy)
    history = trainer.fit(dataset, epochs=2, verbose=0)
    result = {"loss": [h["loss"] for h in history], "weights": model.get_weights()}
    evaluation = trainer.evaluate(dataset)
    result["eval"] = [evaluation["expression_uar"], evaluation["expression_accuracy"]]
    if mode == "single":  # UAR / WAR of the same weights by scikit-learn
        from sklearn.metrics import accuracy_score, recall_score
        predicted = model.predict(x, verbose=0)["expression"].argmax(-1)
        result["sklearn"] = [recall_score(y["expression"], predicted, average="macro"),
                             accuracy_score(y["expression"], predicted)]
    if mode == "single":  # the same two epochs through compile + fit on one device
        reference = make_model()
        compile_mtcae_model(reference, 6, jit_compile=False)
        fit = reference.fit(dataset, epochs=2, shuffle=False, verbose=0).history
        result["fit_loss"] = fit["loss"]
        result["fit_weights"] = reference.get_weights()
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {"index": 0})
    if task["index"] == 0:
        np.savez(out, loss=result["loss"], fit_loss=result.get("fit_loss", []),
                 eval=result["eval"], sklearn=result.get("sklearn", []),
                 **{f"w{i}": v for i, v in enumerate(result["weights"])},
                 **{f"f{i}": v for i, v in enumerate(result.get("fit_weights", []))})
    """
)


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_two_local_workers_equal_one_device(tmp_path):
    """`--distribute multi_worker`'s loop: two worker processes on 127.0.0.1 give the same
    losses and weights as one device at the same global batch, with uneven face masks."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    single = tmp_path / "single.npz"
    subprocess.run([sys.executable, "-c", WORKER_SCRIPT, str(single), "single"], check=True,
                   env=env, cwd=root, timeout=600)  # fmt: skip
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    multi = tmp_path / "multi.npz"
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, str(multi), "multi_worker"],
            env={**env, "TF_CONFIG": json.dumps(config)}, cwd=root,
        ))  # fmt: skip
    codes = [process.wait(timeout=600) for process in processes]
    assert codes == [0, 0]
    single, multi = np.load(single), np.load(multi)
    # Our loop on one device equals Keras fit with compile_mtcae_model's losses...
    np.testing.assert_allclose(single["loss"], single["fit_loss"], rtol=1e-5)
    count = len([k for k in single.files if k.startswith("w")])
    assert max(np.abs(single[f"w{i}"] - single[f"f{i}"]).max() for i in range(count)) <= 1e-5
    # ...and two workers equal one device.
    np.testing.assert_allclose(multi["loss"], single["loss"], rtol=1e-5)
    assert max(np.abs(multi[f"w{i}"] - single[f"w{i}"]).max() for i in range(count)) <= 1e-5
    assert single["loss"][1] < single["loss"][0]  # it trained
    # The loop's UAR / WAR (what picks the best checkpoint) are scikit-learn's, on any split.
    np.testing.assert_allclose(single["eval"], single["sklearn"], atol=1e-6)
    np.testing.assert_allclose(multi["eval"], single["eval"], atol=1e-6)


def _clips(count):
    """`count` random 4x32x32 clips with box, landmark and expression targets, and unit
    sample weights (every frame has a face)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((count, 4, 32, 32, 3)).astype("float32")
    y = {"boxes": rng.random((count, 4, 4)).astype("float32"),
         "landmarks": rng.random((count, 4, 10)).astype("float32"),
         "expression": rng.integers(0, 6, count)}  # fmt: skip
    w = {"boxes": np.ones((count, 4), "float32"), "landmarks": np.ones((count, 4), "float32"),
         "expression": np.ones(count, "float32")}  # fmt: skip
    return x, y, w


def test_trainer_callbacks_behave_as_under_fit(tmp_path):
    """Plateau reduction and early stopping through DistributedTrainer equal Keras fit's
    (same model, data and callbacks, one device); TensorBoard scalars are written."""
    import keras
    import pytest
    import tensorflow as tf

    from mtcae_keras import VideoMAEBackbone
    from mtcae_keras import build_mtcae_model
    from mtcae_keras.training import compile_mtcae_model
    from mtcae_keras.training.distributed_trainer import DistributedTrainer

    def make_model():
        keras.utils.set_random_seed(0)
        return build_mtcae_model(
            VideoMAEBackbone.from_preset("videomae_tiny"), "cascaded_vit", 6, num_frames=4,
            decoder="tiny", freeze_encoder=False)  # fmt: skip

    def callbacks():  # min_delta 10: only the first epoch counts as an improvement
        return [keras.callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=1, min_delta=10),
                keras.callbacks.EarlyStopping("loss", patience=2, min_delta=10)]  # fmt: skip

    x, y, w = _clips(8)
    dataset = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(4)

    reference = make_model()
    compile_mtcae_model(reference, 6, jit_compile=False)
    fit = reference.fit(dataset, epochs=10, shuffle=False, verbose=0, callbacks=callbacks())
    model = make_model()
    trainer = DistributedTrainer(
        model, keras.optimizers.AdamW(1e-3, weight_decay=1e-3), tf.distribute.get_strategy()
    )
    history = trainer.fit(dataset, 10, validation_data=dataset, verbose=0,
                          callbacks=callbacks(), tensorboard_dir=str(tmp_path / "tb"))  # fmt: skip
    assert len(history) == len(fit.history["loss"]) == 3  # stopped early, as fit did
    np.testing.assert_allclose([h["learning_rate"] for h in history], [1e-3, 1e-3, 5e-4])
    np.testing.assert_allclose(fit.history["learning_rate"], [1e-3, 1e-3, 5e-4])
    np.testing.assert_allclose([h["loss"] for h in history], fit.history["loss"], rtol=1e-5)
    for part, tag in (("train", "epoch_loss"), ("validation", "epoch_expression_uar")):
        files = list((tmp_path / "tb" / part).iterdir())
        events = [tf.compat.v1.Event.FromString(r.numpy()) for f in files
                  for r in tf.data.TFRecordDataset(str(f))]  # fmt: skip
        steps = [e.step for e in events for v in e.summary.value if v.tag == tag]
        assert steps == [0, 1, 2], (part, tag)
    with pytest.raises(ValueError, match="TensorBoard needs Keras fit's internals"):
        trainer.fit(dataset, 1, callbacks=[keras.callbacks.TensorBoard(str(tmp_path))])


FAULT_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    from mtcae_keras import VideoMAEBackbone, build_mtcae_model
    from mtcae_keras.training.distributed_trainer import DistributedTrainer

    out, mode, backup = sys.argv[1], sys.argv[2], sys.argv[3]
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4, 32, 32, 3)).astype("float32")
    y = {"boxes": rng.random((64, 4, 4)).astype("float32"),
         "landmarks": rng.random((64, 4, 10)).astype("float32"),
         "expression": rng.integers(0, 6, 64)}
    w = {"boxes": np.ones((64, 4), "float32"), "landmarks": np.ones((64, 4), "float32"),
         "expression": np.ones(64, "float32")}

    def slow(*batch):  # a step long enough to be killed in the middle of an epoch
        time.sleep(0.05)
        return batch

    dataset = tf.data.Dataset.from_tensor_slices((x, y, w)).shuffle(
        64, seed=0, reshuffle_each_iteration=True).batch(4).map(
        lambda *b: tf.nest.pack_sequence_as(b, tf.py_function(
            slow, tf.nest.flatten(b), [t.dtype for t in tf.nest.flatten(b)])))
    dataset = dataset.map(lambda *b: tf.nest.map_structure(
        lambda t, s: tf.ensure_shape(t, s.shape), b,
        tf.nest.map_structure(lambda a: tf.TensorSpec((4,) + a.shape[1:]), (x, y, w))))
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = build_mtcae_model(
            VideoMAEBackbone.from_preset("videomae_tiny"), "cascaded_vit", 6, num_frames=4,
            decoder="tiny", freeze_encoder=False, dropout_rate=0.0, attention_dropout_rate=0.0,
            input_dropout_rate=0.0, head_dropout_rate=0.0)
        optimizer = keras.optimizers.AdamW(1e-3, weight_decay=1e-3)
    trainer = DistributedTrainer(model, optimizer, strategy)
    backup = backup if backup != "-" else None
    history = trainer.fit(dataset, 3, verbose=0, backup_dir=backup,
                          backup_every_steps=5 if backup else None)
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {"index": 0})
    if task["index"] == 0:
        np.savez(out, epochs=[h["epoch"] for h in history], resumed=trainer.resumed_from,
                 **{f"w{i}": v for i, v in enumerate(model.get_weights())})
    """
)


@pytest.mark.slow
def test_killed_worker_and_restarted_cluster_continue_from_the_backup(tmp_path):
    """Kill one of two workers in the middle of epoch 2 (the other then hangs and is killed
    too), restart both with the same command: they continue from their step backups in
    epoch 2 (every 5 of the 16 steps, the data reshuffled each epoch) and end with the
    weights of an uninterrupted two-worker run, within 1e-5."""
    import time

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    out = tmp_path / "multi.npz"

    def start(out, backup=True):
        processes = []
        for index in range(2):
            config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            processes.append(subprocess.Popen(
                [sys.executable, "-c", FAULT_SCRIPT, str(out), "multi_worker",
                 str(tmp_path / f"backup{index}") if backup else "-"],
                env={**env, "TF_CONFIG": json.dumps(config)}, cwd=root,
                stderr=open(tmp_path / f"worker{index}.log", "a"),
            ))  # fmt: skip
        return processes

    def logs():  # the workers' stderr, for a failure message
        return "\n".join(
            f"--- worker {i}:\n" + (tmp_path / f"worker{i}.log").read_text()[-3000:]
            for i in range(2)
        )

    reference = tmp_path / "reference.npz"
    assert [p.wait(timeout=600) for p in start(reference, backup=False)] == [0, 0], logs()
    processes = start(out)
    # Backups are numbered by the step count: 5, 10, 15, 16 (epoch 1's end), 21 (epoch 2,
    # step 5), 26, 31, 32. Kill when both have saved step 21; the epoch ends 11 steps later.
    markers = [tmp_path / f"backup{index}" / "checkpoint" for index in range(2)]

    def saved_step():
        texts = [m.read_text() if m.exists() else "" for m in markers]
        return min(int(t.split('"ckpt-')[1].split('"')[0]) if "ckpt-" in t else 0 for t in texts)

    deadline = time.time() + 600
    while saved_step() < 21 and time.time() < deadline:
        assert all(p.poll() is None for p in processes), "a worker ended before the kill"
        time.sleep(0.02)
    processes[1].kill()  # mid-epoch 2
    time.sleep(2)
    processes[0].kill()  # its collectives wait for worker 1 forever: restart the cluster
    for process in processes:
        process.wait(timeout=60)
    assert not out.exists()
    assert [p.wait(timeout=600) for p in start(out)] == [0, 0], logs()
    multi, uninterrupted = np.load(out), np.load(reference)
    assert list(multi["epochs"]) == [1, 2]  # continued at epoch 2 (0-based 1), not from 0
    assert multi["resumed"][0] == 1 and multi["resumed"][1] in (5, 10, 15), multi["resumed"]
    assert list(uninterrupted["epochs"]) == [0, 1, 2]
    count = len([k for k in uninterrupted.files if k.startswith("w")])
    difference = max(np.abs(multi[f"w{i}"] - uninterrupted[f"w{i}"]).max() for i in range(count))
    assert difference <= 1e-5
    assert not (tmp_path / "backup0").exists()  # removed when training ended


def test_trainer_interrupted_mid_epoch_resumes_at_the_same_batch(tmp_path, monkeypatch):
    """A run that dies right after its backup at epoch 2, step 2 (of 6) resumes there, with the
    epoch's reshuffled order and its running loss sums: same weights and logs as a run that
    was never interrupted."""
    import keras
    import tensorflow as tf

    from mtcae_keras import VideoMAEBackbone
    from mtcae_keras import build_mtcae_model
    from mtcae_keras.training import strategy_trainer
    from mtcae_keras.training.distributed_trainer import DistributedTrainer

    x, y, w = _clips(12)

    def run(backup_dir=None):
        keras.utils.set_random_seed(0)
        model = build_mtcae_model(
            VideoMAEBackbone.from_preset("videomae_tiny"), "cascaded_vit", 6, num_frames=4,
            decoder="tiny", freeze_encoder=False, dropout_rate=0.0, attention_dropout_rate=0.0,
            input_dropout_rate=0.0, head_dropout_rate=0.0)  # fmt: skip
        dataset = tf.data.Dataset.from_tensor_slices((x, y, w))
        dataset = dataset.shuffle(12, seed=3, reshuffle_each_iteration=True).batch(2)
        trainer = DistributedTrainer(
            model, keras.optimizers.AdamW(1e-3, weight_decay=1e-3), tf.distribute.get_strategy()
        )
        history = trainer.fit(dataset, 3, verbose=0, backup_dir=backup_dir,
                              backup_every_steps=2 if backup_dir else None)  # fmt: skip
        return trainer, history, model.get_weights()

    _, uninterrupted, expected = run()
    saves, save = [], strategy_trainer._Backup.save

    def dies_after_the_fourth(self, position):  # epoch 0: steps 2, 4, end; epoch 1: step 2
        save(self, position)
        saves.append((position.epoch, position.step))
        if len(saves) == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(strategy_trainer._Backup, "save", dies_after_the_fourth)
    backup = str(tmp_path / "backup")
    with pytest.raises(KeyboardInterrupt):
        run(backup)
    assert saves == [(0, 2), (0, 4), (1, 0), (1, 2)]
    monkeypatch.setattr(strategy_trainer._Backup, "save", save)
    trainer, resumed, weights = run(backup)
    assert trainer.resumed_from == (1, 2)
    assert [h["epoch"] for h in resumed] == [1, 2]
    for key in ("loss", "boxes_loss", "expression_accuracy"):  # epoch 1 sums both parts
        np.testing.assert_allclose([h[key] for h in resumed], [h[key] for h in uninterrupted[1:]],
                                   rtol=1e-5)  # fmt: skip
    assert max(np.abs(a - b).max() for a, b in zip(weights, expected, strict=True)) <= 1e-5
    assert not os.path.exists(backup)
