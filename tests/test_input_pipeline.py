import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from mtcae_keras.data.input_pipeline import fold_splits
from mtcae_keras.data.input_pipeline import normalize_video
from mtcae_keras.data.input_pipeline import random_flip
from mtcae_keras.data.input_pipeline import random_translate
from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer


def _clip():
    clip = SyntheticFaceRenderer(image_size=96, num_frames=4, nuisance=False).render(2, "FEA", 0)
    return {k: tf.constant(clip[k]) for k in ("video", "boxes", "landmarks")}, clip


@pytest.mark.parametrize("shift", [(5, -7), (-3, 4), (0, 0)])
def test_translation_moves_the_labels_with_the_pixels(shift):
    example, clip = _clip()
    moved = random_translate(example, shift=shift)
    dy, dx = shift
    for t in range(4):
        before = np.round(clip["landmarks"][t].reshape(5, 2) * 96).astype(int)
        after = np.round(moved["landmarks"][t].numpy().reshape(5, 2) * 96).astype(int)
        np.testing.assert_array_equal(after - before, [[dx, dy]] * 5)
        for (x0, y0), (x1, y1) in zip(before, after, strict=True):  # same pixel content
            np.testing.assert_array_equal(clip["video"][t, y0, x0], moved["video"][t, y1, x1])
    np.testing.assert_allclose(
        moved["boxes"][:, :2].numpy(), clip["boxes"][:, :2] + [dx / 96, dy / 96], atol=1e-6
    )
    assert moved["video"].shape == (4, 96, 96, 3)


def test_random_shifts_stay_within_the_limit_and_are_not_diagonal():
    """Inside tf.data, as training runs it: a graph, where two ops with one seed draw alike."""
    example, clip = _clip()
    shifts = []
    dataset = tf.data.Dataset.from_tensors(example).repeat(20)
    for moved in dataset.map(lambda e: random_translate(e, max_shift=0.05, seed=3)):
        delta = (moved["landmarks"].numpy() - clip["landmarks"]).reshape(-1, 2) * 96
        assert np.abs(delta).max() <= round(0.05 * 96) + 1e-3
        shifts.append(tuple(np.round(delta[2]).astype(int)))  # the nose: never clipped here
    dx, dy = np.array(shifts).T
    assert len(set(shifts)) >= 10  # it moves, and not always the same way
    assert np.mean(dx != dy) > 0.5  # both axes drawn independently, not along the diagonal
    assert dx.min() < 0 < dx.max() and dy.min() < 0 < dy.max()


def test_flip_mirrors_the_labels_with_the_pixels():
    renderer = SyntheticFaceRenderer(image_size=96, num_frames=4, nuisance=False)
    clip = renderer.render(2, "DIS", 0, return_masks=True)  # DIS: one-sided mouth
    example = {k: tf.constant(clip[k]) for k in ("video", "boxes", "landmarks")}
    flipped = random_flip(example, flip=True)
    np.testing.assert_array_equal(flipped["video"].numpy(), clip["video"][:, :, ::-1])
    for t in range(4):
        before = np.round(clip["landmarks"][t].reshape(5, 2) * 96).astype(int)
        after = np.round(flipped["landmarks"][t].numpy().reshape(5, 2) * 96).astype(int)
        # Image-left first again: the eyes and the mouth corners traded places.
        assert after[0, 0] < after[1, 0] and after[3, 0] < after[4, 0]
        mirrored = np.c_[95 - before[:, 0], before[:, 1]]
        np.testing.assert_array_equal(after[[1, 0, 2, 4, 3]], mirrored)
        for (x0, y0), (x1, y1) in zip(before, after[[1, 0, 2, 4, 3]], strict=True):
            np.testing.assert_array_equal(clip["video"][t, y0, x0], flipped["video"][t, y1, x1])
        # The box still encloses the mirrored head mask, as tightly as before.
        ys, xs = np.nonzero(clip["face_mask"][t][:, ::-1])
        x, y, w, h = flipped["boxes"][t].numpy() * 96
        assert abs(x - xs.min()) <= 2 and abs(x + w - xs.max()) <= 2
        assert abs(y - ys.min()) <= 2 and abs(y + h - ys.max()) <= 2
    unflipped = random_flip(example, flip=False)
    for key in example:
        np.testing.assert_array_equal(unflipped[key].numpy(), example[key].numpy())
    twice = random_flip(flipped, flip=True)
    np.testing.assert_allclose(twice["landmarks"].numpy(), clip["landmarks"], atol=1e-6)
    np.testing.assert_allclose(twice["boxes"].numpy(), clip["boxes"], atol=1e-6)


