"""MTCNN labels on the real CREMA-D clips, and the no-face fill rule."""

import numpy as np
import pytest

from mtcae_keras.data.mtcnn_labeler import MTCNNLabeler
from mtcae_keras.data.traced_mtcnn import TracedMTCNN
from mtcae_keras.data.video_reader import read_video
from tests.test_video_reader import crema_d_clips


@pytest.fixture(scope="module")
def labeler():
    return MTCNNLabeler()


def test_real_clips_have_faces_and_sane_labels(labeler):
    for path in crema_d_clips():
        frames, _ = read_video(path)
        labels = labeler.label(frames)
        assert labels["face_found"].sum() >= 15, path  # a face in (nearly) every frame
        found = labels["face_found"]
        boxes, points = labels["boxes"][found], labels["landmarks"][found].reshape(-1, 5, 2)
        assert (boxes >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 1 + 1e-6).all()
        assert (boxes[:, 1] + boxes[:, 3] <= 1 + 1e-6).all()
        assert (boxes[:, 2] > 0.1).all()  # a talking head, not a speck
        for box, pts in zip(boxes, points, strict=True):
            x, y, w, h = box
            for px, py in pts[:3]:  # eyes and nose inside the box
                assert x <= px <= x + w and y <= py <= y + h
            assert pts[0, 0] < pts[1, 0]  # image-left eye first
            assert pts[2, 1] > pts[:2, 1].max()  # nose below the eyes
            assert pts[3:, 1].min() > pts[2, 1]  # mouth below the nose


def test_frames_without_a_face_take_the_nearest_labels(labeler):
    frames, _ = read_video(crema_d_clips()[0])
    frames = frames.copy()
    blank = np.random.default_rng(0).integers(100, 110, frames.shape[1:], dtype=np.uint8)
    for t in (0, 1, 7):
        frames[t] = blank
    labels = labeler.label(frames)
    assert not labels["face_found"][[0, 1, 7]].any()
    assert labels["face_found"][[2, 6, 8]].all()
    np.testing.assert_array_equal(labels["boxes"][0], labels["boxes"][2])
    np.testing.assert_array_equal(labels["boxes"][1], labels["boxes"][2])
    np.testing.assert_array_equal(labels["landmarks"][7], labels["landmarks"][6])  # tie: earlier


def test_a_clip_without_any_face_is_all_zeros_and_not_found(labeler):
    frames = np.random.default_rng(1).integers(0, 255, (16, 224, 224, 3), dtype=np.uint8)
    labels = labeler.label(frames)
    assert not labels["face_found"].any()
    assert not labels["boxes"].any() and not labels["landmarks"].any()


def test_traced_mtcnn_detects_bit_for_bit_what_mtcnn_does():
    from mtcnn import MTCNN

    reference, traced = MTCNN(), TracedMTCNN()
    clips = [list(read_video(path)[0]) for path in crema_d_clips()[:3]]
    noise = list(np.random.default_rng(1).integers(0, 255, (4, 224, 224, 3), dtype=np.uint8))
    for frames in [*clips, noise]:
        assert traced.detect_faces(frames) == reference.detect_faces(frames)
    frames = clips[0]
    assert sum(map(len, traced.detect_faces(frames))) >= 16
    assert traced.detect_faces(frames[3]) == reference.detect_faces(frames[3])  # one image
    np.testing.assert_array_equal(  # the other output options
        traced.detect_faces(frames[:5], output_type="numpy", box_format="xyxy"),
        reference.detect_faces(frames[:5], output_type="numpy", box_format="xyxy"),
    )
    assert traced.detect_faces(noise, output_type="numpy").shape == (0, 16)
    # One trace per network for every pyramid scale and number of proposals.
    assert [stage.model.experimental_get_tracing_count() for stage in traced.stages] == [1, 1, 1]


def test_the_labelling_pool_honours_traced_and_labels_the_same_either_way():
    from mtcnn import MTCNN

    from mtcae_keras.data import clip_labelling_pool

    path, results = crema_d_clips()[1], {}
    for traced, kind in ((False, MTCNN), (True, TracedMTCNN)):
        pool = clip_labelling_pool.ClipLabellingPool(num_workers=1, progress=False, traced=traced)
        [(_, _, results[traced], _, _)] = pool.imap([path])
        assert type(clip_labelling_pool._WORKER["labeler"].detector) is kind
    for key in results[True]:
        np.testing.assert_array_equal(results[True][key], results[False][key])
