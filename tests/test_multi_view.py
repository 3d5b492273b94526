"""More frames per clip than the model takes: temporal jitter in training, evenly spaced test
views averaged in evaluation (MAE-DFER's multi-view protocol)."""

import json
import os

import numpy as np
import pytest

import evaluate
import train
from mtcae_keras.data.input_pipeline import frame_ratio
from mtcae_keras.data.input_pipeline import load_builder
from mtcae_keras.data.input_pipeline import make_fold_datasets
from mtcae_keras.data.input_pipeline import normalize_video
from mtcae_keras.data.input_pipeline import temporal_indices
from mtcae_keras.data.input_pipeline import view_offsets


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def frames32(data_dir):
    return load_builder("synthetic_faces", data_dir=data_dir, config="tiny_frames32",
                        prepare=True)  # fmt: skip


def test_views_are_evenly_spaced_and_cover_the_clip():
    views = [temporal_indices(32, 16, offset).numpy() for offset in view_offsets(2)]
    assert [list(v) for v in views] == [list(range(0, 32, 2)), list(range(1, 32, 2))]
    four = [temporal_indices(64, 16, offset).numpy() for offset in view_offsets(4)]
    assert sorted(np.concatenate(four).tolist()) == list(range(64))  # every frame once
    assert all(np.all(np.diff(v) == 4) for v in four)  # evenly spaced
    assert list(temporal_indices(32, 16, 0.5).numpy()) == list(range(1, 32, 2))  # 1 view
    for offset in (0.0, 0.5, 0.99):  # 16 stored frames: today's clip, whatever the offset
        assert list(temporal_indices(16, 16, offset).numpy()) == list(range(16))
    with pytest.raises(ValueError, match="multiple of 12"):
        frame_ratio(32, 12)


def _stored(builder, split):
    """Decoded test-split examples in their stored order, all frames."""
    return list(builder.as_dataset(split=split).as_numpy_iterator())


def test_test_views_and_training_jitter_take_the_frames_and_labels_of_a_phase(frames32):
    stored = _stored(frames32, "fold0")
    expected = {name: np.stack([e[name] for e in stored]) for name in ("video", "boxes")}
    for offset, phase in ((0.25, 0), (0.75, 1), (0.5, 1)):
        test = make_fold_datasets(frames32, 0, batch_size=6, num_frames=16,
                                  eval_offset=offset)["test"]  # fmt: skip
        video, targets, weights = next(iter(test))
        assert video.shape == (6, 16, 32, 32, 3)
        np.testing.assert_allclose(
            video.numpy(), normalize_video(expected["video"][:, phase::2]).numpy(), atol=1e-6
        )
        np.testing.assert_array_equal(targets["boxes"].numpy(), expected["boxes"][:, phase::2])
    # Training: each clip is one of its two phases, and over epochs both phases occur.
    train_set = make_fold_datasets(frames32, 0, batch_size=6, num_frames=16)["train"]
    phases = {}
    everything = {
        e["clip_id"].decode(): e for split in ("fold1", "fold2", "fold3", "fold4")
        for e in _stored(frames32, split)
    }  # fmt: skip
    boxes_to_clip = {
        (clip, phase): e["boxes"][phase::2].tobytes()
        for clip, e in everything.items() for phase in (0, 1)
    }  # fmt: skip
    lookup = {value: key for key, value in boxes_to_clip.items()}
    for _ in range(3):
        for _, targets, _ in train_set:
            for boxes in targets["boxes"].numpy():
                clip, phase = lookup[boxes.tobytes()]  # KeyError: not a phase of any clip
                phases.setdefault(clip, set()).add(phase)
    assert len(phases) == 18 and {0, 1} == set().union(*phases.values())


def test_one_view_of_a_16_frame_dataset_is_the_stored_clip(data_dir):
    tiny = load_builder("synthetic_faces", data_dir=data_dir, config="tiny", prepare=True)
    stored = np.stack([e["video"] for e in _stored(tiny, "fold0")])
    for offset in (0.5, 0.9):
        test = make_fold_datasets(tiny, 0, batch_size=6, num_frames=16, eval_offset=offset)
        video = next(iter(test["test"]))[0].numpy()
        np.testing.assert_array_equal(video, normalize_video(stored).numpy())


@pytest.mark.slow
def test_train_on_32_stored_frames_and_average_two_test_views(frames32, data_dir, tmp_path,
                                                              capsys):  # fmt: skip
    run = str(tmp_path / "run")
    argv = ["--dataset", "synthetic_faces", "--dataset-config", "tiny_frames32", "--fold", "0",
            "--epochs", "1", "--batch-size", "6", "--verbose", "0", "--jit-compile", "off",
            "--strategy", "fs_mlp", "--data-dir", data_dir, "--output", run]  # fmt: skip
    assert train.main(argv) == 0
    config = json.loads(open(os.path.join(run, "config.json")).read())
    assert config["stored_frames"] == 32 and config["model_frames"] == 16
    with np.load(os.path.join(run, "predictions.npz")) as data:  # one view: the middle phase
        one_view = dict(data)
    assert evaluate.main([run, "--views", "2"]) == 0
    metrics = json.loads(open(os.path.join(run, "metrics.json")).read())
    assert metrics["views"] == 2 and metrics["count"] == 6
    with np.load(os.path.join(run, "predictions.npz")) as data:
        two_views = dict(data)
    assert two_views["view_logits"].shape == (6, 2, 6)
    # View 1 of 2 (offset 0.75) is the phase one view takes (offset 0.5).
    np.testing.assert_allclose(two_views["view_logits"][:, 1], one_view["logits"], atol=1e-5)
    logits = two_views["view_logits"]
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.exp(two_views["logits"]), probabilities.mean(1), rtol=1e-5)
    assert two_views["pred_boxes"].shape == (6, 32, 4)  # both views' frames
    with pytest.raises(SystemExit, match="2 distinct view"):
        evaluate.main([run, "--views", "3"])
    with pytest.raises(SystemExit, match="not a multiple of 12"):
        train.main(argv + ["--clip-frames", "12"])
