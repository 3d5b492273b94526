"""Video decoding on the real CREMA-D clips and on bad input."""

import glob
import os

import numpy as np
import pytest

from mtcae_keras.data.video_reader import VideoDecodeError
from mtcae_keras.data.video_reader import read_video
from mtcae_keras.data.video_reader import sample_frame_indices
from mtcae_keras.data.video_reader import write_video

CREMA_D = os.environ.get("MTCAE_CREMA_D_DIR", "")


def crema_d_clips():
    clips = sorted(glob.glob(os.path.join(CREMA_D, "*.flv"))) if CREMA_D else []
    if not clips:
        pytest.skip("set MTCAE_CREMA_D_DIR to the folder of the six CREMA-D clips (shared/data)")
    return clips


def test_real_crema_d_flv_clips_decode():
    clips = crema_d_clips()
    assert len(clips) == 6
    for path in clips:
        frames, info = read_video(path)
        assert frames.shape == (16, 224, 224, 3) and frames.dtype == np.uint8
        assert (info["width"], info["height"]) == (480, 360)
        assert 30 <= info["frame_count"] <= 200 and abs(info["fps"] - 29.97) < 0.1
        assert info["indices"][0] == 0 and info["indices"][-1] == info["frame_count"] - 1
        assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 1.0  # frames differ
        assert frames.mean() > 20  # not black


def test_sampling_covers_the_whole_clip_and_stretches_short_ones():
    assert sample_frame_indices(100).tolist() == [
        0, 7, 13, 20, 26, 33, 40, 46, 53, 59, 66, 73, 79, 86, 92, 99
    ]  # fmt: skip
    short = sample_frame_indices(5)
    assert len(short) == 16 and sorted(set(short.tolist())) == [0, 1, 2, 3, 4]
    assert np.all(np.diff(short) >= 0)


def test_bad_files_give_a_clear_error_naming_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoDecodeError, match=r"empty\.mp4: empty file"):
        read_video(str(empty))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(VideoDecodeError, match="garbage.mp4: cannot be opened"):
        read_video(str(garbage))
    with pytest.raises(VideoDecodeError, match="file not found"):
        read_video(str(tmp_path / "missing.mp4"))


def test_truncated_real_clip(tmp_path):
    clips = crema_d_clips()
    data = open(clips[0], "rb").read()
    head = tmp_path / "head.flv"
    head.write_bytes(data[:20000])
    with pytest.raises(VideoDecodeError, match="no decodable frames"):
        read_video(str(head))
    half = tmp_path / "half.flv"
    half.write_bytes(data[: len(data) // 2])
    frames, info = read_video(str(half))  # the decodable part is used, and reported
    full = read_video(clips[0])[1]["frame_count"]
    assert frames.shape == (16, 224, 224, 3) and info["frame_count"] < full


def test_short_and_odd_resolution_clips(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (5, 30, 50, 3), dtype=np.uint8)
    path = write_video(str(tmp_path / "short.mp4"), frames)
    decoded, info = read_video(path, 16, 64)
    assert decoded.shape == (16, 64, 64, 3) and info["frame_count"] == 5
    assert (info["width"], info["height"]) == (50, 30)
    np.testing.assert_array_equal(decoded[0], decoded[1])  # frame 0 shown twice
