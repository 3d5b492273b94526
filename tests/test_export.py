import os
import subprocess
import sys
import textwrap

import numpy as np

from mtcae_keras.data.input_pipeline import normalize_video
from mtcae_keras.export import export_saved_model
from tests.test_mtcae_model import tiny_model

FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    video = np.load(sys.argv[2])["video"]
    outputs = {k: v.numpy() for k, v in serve(video=tf.constant(video)).items()}
    assert not any(m.startswith("mtcae_keras") for m in sys.modules), "package imported"
    np.savez(sys.argv[3], **outputs)
    """
)


def test_saved_model_matches_keras_in_a_fresh_process(tmp_path):
    model = tiny_model("cascaded_vit")
    path = export_saved_model(model, str(tmp_path / "saved_model"), class_names=list("abcdef"))
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        video = rng.integers(0, 256, (batch, 4, 32, 32, 3), dtype=np.uint8)
        np.savez(tmp_path / "in.npz", video=video)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run(
            [sys.executable, "-c", FRESH_PROCESS, path, str(tmp_path / "in.npz"),
             str(tmp_path / "out.npz")],
            check=True, env=env, cwd=str(tmp_path),
        )  # fmt: skip
        served = dict(np.load(tmp_path / "out.npz"))
        expected = model.predict(np.asarray(normalize_video(video)), verbose=0)
        assert served["boxes"].shape == (batch, 4, 4)
        np.testing.assert_allclose(served["boxes"], expected["boxes"], atol=1e-5)
        np.testing.assert_allclose(served["landmarks"], expected["landmarks"], atol=1e-5)
        np.testing.assert_allclose(served["expression_logits"], expected["expression"], atol=1e-5)
        probabilities = served["expression_probabilities"]
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
        assert (probabilities.argmax(-1) == expected["expression"].argmax(-1)).all()
