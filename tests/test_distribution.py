"""MirroredStrategy over two logical CPUs equals one device at the same global batch."""

import os
import subprocess
import sys
import textwrap

import numpy as np

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
