"""More frames per clip than the model takes: temporal jitter in training, evenly spaced test
views averaged in evaluation (MAE-DFER's multi-view protocol)."""

import json
import os

import numpy as np
import pytest

import evaluate
import train
from mtcae_keras.data.input_pipeline import load_builder
from mtcae_keras.data.input_pipeline import localisation_statistics
from mtcae_keras.data.input_pipeline import make_fold_datasets
from mtcae_keras.data.input_pipeline import normalize_video
from mtcae_keras.data.input_pipeline import temporal_choices
from mtcae_keras.data.input_pipeline import temporal_indices
from mtcae_keras.data.input_pipeline import view_offsets


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def frames32(data_dir):
    return load_builder("synthetic_faces", data_dir=data_dir, config="tiny_frames32",
                        prepare=True)  # fmt: skip


def _views(views, stored, frames, sampling):
    return [list(temporal_indices(stored, frames, offset, sampling).numpy())
            for offset in view_offsets(views, stored, frames, sampling)]  # fmt: skip


def test_views_are_evenly_spaced_and_cover_the_clip():
    # Segments (MAE-DFER): two views are the start and the end of the clip, one the middle.
    assert _views(2, 32, 16, "segment") == [list(range(16)), list(range(16, 32))]
    assert _views(1, 32, 16, "segment") == [list(range(8, 24))]
    assert [v[0] for v in _views(3, 40, 16, "segment")] == [0, 12, 24]  # evenly spaced starts
    # Phases: every r-th frame; r views are every phase, so they cover the clip once.
    assert _views(2, 32, 16, "phase") == [list(range(0, 32, 2)), list(range(1, 32, 2))]
    four = _views(4, 64, 16, "phase")
    assert sorted(np.concatenate(four).tolist()) == list(range(64))
    assert all(np.all(np.diff(v) == 4) for v in four)
    assert _views(1, 32, 16, "phase") == [list(range(1, 32, 2))]
    for sampling in ("segment", "phase"):  # 16 stored frames: today's clip, whatever the offset
        for offset in (0.0, 0.5, 0.99):
            assert list(temporal_indices(16, 16, offset, sampling).numpy()) == list(range(16))
        assert _views(1, 16, 16, sampling) == [list(range(16))]
    # Training draws every start (segments) with the jitter's uniform offsets.
    starts = {int(temporal_indices(20, 16, u, "segment")[0]) for u in np.linspace(0, 0.999, 50)}
    assert starts == set(range(5))
    with pytest.raises(ValueError, match="multiple of 12"):
        temporal_choices(32, 12, "phase")
    with pytest.raises(ValueError, match="3 view.*2 distinct phase"):
        view_offsets(3, 32, 16, "phase")
    with pytest.raises(ValueError, match="stores 8 frames"):
        temporal_choices(8, 16, "segment")


def _stored(builder, split):
    """Decoded test-split examples in their stored order, all frames."""
    return list(builder.as_dataset(split=split).as_numpy_iterator())


@pytest.mark.parametrize("sampling", ["segment", "phase"])
def test_views_and_training_jitter_take_the_frames_and_labels_of_one_sample(frames32, sampling):
    stored = _stored(frames32, "fold0")
    expected = {name: np.stack([e[name] for e in stored]) for name in ("video", "boxes")}
    take = {"segment": lambda a, k: a[:, k : k + 16], "phase": lambda a, k: a[:, k::2]}[sampling]
    cases = {"segment": ((0.0, 0), (0.5, 8), (0.99, 16)),
             "phase": ((0.25, 0), (0.5, 1), (0.75, 1))}[sampling]  # fmt: skip
    for offset, start in cases:
        test = make_fold_datasets(frames32, 0, batch_size=6, num_frames=16, eval_offset=offset,
                                  temporal_sampling=sampling)["test"]  # fmt: skip
        video, targets, weights = next(iter(test))
        assert video.shape == (6, 16, 32, 32, 3)
        np.testing.assert_allclose(
            video.numpy(), normalize_video(take(expected["video"], start)).numpy(), atol=1e-6
        )
        np.testing.assert_array_equal(targets["boxes"].numpy(), take(expected["boxes"], start))
    # Training: each clip is one of its samples (the boxes tell which), and over three
    # epochs several different ones occur.
    train_set = make_fold_datasets(frames32, 0, batch_size=6, num_frames=16,
                                   temporal_sampling=sampling)["train"]  # fmt: skip
    clips = [e for split in ("fold1", "fold2", "fold3", "fold4") for e in _stored(frames32, split)]
    choices = 17 if sampling == "segment" else 2
    lookup = {take(e["boxes"][None], k)[0].tobytes(): (e["clip_id"], k)
              for e in clips for k in range(choices)}  # fmt: skip
    drawn = {}
    for _ in range(3):
        for _, targets, _ in train_set:
            for boxes in targets["boxes"].numpy():
                clip, start = lookup[boxes.tobytes()]  # KeyError: not a sample of any clip
                drawn.setdefault(clip, set()).add(start)
    assert len(drawn) == 18 and len(set().union(*drawn.values())) >= 2
    # The standardisation statistics are those of every sample the jitter can draw.
    statistics = localisation_statistics(frames32, ["fold1", "fold2", "fold3", "fold4"],
                                         num_frames=16, temporal_sampling=sampling)  # fmt: skip
    every = np.concatenate([take(np.stack([e["boxes"] for e in clips]), k)
                            for k in range(choices)])  # fmt: skip
    np.testing.assert_allclose(statistics["boxes"][0], every.mean(0), rtol=1e-5, atol=1e-6)


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
    with np.load(os.path.join(run, "predictions.npz")) as data:  # one view: the middle one
        one_view = dict(data)
    assert evaluate.main([run, "--views", "3"]) == 0  # segments from frames 0, 8, 16
    metrics = json.loads(open(os.path.join(run, "metrics.json")).read())
    assert metrics["views"] == 3 and metrics["count"] == 6
    with np.load(os.path.join(run, "predictions.npz")) as data:
        views = dict(data)
    assert views["view_logits"].shape == (6, 3, 6)
    np.testing.assert_allclose(views["view_logits"][:, 1], one_view["logits"], atol=1e-5)
    logits = views["view_logits"]
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.exp(views["logits"]), probabilities.mean(1), rtol=1e-5)
    assert views["pred_boxes"].shape == (6, 48, 4)  # every view's frames
    with pytest.raises(SystemExit, match="18 view.*17 distinct segment"):
        evaluate.main([run, "--views", "18"])
    with pytest.raises(SystemExit, match="multiple of 12"):
        train.main(argv + ["--clip-frames", "12", "--temporal-sampling", "phase"])