def test_fold_splits_and_normalisation():
    assert fold_splits(5, 4) == {
        "train": ["fold1", "fold2", "fold3"], "validation": ["fold0"], "test": ["fold4"]
    }  # fmt: skip
    with pytest.raises(ValueError, match="fold must be in"):
        fold_splits(5, 5)
    pixels = normalize_video(tf.constant([[[[255, 0, 124]]]], tf.uint8))
    np.testing.assert_allclose(
        pixels.numpy().reshape(3),
        [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (124 / 255 - 0.406) / 0.225], rtol=1e-5
    )  # fmt: skip


def test_normalisation_of_wide_frames_is_per_channel_in_every_mode():
    # normalize_pixels tiles the channel constants along each row of pixels (a faster
    # kernel than broadcasting them over the last axis): the values must stay per channel
    # with a real width, in eager mode, in a graph with unknown batch and frame counts (the
    # tiled path on dynamic shapes), in a graph of unknown rank (the plain path) and in
    # tf.data.
    from mtcae_keras.models.video_preprocessor import NORMALIZATIONS
    from mtcae_keras.models.video_preprocessor import normalize_pixels

    video = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 7, 3), dtype=np.uint8)
    mean, std = (np.array(v, np.float32) for v in NORMALIZATIONS["imagenet"])
    expected = (video.astype(np.float32) / 255.0 - mean) / std
    clips = tf.TensorSpec((None, None, 5, 7, 3), tf.uint8)
    dynamic = tf.function(normalize_pixels, input_signature=[clips])
    unranked = tf.function(normalize_pixels, input_signature=[tf.TensorSpec(None, tf.uint8)])
    batch = next(iter(tf.data.Dataset.from_tensor_slices(video).map(normalize_pixels).batch(2)))
    for got in (normalize_pixels(video), dynamic(video), unranked(video), batch):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-6)
    pixel = normalize_pixels(video[0, 0, 0, 0])  # one pixel: no row to tile
    np.testing.assert_allclose(np.asarray(pixel), expected[0, 0, 0, 0], rtol=1e-6)


@pytest.fixture(scope="module")
def tiny_builder(tmp_path_factory):
    from mtcae_keras.data.input_pipeline import load_builder

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    return load_builder("synthetic_faces", data_dir=data_dir, config="tiny", prepare=True)


def _labels_by_video(dataset):
    """{pixel-sum fingerprint of a clip: its label} over a batched (video, targets, ...) set."""
    found = {}
    for video, targets, *_ in dataset:
        for clip, label in zip(video.numpy(), targets["expression"].numpy(), strict=True):
            found[round(float(clip.sum()), 1)] = int(label)
    return found


