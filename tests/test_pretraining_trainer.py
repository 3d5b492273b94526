"""Multi-worker pre-training: `PretrainingTrainer` equals `pretrainer.fit` on one device, and
`pretrain.py --distribute multi_worker` runs on two local workers."""

import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from mtcae_keras import MaskedVideoPretrainer, VideoMAEBackbone
    from mtcae_keras.pretraining import PretrainingTrainer

    def make_pretrainer():
        keras.utils.set_random_seed(0)
        encoder = VideoMAEBackbone.from_preset("videomae_tiny", num_frames=4)
        pretrainer = MaskedVideoPretrainer(
            encoder, mask_ratio=0.75, decoder_hidden_dim=16, decoder_num_layers=1,
            decoder_num_heads=2, target="appearance_motion", motion_weight=0.3)
        pretrainer.build()
        return pretrainer

    def optimizer():
        return keras.optimizers.AdamW(1e-3, weight_decay=0.05, beta_2=0.95)

    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((7, 4, 32, 32, 3)).astype("float32")
    # 7 clips in batches of 4: the last batch splits 2 + 1 over the replicas, so a plain
    # mean of the replicas' losses would differ from the global batch's.
    reference = make_pretrainer()
    masks = np.stack([reference.mask_generator(np.array([0, i])).numpy() for i in range(7)])
    data = tf.data.Dataset.from_tensor_slices({"pixel_values": pixels, "mask": masks}).batch(4)

    reference.compile(optimizer(), jit_compile=False)
    fit_loss = reference.fit(data, epochs=2, shuffle=False, verbose=0).history["loss"]

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        pretrainer = make_pretrainer()
        trainer = PretrainingTrainer(pretrainer, optimizer(), strategy)
    history = trainer.fit(data, epochs=2, monitor="loss", mode="min", verbose=0)
    weight_diff = max(float(np.abs(a - b).max())
                      for a, b in zip(reference.get_weights(), pretrainer.get_weights()))
    np.savez(sys.argv[1], fit_loss=fit_loss, loss=[h["loss"] for h in history],
             weight_diff=weight_diff)
    """
)


def test_two_replicas_equal_keras_fit_on_one_device(tmp_path):
    """Two replicas with uneven shares of the last batch, MAE-DFER's weighted joint target:
    the same epoch losses (rel 1e-5) and weights (1e-5) as `pretrainer.fit` on one device."""
    out = tmp_path / "result.npz"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", SCRIPT, str(out)], check=True, env=env, cwd=ROOT)
    result = np.load(out)
    np.testing.assert_allclose(result["loss"], result["fit_loss"], rtol=1e-5)
    assert result["fit_loss"][1] < result["fit_loss"][0]  # it trained
    assert float(result["weight_diff"]) <= 1e-5


def test_multi_worker_flags_the_loop_cannot_honour_are_refused(tmp_path):
    import pretrain

    with pytest.raises(SystemExit, match="--jit-compile on: the multi-worker loop"):
        pretrain.main(["--dataset", "synthetic_faces", "--distribute", "multi_worker",
                       "--jit-compile", "on", "--output", str(tmp_path / "run")])  # fmt: skip


@pytest.mark.slow
def test_pretrain_multi_worker_on_two_local_workers(tmp_path):
    """`pretrain.py --distribute multi_worker`, two worker processes on 127.0.0.1: the chief
    writes the log (learning rate included), the pre-trainer after each epoch, the encoder and
    the figure; the other worker writes none, and neither keeps a backup."""
    from mtcae_keras.data.input_pipeline import load_builder
    from tests.test_case import run_local_workers
    from tests.test_pretrain_cli import _args

    load_builder("synthetic_faces", data_dir=str(tmp_path / "tfds"), config="tiny", prepare=True)

    def argv(index):
        args = _args(tmp_path, 2)
        args[args.index("--output") + 1] = str(tmp_path / f"run{index}")
        args.remove("--jit-compile")
        args.remove("off")
        return ["pretrain.py", *args, "--distribute", "multi_worker"]

    assert run_local_workers(argv) == [0, 0]
    chief, other = tmp_path / "run0", tmp_path / "run1"
    with open(chief / "log.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert float(rows[1]["learning_rate"]) > 0 and np.isfinite(float(rows[1]["loss"]))
    config = json.loads((chief / "config.json").read_text())
    assert config["replicas"] == 2 and config["jit_compile"] is False
    for name in ("encoder.weights.h5", "reconstruction.png", "checkpoints/pretrainer.keras"):
        assert (chief / name).exists(), name
        assert not (other / name).exists(), name
    assert not (other / "log.csv").exists()
    assert not (chief / "backup").exists() and not (other / "backup").exists()  # finished
