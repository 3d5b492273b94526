"""`hf://OWNER/REPO` encoders from an offline Hugging Face cache equal the same files loaded
from their folder: a repository written by `transformers`' `save_pretrained` (the golden
fixture), a pre-training one with its decoder, and one holding a converted `.weights.h5`."""

import os
import shutil
import subprocess
import sys

from tests.test_case import fixture_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMIT = "0123456789abcdef0123456789abcdef01234567"

_CHECK = r"""
import sys
import numpy as np
from mtcae_keras import MaskedVideoPretrainer, VideoMAEBackbone
from mtcae_keras.models.encoders import load_encoder

def same(a, b):
    assert type(a) is type(b) and len(a.weights) == len(b.weights) > 0
    for x, y in zip(a.weights, b.weights, strict=True):
        inner = x.path.split("/", 1)[1]  # the model's own name differs between instances
        assert inner == y.path.split("/", 1)[1] and np.array_equal(x.numpy(), y.numpy()), inner

hf, converted, pretraining = sys.argv[1:4]
hub = VideoMAEBackbone.from_preset("hf://MCG-NJU/videomae-tiny-test")
local = VideoMAEBackbone.from_preset(hf)
same(hub, local)
clip = np.random.default_rng(0).random((1, 4, 32, 32, 3)).astype("float32")
assert np.array_equal(hub(clip), local(clip))
same(load_encoder("hf://MCG-NJU/videomae-tiny-test@main"), local)
same(load_encoder("hf://someone/converted"), VideoMAEBackbone.from_preset(converted))
same(MaskedVideoPretrainer.from_preset("hf://MCG-NJU/videomae-tiny-pretraining"),
     MaskedVideoPretrainer.from_preset(pretraining))
for name, message in (("hf://nobody/absent", "Cannot fetch hf://nobody/absent"),
                      ("hf://no-owner", "hf://OWNER/REPO")):
    try:
        load_encoder(name)
        raise AssertionError(name)
    except ValueError as error:
        assert message in str(error), error
print("hub ok")
"""


def _add_repo(cache, repo, files):
    """A repository in the Hub cache's layout: `refs/main` -> `snapshots/<commit>/`."""
    base = cache / f"models--{repo.replace('/', '--')}"
    snapshot = base / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for path in files:
        shutil.copy(path, snapshot / os.path.basename(path))
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(COMMIT)


def test_hub_names_load_from_an_offline_cache(tmp_path):
    from mtcae_keras import VideoMAEBackbone

    hf, pretraining = fixture_path("hf"), fixture_path("hf_pretraining")
    weights, config = VideoMAEBackbone.from_preset(hf).save_converted(
        str(tmp_path / "converted" / "tiny.weights.h5")
    )
    cache = tmp_path / "hub"
    _add_repo(cache, "MCG-NJU/videomae-tiny-test", [os.path.join(hf, f) for f in os.listdir(hf)])
    _add_repo(cache, "MCG-NJU/videomae-tiny-pretraining",
              [os.path.join(pretraining, f) for f in os.listdir(pretraining)])  # fmt: skip
    _add_repo(cache, "someone/converted", [weights, config])
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", _CHECK, hf, weights, pretraining],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and "hub ok" in result.stdout, result.stderr[-3000:]