def test_shuffled_labels_permute_the_training_labels_only(tiny_builder):
    from mtcae_keras.data.input_pipeline import make_fold_datasets

    true = make_fold_datasets(tiny_builder, 0, batch_size=8)
    control = make_fold_datasets(tiny_builder, 0, batch_size=8, shuffle_labels=3)
    true_train, control_train = _labels_by_video(true["train"]), _labels_by_video(control["train"])
    assert len(true_train) == 18 and true_train.keys() == control_train.keys()
    # Same class counts, different clip -> label pairing.
    assert sorted(true_train.values()) == sorted(control_train.values())
    changed = sum(true_train[k] != control_train[k] for k in true_train)
    assert changed >= 9, changed
    assert _labels_by_video(control["validation"]) == _labels_by_video(true["validation"])
    assert _labels_by_video(control["test"]) == _labels_by_video(true["test"])
    again = make_fold_datasets(tiny_builder, 0, batch_size=8, shuffle_labels=3)
    assert _labels_by_video(again["train"]) == control_train  # seeded


def test_training_mean_baseline_averages_the_training_folds_face_frames(tiny_builder, tmp_path):
    import json

    import tensorflow_datasets as tfds

    from mtcae_keras.training.run_evaluation import training_mean_localisation

    config = {"dataset_name": "synthetic_faces", "dataset_config": "tiny", "fold": 2,
              "data_dir": str(tiny_builder.data_dir_root)}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    boxes, landmarks = training_mean_localisation(str(tmp_path))
    # Fold 2 is tested, fold 3 validates: the mean is over folds 0, 1 and 4 only.
    examples = list(tfds.as_numpy(tiny_builder.as_dataset(split="fold0+fold1+fold4")))
    assert len(examples) == 18
    np.testing.assert_allclose(boxes, np.mean([e["boxes"] for e in examples], 0), atol=1e-6)
    np.testing.assert_allclose(landmarks, np.mean([e["landmarks"] for e in examples], 0), atol=1e-6)


def test_localisation_statistics_are_the_training_folds_mean_and_std(tiny_builder):
    import tensorflow_datasets as tfds

    from mtcae_keras.data.input_pipeline import builder_fold_splits
    from mtcae_keras.data.input_pipeline import localisation_statistics

    splits = builder_fold_splits(tiny_builder, 2)
    assert splits == {"train": ["fold0", "fold1", "fold4"], "validation": ["fold3"],
                      "test": ["fold2"]}  # fmt: skip
    statistics = localisation_statistics(tiny_builder, splits["train"])
    examples = list(tfds.as_numpy(tiny_builder.as_dataset(split="fold0+fold1+fold4")))
    for key in ("boxes", "landmarks"):
        values = np.array([e[key] for e in examples])
        mean, std = statistics[key]
        np.testing.assert_allclose(mean, values.mean(0), atol=1e-6)
        np.testing.assert_allclose(std, np.maximum(values.std(0), 1e-3), rtol=1e-4, atol=1e-6)
        assert std.min() > 1e-3  # real spread, not the floor: the faces move within clips


def test_face_frame_mean_skips_frames_without_a_face():
    from mtcae_keras.data.input_pipeline import face_frame_mean

    values = np.array([[[1.0], [10.0], [5.0]], [[3.0], [99.0], [7.0]]])  # (clips, frames, 1)
    face = np.array([[True, True, False], [True, False, False]])
    # Frame 0: both clips; frame 1: clip 0 only (99 ignored); frame 2: no face anywhere ->
    # the mean of all face frames, (1 + 10 + 3) / 3.
    np.testing.assert_allclose(face_frame_mean(values, face)[:, 0], [2.0, 10.0, 14 / 3])


def test_fold_count_comes_from_the_protocol_and_a_missing_fold_is_named(tmp_path):
    """A partial build (fold3 without clips) must not shrink the rotation to 4 folds."""
    import types

    from mtcae_keras.data.input_pipeline import builder_fold_splits
    from mtcae_keras.data.input_pipeline import load_builder

    expected = {"crema_d": 5, "ravdess/paper": 5, "ravdess/mae_dfer": 6, "mead": 5,
                "synthetic_faces/tiny": 5}  # fmt: skip
    for dataset, folds in expected.items():
        assert load_builder(dataset, data_dir=str(tmp_path)).num_folds == folds, dataset
    partial = types.SimpleNamespace(
        name="crema_d", num_folds=5, data_dir="/data/crema_d/1.0.0", is_prepared=lambda: True,
        info=types.SimpleNamespace(splits={"fold0": 1, "fold1": 1, "fold2": 1, "fold4": 1}),
    )  # fmt: skip
    with pytest.raises(ValueError, match="no split fold3 of its 5-fold protocol"):
        builder_fold_splits(partial, 3)
    with pytest.raises(ValueError, match="no split fold3"):
        builder_fold_splits(partial, 0)  # fold3 would be a training fold
    partial.info.splits["fold3"] = 1
    assert builder_fold_splits(partial, 0)["train"] == ["fold2", "fold3", "fold4"]


def test_statistics_describe_the_flipped_and_shifted_training_targets(tiny_builder):
    """With `flip` the statistics are those of the clips plus their mirrors (what a coin flip
    trains on, on average); with `translate`, of every shift the augmentation can draw."""
    import tensorflow_datasets as tfds

    from mtcae_keras.data.input_pipeline import localisation_statistics
    from mtcae_keras.data.input_pipeline import random_flip
    from mtcae_keras.data.input_pipeline import random_translate

    train = ["fold0", "fold1", "fold4"]
    examples = list(tfds.as_numpy(tiny_builder.as_dataset(split="+".join(train))))
    assert all(e["face_found"].all() for e in examples)  # plain means are the reference
    plain = localisation_statistics(tiny_builder, train)
    flipped = localisation_statistics(tiny_builder, train, augment=["flip"])
    mirrors = [random_flip(e, flip=True) for e in examples]
    for key in ("boxes", "landmarks"):
        values = np.array([e[key] for e in examples] + [np.asarray(m[key]) for m in mirrors])
        np.testing.assert_allclose(flipped[key][0], values.mean(0), atol=1e-6)
        np.testing.assert_allclose(flipped[key][1], values.std(0), rtol=1e-4, atol=1e-6)
    # The faces sit off centre: mirroring moves the x mean and widens its spread.
    assert np.abs(flipped["boxes"][0][:, 0] - plain["boxes"][0][:, 0]).max() > 1e-3
    assert (flipped["landmarks"][1][:, 0] > plain["landmarks"][1][:, 0]).all()

    shifted = localisation_statistics(tiny_builder, train, augment=["translate"], max_shift=0.1)
    size = tiny_builder.info.features["video"].shape[2]
    pad = round(0.1 * size)
    draws = [
        random_translate({**e, "video": e["video"][:1]}, 0.1, shift=(dy, dx))
        for e in examples
        for dy in range(-pad, pad + 1)
        for dx in range(-pad, pad + 1)
    ]
    for key in ("boxes", "landmarks"):
        values = np.array([np.asarray(d[key]) for d in draws])
        np.testing.assert_allclose(shifted[key][0], values.mean(0), atol=2e-3)  # clipping
        np.testing.assert_allclose(shifted[key][1], values.std(0), rtol=0.05)
    assert (shifted["boxes"][1][:, :2] > 1.2 * plain["boxes"][1][:, :2]).all()


def test_the_training_set_is_shuffled_encoded_and_in_the_same_order(tiny_builder):
    """The shuffle buffer holds encoded clips (no uint8 frames), and the clips come out in
    the order a decode-then-shuffle pipeline with the same seed gives."""
    import tensorflow_datasets as tfds
    from tensorflow.core.framework import graph_pb2
    from tensorflow.core.framework import types_pb2

    from mtcae_keras.data.input_pipeline import make_fold_datasets
    from mtcae_keras.data.input_pipeline import to_model_io

    train = make_fold_datasets(tiny_builder, 0, batch_size=4, seed=5, validation="fold")["train"]
    graph = graph_pb2.GraphDef.FromString(train._as_serialized_graph().numpy())
    shuffles = [
        list(n.attr["output_types"].list.type)
        for n in graph.node
        if n.op.startswith("ShuffleDataset")
    ]  # TFDS's file shuffle and the clips'
    clips = max(shuffles, key=len)
    assert types_pb2.DT_FLOAT in clips and types_pb2.DT_STRING in clips  # boxes; encoded
    assert types_pb2.DT_UINT8 not in clips  # no decoded frame

    reference = tiny_builder.as_dataset(
        split="fold2+fold3+fold4", shuffle_files=True, read_config=tfds.ReadConfig(shuffle_seed=5)
    )
    reference = reference.shuffle(512, seed=5, reshuffle_each_iteration=True)
    reference = reference.map(to_model_io).batch(4)
    for _ in range(2):  # two epochs: the reshuffled orders agree too
        for (video, targets, _), (expected, expected_targets, _) in zip(
            train, reference, strict=True
        ):
            np.testing.assert_array_equal(video.numpy(), expected.numpy())
            np.testing.assert_array_equal(targets["expression"], expected_targets["expression"])


def test_cached_clips_are_read_once_and_shuffled_from_memory(tmp_path):
    """`cache=True`: each epoch the whole training set in a fresh seeded order, as a
    decode-cache-shuffle reference gives it; the validation clips as without the cache; and
    once an epoch has passed, the files are not read again (moved away, the epochs come)."""
    import glob

    import tensorflow_datasets as tfds

    from mtcae_keras.data.input_pipeline import decoded_bytes
    from mtcae_keras.data.input_pipeline import fold_protocol
    from mtcae_keras.data.input_pipeline import load_builder
    from mtcae_keras.data.input_pipeline import make_fold_datasets
    from mtcae_keras.data.input_pipeline import to_model_io

    builder = load_builder("synthetic_faces", data_dir=str(tmp_path), config="tiny", prepare=True)
    protocol = fold_protocol(builder, 0, "fold", 0.1, 5)
    assert decoded_bytes(builder, protocol) == (18 + 6) * 16 * 32 * 32 * 3
    cached = make_fold_datasets(builder, 0, batch_size=4, seed=5, protocol=protocol, cache=True)
    plain = make_fold_datasets(builder, 0, batch_size=4, seed=5, protocol=protocol)
    reference = builder.as_dataset(split="fold2+fold3+fold4", shuffle_files=False,
                                   read_config=tfds.ReadConfig(shuffle_seed=5))  # fmt: skip
    reference = reference.cache().shuffle(18, seed=5, reshuffle_each_iteration=True)
    reference = reference.map(to_model_io).batch(4)
    orders = []
    for _ in range(2):
        clips = []
        for (video, targets, _), (expected, expected_targets, _) in zip(
            cached["train"], reference, strict=True
        ):
            np.testing.assert_array_equal(video.numpy(), expected.numpy())
            np.testing.assert_array_equal(targets["expression"], expected_targets["expression"])
            clips += [round(float(clip.sum()), 1) for clip in video.numpy()]
        orders.append(clips)
        for (video, _, _), (expected, _, _) in zip(
            cached["validation"], plain["validation"], strict=True
        ):
            np.testing.assert_array_equal(video.numpy(), expected.numpy())
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1])
    assert sorted(orders[0]) == sorted(_labels_by_video(plain["train"]))  # the same 18 clips

    for path in glob.glob(os.path.join(builder.data_dir, "*.tfrecord*")):
        os.rename(path, path + ".moved")
    assert sum(len(video) for video, _, _ in cached["train"]) == 18
    assert sum(len(video) for video, _, _ in cached["validation"]) == 6
    with pytest.raises(tf.errors.NotFoundError):
        sum(1 for _ in plain["train"])


def test_replayed_epochs_give_a_resumed_run_the_order_of_its_epoch():
    import tensorflow as tf

    from mtcae_keras.data.input_pipeline import replay_epochs

    def epochs(skip, distribute):
        dataset = tf.data.Dataset.range(32).shuffle(32, seed=1, reshuffle_each_iteration=True)
        replay_epochs(dataset, skip)
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
        return [
            [int(v) for v in (strategy.experimental_distribute_dataset(dataset.batch(32))
                              if distribute else dataset.batch(32)) for v in v.numpy()]
            for _ in range(skip, 3)
        ]  # fmt: skip

    uninterrupted = epochs(0, False)
    assert uninterrupted[0] != uninterrupted[2]
    assert epochs(2, False) == uninterrupted[2:]
    assert epochs(2, True) == uninterrupted[2:]


@pytest.mark.parametrize("known_length", [True, False])
def test_repeat_for_fit_gives_fit_one_iterator_and_the_epochs_their_orders(known_length):
    """`train.py` fits `repeat_for_fit`'s dataset: with a known length `fit` makes one
    iterator (not two per epoch), its epochs get the orders of successive iterators over the
    dataset, and a resumed run's first epoch gets the order of the epoch it resumes."""
    import keras
    import tensorflow as tf

    from mtcae_keras.data.input_pipeline import repeat_for_fit

    class Recorder(keras.Model):  # logs the first value of each batch instead of training
        def train_step(self, data):
            return {"first": tf.cast(data[0][0, 0], tf.float32)}

    class Batches(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append([])

        def on_train_batch_end(self, batch, logs=None):
            self.epochs[-1].append(float(logs["first"]))

    def batches():
        dataset = tf.data.Dataset.range(24).map(lambda v: tf.cast(v, tf.float32)[None])
        if not known_length:
            dataset = dataset.filter(lambda v: True)
        dataset = dataset.shuffle(24, seed=2, reshuffle_each_iteration=True).batch(4)
        dataset = dataset.map(lambda x: (x, x))
        assert (int(dataset.cardinality()) >= 0) == known_length
        return dataset

    def fit(skip, epochs):
        dataset, steps = repeat_for_fit(batches(), skip)
        assert steps == (6 if known_length else None)
        inputs = keras.Input((1,))
        model = Recorder(inputs, keras.layers.Dense(1)(inputs))
        model.compile(jit_compile=False)
        recorder = Batches()
        made = []
        iterate = type(dataset).__iter__
        with mock.patch.object(type(dataset), "__iter__",
                               lambda self: made.append(1) or iterate(self)):  # fmt: skip
            model.fit(dataset, steps_per_epoch=steps, epochs=epochs, verbose=0,
                      callbacks=[recorder])  # fmt: skip
        assert len(made) == (1 if known_length else epochs)
        return recorder.epochs

    plain = batches()
    successive = [[float(x[0, 0]) for x, _ in plain] for _ in range(3)]
    uninterrupted = fit(0, 3)
    assert uninterrupted == successive and uninterrupted[0] != uninterrupted[2]
    assert fit(2, 1) == uninterrupted[2:]
    assert fit(1, 2) == uninterrupted[1:]
    with pytest.raises(ValueError, match="finite dataset"):
        repeat_for_fit(plain.repeat())


def test_a_labelled_fraction_is_stratified_seeded_and_training_only(tiny_builder):
    from mtcae_keras.data.input_pipeline import make_fold_datasets

    def clips(seed, fraction=0.5):
        data = make_fold_datasets(tiny_builder, 0, batch_size=8, seed=seed,
                                  train_fraction=fraction)  # fmt: skip
        return _labels_by_video(data["train"]), _labels_by_video(data["test"])

    whole_train, whole_test = clips(0, None)
    train, test = clips(0)
    # 3 training actors x 6 classes x 1 clip: round(0.5 * 3) = 2 clips of every class.
    assert len(whole_train) == 18 and len(train) == 12
    assert sorted(train.values()) == sorted(list(range(6)) * 2)
    assert set(train) <= set(whole_train) and test == whole_test
    assert clips(0)[0] == train and clips(1)[0] != train
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        clips(0, 1.5)
