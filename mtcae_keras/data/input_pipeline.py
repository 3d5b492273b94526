"""tf.data input pipeline: built TFDS splits -> (normalised video, targets, sample weights)."""

import dataclasses
from functools import partial

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from mtcae_keras.models.video_preprocessor import NORMALIZATIONS  # noqa: F401 (re-exported)
from mtcae_keras.models.video_preprocessor import normalize_pixels
from mtcae_keras.models.video_preprocessor import resize_frames
from tfds_builders import builder_class

TASKS = ("boxes", "landmarks", "expression")


def load_builder(dataset, data_dir=None, config=None, prepare=False, download_config=None,
                 **builder_kwargs):  # fmt: skip
    """The TFDS builder of one of our datasets, optionally building it when absent.

    Args:
        dataset: str. `synthetic_faces`, `crema_d`, `ravdess` or `mead` (optionally
            `name/config`).
        data_dir: str. TFDS data directory (TFDS's default if None).
        config: str. Builder config name (the builder's default if None).
        prepare: bool. Run `download_and_prepare` when the data is not built yet.
        download_config: `tfds.download.DownloadConfig` of the build (e.g. its
            `manual_dir`), used when `prepare` builds.
        **builder_kwargs: passed to the builder's constructor.
    """
    name, _, inline_config = dataset.partition("/")
    config = config or inline_config or None
    builder = builder_class(name)(config=config, data_dir=data_dir, **builder_kwargs)
    if prepare and not builder.is_prepared():
        builder.download_and_prepare(download_config=download_config)
    return builder


def build_command(builder):
    """The command that builds `builder`'s data (config included), for "not built" errors.

    `tools/build_dataset.py`, not `tfds build`: the latter cannot name a `frames<N>` variant
    of a builder without configs (crema_d) and imports Apache Beam at start-up.
    """
    config = builder.builder_config
    default = builder.get_default_builder_config()
    named = f" --config {config.name}" if config and (default is None or config != default) else ""
    data_dir = f" --data_dir {builder.data_dir_root}"
    return f"python tools/build_dataset.py {builder.name}{named} --manual_dir DIR{data_dir}"


def fold_splits(num_folds, fold):
    """`{train, validation, test}` split names for cross-validation fold `fold`.

    The test split is `fold{fold}`; the validation split (checkpoint selection) is the next
    fold, `fold{(fold + 1) % num_folds}`, so it holds other actors; training uses the rest.
    """
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be in [0, {num_folds}); got {fold}.")
    validation = (fold + 1) % num_folds
    train = [f"fold{k}" for k in range(num_folds) if k not in (fold, validation)]
    return {"train": train, "validation": [f"fold{validation}"], "test": [f"fold{fold}"]}


def builder_fold_splits(builder, fold, num_folds=None):
    """`fold_splits` of a builder, with the fold count of its protocol (`builder.num_folds`).

    The count comes from the builder config, not from the splits found: after a partial
    build (a fold whose actors had no clips) counting splits would silently change the
    rotation. A fold split that the prepared dataset lacks is an error that names it.
    """
    num_folds = num_folds or builder.num_folds
    splits = fold_splits(num_folds, fold)
    if builder.is_prepared():
        built = set(builder.info.splits)
        missing = sorted({s for names in splits.values() for s in names} - built)
        if missing:
            raise ValueError(
                f"{builder.name}: the prepared dataset has no split {', '.join(missing)} of "
                f"its {num_folds}-fold protocol (its build found no clips for those actors; "
                f"see its report in {builder.data_dir}). Rebuild it with every actor's clips."
            )
    return splits


# How `--fold k` chooses the clips that select checkpoints (`fold_protocol`).
VALIDATION_PROTOCOLS = ("actors", "fold", "test")


@dataclasses.dataclass(frozen=True)
class SplitSelection:
    """The clips of some splits, optionally only those of some actors.

    Args:
        splits: tuple of split names, read in this order.
        actors: tuple of the actor names kept, or None for every actor of `splits`.
        num_examples: int or None. The clips selected, when known (`fold_protocol` always
            says; a filtered `tf.data` pipeline does not know its length, and Keras `fit`
            and the schedules need it).
    """

    splits: tuple
    actors: tuple = None
    num_examples: int = None

    @classmethod
    def of(cls, value):
        """`value` as a selection: a `SplitSelection`, or split names (every actor)."""
        if isinstance(value, cls):
            return value
        return cls(tuple([value] if isinstance(value, str) else value))

    def keeps(self, actor):
        """Whether a clip of `actor` (a string tensor) is one of `actors`: a boolean tensor."""
        return tf.reduce_any(tf.equal(actor, tf.constant(self.actors)))


def validation_actors(actors, labels, share=0.1, seed=0):
    """Whole actors held out of the training actors to select checkpoints on.

    `max(1, round(share * n))` of the `n` actors, drawn in a seeded order; stratified by
    class where possible: actors that add a class the held-out set lacks are taken first
    (until every class is covered), so a dataset whose actors show only some classes still
    validates on all of them. Where every actor shows every class (CREMA-D, RAVDESS,
    synthetic_faces) this is a seeded draw of whole actors.

    Args:
        actors: array of the actor of each clip.
        labels: array of the label of each clip.
        share: float in (0, 1). The share of the actors held out.
        seed: int. Draw seed.

    Returns:
        Sorted tuple of actor names.
    """
    actors, labels = np.asarray(actors).astype(str), np.asarray(labels)
    names = np.unique(actors)
    if not 0.0 < share < 1.0:
        raise ValueError(f"The validation share must be in (0, 1); got {share}.")
    count = max(1, int(round(share * len(names))))
    if count >= len(names):
        raise ValueError(
            f"{len(names)} training actor(s) cannot give {count} validation actor(s) and keep "
            "one to train on: use --validation fold or a dataset with more actors."
        )
    order = np.random.default_rng(seed).permutation(names)
    classes = {actor: set(labels[actors == actor].tolist()) for actor in names}
    everything, covered, chosen = set(labels.tolist()), set(), []
    for actor in order:  # first the actors that add a class not yet covered
        if len(chosen) == count or covered == everything:
            break
        if classes[actor] - covered:
            chosen.append(actor)
            covered |= classes[actor]
    for actor in order:  # then the seeded order
        if len(chosen) == count:
            break
        if actor not in chosen:
            chosen.append(actor)
    return tuple(sorted(str(actor) for actor in chosen))


def fold_protocol(builder, fold, validation="actors", validation_share=0.1, seed=0,
                  num_folds=None):  # fmt: skip
    """The train / validation / test clips of cross-validation fold `fold`.

    The test clips are always those of `fold{fold}`. The validation clips select the
    checkpoint:
    - `actors` (the default): a seeded share of the training actors (`validation_actors`),
      so training uses the other K-1 folds less those actors, as the papers' 5-fold
      protocol trains on 80% of the data;
    - `fold`: the next fold, `fold_splits`: training uses K-2 folds (60% with 5 folds);
    - `test`: the test fold itself, as several DFER papers select: training uses all K-1
      folds, and every result of such a run is optimistic.
    No actor is in two of train / validation / test (except validation = test under `test`).

    Args:
        builder: a prepared TFDS builder with `fold0..fold{K-1}` splits.
        fold: int. The test fold.
        validation: str. One of `VALIDATION_PROTOCOLS`.
        validation_share: float. Under `actors`, the share of the training actors held out.
        seed: int. Under `actors`, the seed of the actors' draw.
        num_folds: int. Folds of the dataset (`builder.num_folds` if None).

    Returns:
        dict `train`, `validation`, `test` -> `SplitSelection`.
    """
    if validation not in VALIDATION_PROTOCOLS:
        raise ValueError(
            f"Unknown validation protocol {validation!r}; choose one of {VALIDATION_PROTOCOLS}."
        )
    splits = builder_fold_splits(builder, fold, num_folds)

    def whole(names):  # every clip of these splits: TFDS knows how many
        names = tuple(names)
        return SplitSelection(names, None, sum(builder.info.splits[n].num_examples for n in names))

    if validation == "fold":
        return {part: whole(names) for part, names in splits.items()}
    others = tuple(sorted(splits["train"] + splits["validation"]))
    test = whole(splits["test"])
    if validation == "test":
        return {"train": whole(others), "validation": test, "test": test}
    meta = split_metadata(builder, others, ("actor", "label"))
    actors = meta["actor"].astype(str)
    held_out = validation_actors(actors, meta["label"], validation_share, seed)
    training = tuple(sorted(set(actors.tolist()) - set(held_out)))
    held = int(np.isin(actors, held_out).sum())
    return {"train": SplitSelection(others, training, len(actors) - held),
            "validation": SplitSelection(others, held_out, held), "test": test}  # fmt: skip


def read_selection(builder, selection, **as_dataset_kwargs):
    """The examples of a `SplitSelection` with their `video` still encoded (decode them
    with `decode_video`): clips of other actors are dropped before any frame is decoded."""
    selection = SplitSelection.of(selection)
    ds = builder.as_dataset(split="+".join(selection.splits),
                            decoders={"video": tfds.decode.SkipDecoding()},
                            **as_dataset_kwargs)  # fmt: skip
    if selection.actors is not None:
        ds = ds.filter(lambda example: selection.keeps(example["actor"]))
        if selection.num_examples is not None:
            ds = ds.apply(tf.data.experimental.assert_cardinality(selection.num_examples))
    return ds


def split_metadata(builder, split_names, keys=("clip_id", "label")):
    """Non-video features of whole splits as numpy arrays, read without decoding any frame.

    Args:
        builder: a prepared TFDS builder.
        split_names: list of split names, read in this order, or a `SplitSelection` (only
            the clips of its actors).
        keys: features to return (any but `video`).

    Returns:
        dict key -> array with one row per example.
    """
    ds = read_selection(builder, split_names)
    ds = ds.map(lambda example: {key: example[key] for key in keys}).batch(1024)
    collected = {key: [] for key in keys}
    for batch in ds.as_numpy_iterator():
        for key in keys:
            collected[key].append(batch[key])
    return {key: np.concatenate(values) for key, values in collected.items()}


def face_frame_mean(values, face_found):
    """Mean of `values` `(clips, frames, D)` per frame index over the frames with a face;
    a frame index with no face in any clip gets the mean over all face frames."""
    face = np.asarray(face_found, np.float64)[..., None]
    values = np.asarray(values, np.float64)
    overall = (values * face).sum((0, 1)) / max(face.sum(), 1.0)
    per_frame = (values * face).sum(0) / np.maximum(face.sum(0), 1.0)
    return np.where(face.sum(0) > 0, per_frame, overall).astype(np.float32)


def _face_mean_and_std(values, face, min_std):
    mean = face_frame_mean(values, face)
    variance = face_frame_mean((values - mean) ** 2, face)
    return mean, np.maximum(np.sqrt(variance), min_std).astype(np.float32)


def _shifted_statistics(values, face, offsets, axis, min_std):
    """Mean and std of boxes and landmarks over every shift in `offsets` (fractions of the
    frame) along `axis` (0: x, 1: y). Every shift has the same face frames, so the mixture's
    moments are averages over the shifts, taken one shift at a time (a stack of all shifts
    of CREMA-D's targets would take gigabytes)."""

    def shifted(offset):
        shift = (offset, 0.0) if axis == 0 else (0.0, offset)
        moved = translate_coordinates(values["boxes"], values["landmarks"], *shift)
        return dict(zip(("boxes", "landmarks"), (np.asarray(m) for m in moved), strict=True))

    means = {key: np.mean([face_frame_mean(shifted(o)[key], face) for o in offsets], 0)
             for key in values}  # fmt: skip
    variances = {key: np.zeros_like(mean) for key, mean in means.items()}
    for offset in offsets:
        moved = shifted(offset)
        for key in values:
            variances[key] += face_frame_mean((moved[key] - means[key]) ** 2, face) / len(offsets)
    return {key: (means[key], np.maximum(np.sqrt(variances[key]), min_std)) for key in values}


def localisation_statistics(builder, split_names, min_std=1e-3, augment=(), max_shift=0.08,
                            num_frames=None, temporal_sampling="segment"):  # fmt: skip
    """Mean and standard deviation of the box and landmark targets per frame index.

    Over the frames with a face (`face_found`), read without decoding video. The mean is the
    trivial localisation baseline; both standardise the targets of `TaskHead`, and so must
    describe the targets the heads are trained on: with `augment`, those of the augmented
    training set. A left-right flip with probability 1/2 makes the target distribution the
    even mixture of the clips and their mirrors, whose x mean moves towards the centre and
    whose spread grows (`flip`). A random shift (`translate`) makes it the mixture over
    every integer shift `random_translate` can draw, with its clipping at the frame edge;
    x and y shift independently and each coordinate depends on one of them, so the shifts
    are enumerated one axis at a time.

    Args:
        builder: a prepared TFDS builder with `boxes`, `landmarks` and `face_found`.
        split_names: the (training) splits to measure (names or a `SplitSelection`).
        min_std: float. Floor of the standard deviation (constant coordinates).
        augment: the training augmentations (`AUGMENTATIONS` names) the statistics describe.
        max_shift: float. `random_translate`'s largest shift, a fraction of the frame size.
        num_frames: int. Frames per clip the model takes, when the dataset stores more: the
            statistics are then those of the mixture of every sample the training clips'
            temporal jitter draws (`temporal_mixture`). None: as stored.
        temporal_sampling: str. How the jitter samples (`TEMPORAL_SAMPLINGS`).

    Returns:
        dict `boxes` / `landmarks` -> `(mean, std)`, float32 arrays `(frames, 4)` /
        `(frames, 10)`.
    """
    augment = augmentation_names(augment)
    meta = split_metadata(builder, split_names, ("boxes", "landmarks", "face_found"))
    if num_frames is not None and num_frames != meta["boxes"].shape[1]:
        meta = {key: temporal_mixture(value, num_frames, temporal_sampling)
                for key, value in meta.items()}  # fmt: skip
    face = meta["face_found"]
    _, height, width, _ = builder.info.features["video"].shape[-4:]
    values = {"boxes": meta["boxes"], "landmarks": meta["landmarks"]}
    if "flip" in augment:  # the mixture of the clips and their mirrors
        mirrored = flip_coordinates(meta["boxes"], meta["landmarks"], width)
        for key, mirror in zip(values, mirrored, strict=True):
            values[key] = np.concatenate([values[key], np.asarray(mirror)])
        face = np.concatenate([face, face])
    statistics = {key: _face_mean_and_std(values[key], face, min_std) for key in values}
    if "translate" in augment:  # every integer shift in [-pad, pad] pixels, one axis at a time
        for axis, size in ((0, width), (1, height)):
            offsets = np.arange(-round(max_shift * size), round(max_shift * size) + 1) / size
            shifted = _shifted_statistics(values, face, offsets, axis, min_std)
            for key in values:  # x: box x, w and landmark x; y: box y, h and landmark y
                columns = np.arange(values[key].shape[-1]) % 2 == axis
                statistics[key] = tuple(
                    np.where(columns, new, old).astype(np.float32)
                    for new, old in zip(shifted[key], statistics[key], strict=True)
                )
    return statistics


def shuffled_label_table(builder, split_names, seed=0):
    """A `clip_id -> label` table whose labels are a seeded permutation of the true ones.

    The control experiment of a learning claim: the same clips and the same class counts,
    but labels that carry no information about the video.

    Args:
        builder: a prepared TFDS builder.
        split_names: the splits whose labels are permuted among themselves (names or a
            `SplitSelection`).
        seed: int. Permutation seed.
    """
    meta = split_metadata(builder, split_names)
    labels = np.random.default_rng(seed).permutation(meta["label"])
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(meta["clip_id"]), tf.constant(labels, tf.int64)
        ),
        default_value=-1,
    )


def labelled_subset_table(builder, split_names, fraction, seed=0):
    """A `clip_id -> 1` table of a stratified, seeded `fraction` of the clips of splits.

    `round(fraction * n)` clips of every class (at least one), drawn without replacement with
    `numpy.random.default_rng(seed)`: the label-efficiency experiments' "10% of the labelled
    training clips", the same clips for every run with that seed.

    Returns:
        `(table, kept)`: a `tf.lookup.StaticHashTable` (missing clips give 0) and the number
        of clips kept.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"The labelled fraction must be in (0, 1]; got {fraction}.")
    meta = split_metadata(builder, split_names)
    rng = np.random.default_rng(seed)
    kept = []
    for label in np.unique(meta["label"]):
        clips = np.sort(meta["clip_id"][meta["label"] == label])
        count = max(1, int(round(fraction * len(clips))))
        kept.extend(rng.choice(clips, count, replace=False))
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(kept), tf.ones(len(kept), tf.int64)),
        default_value=0,
    )
    return table, len(kept)


def normalize_video(video, normalization="imagenet"):
    """uint8 `(..., 3)` -> float32 `(x / 255 - mean) / std` (`VideoPreprocessor`'s)."""
    return normalize_pixels(video, normalization)


def translate_coordinates(boxes, landmarks, offset_x, offset_y):
    """Boxes `(..., 4)` and landmarks `(..., 10)` moved by a fraction of the frame and
    clipped to [0, 1] (boxes keep their clipped extent)."""
    offset = tf.stack([tf.cast(offset_x, tf.float32), tf.cast(offset_y, tf.float32)])
    landmarks = tf.convert_to_tensor(landmarks, tf.float32)
    leading = tf.shape(landmarks)[:-1]
    landmarks = tf.reshape(landmarks, tf.concat([leading, [5, 2]], 0)) + offset
    landmarks = tf.reshape(tf.clip_by_value(landmarks, 0.0, 1.0), tf.concat([leading, [10]], 0))
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    corners = tf.concat([boxes[..., :2], boxes[..., :2] + boxes[..., 2:]], -1)
    corners = tf.clip_by_value(corners + tf.tile(offset, [2]), 0.0, 1.0)
    return tf.concat([corners[..., :2], corners[..., 2:] - corners[..., :2]], -1), landmarks


def random_translate(example, max_shift=0.08, seed=None, shift=None):
    """Shifts a whole clip by the same random offset; boxes and landmarks move with it.

    The frames are reflect-padded by `max_shift` of their size and cropped back at a random
    `(dy, dx)` pixel offset, the same for every frame. Label coordinates shift by
    `(dx / W, dy / H)` and are clipped to [0, 1] (boxes keep their clipped extent).

    Args:
        example: dict with `video` `(T, H, W, 3)`, `boxes` `(T, 4)`, `landmarks` `(T, 10)`.
        max_shift: float. Largest shift as a fraction of the frame size.
        seed: int. Op seed for the random offset.
        shift: optional `(dy, dx)` integer pixels, replacing the random draw (tests).
    """
    video = example["video"]
    height, width = video.shape[1], video.shape[2]
    pad_y, pad_x = int(round(max_shift * height)), int(round(max_shift * width))
    if shift is None:
        # One draw for both axes: two ops with the same op seed draw the same number, which
        # would only ever shift along the diagonal.
        u = tf.random.uniform((2,), seed=seed)
        dy = tf.cast(tf.floor(u[0] * (2 * pad_y + 1)), tf.int32) - pad_y
        dx = tf.cast(tf.floor(u[1] * (2 * pad_x + 1)), tf.int32) - pad_x
    else:
        dy, dx = tf.constant(shift[0], tf.int32), tf.constant(shift[1], tf.int32)
    padded = tf.pad(video, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]], mode="REFLECT")
    video = padded[:, pad_y - dy : pad_y - dy + height, pad_x - dx : pad_x - dx + width]
    boxes, landmarks = translate_coordinates(
        example["boxes"], example["landmarks"],
        tf.cast(dx, tf.float32) / width, tf.cast(dy, tf.float32) / height,
    )  # fmt: skip
    return {**example, "video": tf.ensure_shape(video, example["video"].shape),
            "boxes": boxes, "landmarks": landmarks}  # fmt: skip


# Landmark order after a horizontal flip: the eyes and the mouth corners swap sides
# (features.py orders them image-left first), the nose stays.
_FLIPPED_LANDMARKS = (2, 3, 0, 1, 4, 5, 8, 9, 6, 7)


def flip_coordinates(boxes, landmarks, width):
    """Boxes `(..., 4)` and landmarks `(..., 10)` of frames of `width` pixels, mirrored.

    Coordinates are pixel indices divided by the frame size (OpenCV's and MTCNN's
    convention), so a point at `x` moves to `(W - 1) / W - x`; a box `[x, y, w, h]` to
    `[(W - 1) / W - x - w, y, w, h]`. The eyes and the mouth corners swap places in the
    landmark vector, which lists the image-left one first.
    """
    edge = (width - 1) / width
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    flipped_boxes = tf.stack(
        [edge - boxes[..., 0] - boxes[..., 2], boxes[..., 1], boxes[..., 2], boxes[..., 3]], -1
    )
    landmarks = tf.gather(tf.convert_to_tensor(landmarks, tf.float32), _FLIPPED_LANDMARKS, axis=-1)
    flipped_landmarks = landmarks * tf.constant([-1.0, 1.0] * 5) + tf.constant([edge, 0.0] * 5)
    return flipped_boxes, flipped_landmarks


def random_flip(example, seed=None, flip=None):
    """Mirrors a whole clip left-right with probability 1/2; boxes and landmarks follow
    (`flip_coordinates`).

    Args:
        example: dict with `video` `(T, H, W, 3)`, `boxes` `(T, 4)`, `landmarks` `(T, 10)`.
        seed: int. Op seed of the coin.
        flip: optional bool replacing the coin (tests).
    """
    video = example["video"]
    if flip is None:
        flip = tf.random.uniform((), seed=seed) < 0.5
    flip = tf.convert_to_tensor(flip)
    flipped_boxes, flipped_landmarks = flip_coordinates(
        example["boxes"], example["landmarks"], video.shape[2]
    )
    # `tf.cond`, not `tf.where`: a select broadcasting the scalar coin over a uint8 clip
    # costs 5x the reverse itself (29 vs 4 ms per batch of 32 16x64x64 clips on 2 cores,
    # bench/demo_profile.py), and the clip is only reversed when it is flipped.
    return {
        **example,
        "video": tf.cond(flip, lambda: tf.reverse(video, axis=[2]), lambda: video),
        "boxes": tf.where(flip, flipped_boxes, example["boxes"]),
        "landmarks": tf.where(flip, flipped_landmarks, example["landmarks"]),
    }


# Training-set augmentations by name, in the order they are applied.
AUGMENTATIONS = {"flip": random_flip, "translate": random_translate}


def augmentation_names(augment):
    """`augment` as a checked tuple of `AUGMENTATIONS` names (`True`: all; None: none)."""
    if augment is True:
        return tuple(AUGMENTATIONS)
    augment = tuple(augment or ())
    unknown = set(augment) - set(AUGMENTATIONS)
    if unknown:
        raise ValueError(
            f"Unknown augmentation {sorted(unknown)}; choose from {list(AUGMENTATIONS)}."
        )
    return augment


def resize_video(video, image_size):
    """Every frame of `(T, H, W, 3)` clips resized to `image_size` `(height, width)`:
    `VideoPreprocessor`'s `resize_frames` (bilinear, antialiased, float32; a clip already of
    that size is returned as it is)."""
    return resize_frames(video, image_size)


# Per-frame features, sampled together when a clip stores more frames than the model takes
# (the affect labels: synthetic_faces' and Aff-Wild2's; Aff-Wild2's expression is per frame).
FRAME_FEATURES = ("video", "boxes", "landmarks", "face_found", "valence", "arousal",
                  "action_units", "expression")  # fmt: skip
# Per-frame affect labels read from a dataset feature of the same name.
AFFECT_FEATURES = ("valence", "arousal", "action_units")
# How `frames` of a clip's `stored` frames are taken (`temporal_indices`).
TEMPORAL_SAMPLINGS = ("segment", "phase")


def temporal_choices(stored, frames, sampling="segment"):
    """How many different samples of `frames` frames a clip of `stored` frames has: segment
    starts (`stored - frames + 1`) or phases (`stored / frames`, which must be whole)."""
    if sampling not in TEMPORAL_SAMPLINGS:
        raise ValueError(f"Unknown temporal sampling {sampling!r}; choose {TEMPORAL_SAMPLINGS}.")
    if stored < frames:
        raise ValueError(
            f"A model of {frames}-frame clips cannot sample a dataset that stores {stored} "
            "frames per clip: build the dataset with more frames, or lower --clip-frames."
        )
    if sampling == "segment":
        return stored - frames + 1
    if stored % frames:
        raise ValueError(
            f"Phase sampling takes every {stored}/{frames}-th frame: the stored frames must be "
            f"a multiple of {frames}. Use --temporal-sampling segment or another --clip-frames."
        )
    return stored // frames


def temporal_indices(stored, frames, offset, sampling="segment"):
    """Indices of the `frames` frames of a clip of `stored` that `offset` in [0, 1) picks.

    - `segment` (MAE-DFER's and VideoMAE's clips): `frames` consecutive stored frames from
      start `floor(offset * (stored - frames + 1))`. Training draws the start uniformly
      (temporal jitter); N test views start evenly from the first frame to the last
      possible start (N = 2: the start and the end of the video, MAE-DFER's test), one view
      in the middle.
    - `phase`: every `r`-th frame (`r = stored / frames`) from `floor(offset * r)`, so each
      sample spans the whole clip; N = r test views are all the phases.
    A clip stored with `frames` frames gives `range(frames)` for every offset either way:
    today's 16 of 16. `view_offsets` gives the offsets of N test views.

    Args:
        stored: int. Frames the clip stores.
        frames: int. Frames the model takes.
        offset: float or scalar tensor in [0, 1).
        sampling: str. One of `TEMPORAL_SAMPLINGS`.
    """
    choices = temporal_choices(stored, frames, sampling)
    choice = tf.cast(tf.floor(tf.cast(offset, tf.float32) * choices), tf.int32)
    choice = tf.clip_by_value(choice, 0, choices - 1)
    if sampling == "segment":
        return tf.range(frames) + choice
    return tf.range(frames) * choices + choice


def view_offsets(views, stored, frames, sampling="segment"):
    """The `temporal_indices` offsets of `views` evenly spaced test views (one: the middle).

    Segments start at `round(v * (stored - frames) / (views - 1))`; phases at
    `round((v + 0.5) * r / views - 0.5)`. More views than different samples are refused.
    """
    choices = temporal_choices(stored, frames, sampling)
    if not 1 <= views <= choices:
        raise ValueError(
            f"{views} view(s): clips of {stored} frames have {choices} distinct {sampling}(s) "
            f"of {frames} frames (1 to {choices} views)."
        )
    if views == 1:
        picks = [(choices - 1) // 2] if sampling == "segment" else [choices // 2]
    elif sampling == "segment":
        picks = [round(v * (choices - 1) / (views - 1)) for v in range(views)]
    else:
        picks = [int((v + 0.5) * choices / views) for v in range(views)]
    return [(pick + 0.5) / choices for pick in picks]


def temporal_mixture(values, frames, sampling="segment"):
    """Per-frame arrays `(clips, stored, ...)` -> `(clips * choices, frames, ...)`: every
    sample the training jitter can draw, each once (its targets' distribution)."""
    stored = values.shape[1]
    choices = temporal_choices(stored, frames, sampling)
    if sampling == "segment":
        return np.concatenate([values[:, start : start + frames] for start in range(choices)])
    return np.concatenate([values[:, phase::choices] for phase in range(choices)])


def sample_frames(example, frames, offset, sampling="segment"):
    """An example with its per-frame features (`FRAME_FEATURES`, the video still encoded or
    decoded) reduced to the `frames` frames `temporal_indices` picks at `offset`."""
    stored = int(example["video"].shape[0])
    if stored == frames:
        return example
    indices = temporal_indices(stored, frames, offset, sampling)
    return {**example, **{key: tf.gather(example[key], indices)
                          for key in FRAME_FEATURES if key in example}}  # fmt: skip


def random_temporal_jitter(example, frames, sampling="segment", seed=None):
    """`sample_frames` at a random offset (uniform in [0, 1)): the training clips' temporal
    jitter when the dataset stores more frames than the model takes."""
    return sample_frames(example, frames, tf.random.uniform((), seed=seed), sampling)


def to_model_io(example, normalization="imagenet", tasks=TASKS, image_size=None,
                frame_expression=False):  # fmt: skip
    """A decoded example -> `(video, targets, sample_weights)` for `model.fit`.

    `face_found` becomes the per-frame sample weight of the box and landmark losses; with
    `image_size` the frames are resized to it first (`resize_video`). The affect tasks
    (`valence`, `arousal`, `action_units`) are the features of those names, float32; their
    missing labels (-5, -1) stay for `MaskedAffectLoss`. With `frame_expression` the
    `expression` target is per frame: the dataset's per-frame `expression` feature
    (Aff-Wild2) or else the clip's `label` at every frame.
    """
    face = tf.cast(example["face_found"], tf.float32) if "face_found" in example else None
    one = tf.ones((), tf.float32)
    targets = {"boxes": example.get("boxes"), "landmarks": example.get("landmarks"),
               "expression": example.get("label")}  # fmt: skip
    weights = {"boxes": face, "landmarks": face, "expression": one}
    for task in AFFECT_FEATURES:
        if task in tasks:
            targets[task], weights[task] = tf.cast(example[task], tf.float32), one
    if frame_expression:
        frames = example["video"].shape[0]
        targets["expression"] = (
            tf.cast(example["expression"], tf.int64)
            if "expression" in example
            else tf.fill([frames], tf.cast(example["label"], tf.int64))
        )
    video = example["video"] if image_size is None else resize_video(example["video"], image_size)
    video = normalize_video(video, normalization)
    return video, {t: targets[t] for t in tasks}, {t: weights[t] for t in tasks}


def _decode_video(feature, example):
    """Decodes the (possibly sampled: `sample_frames`) encoded frames of `example`."""
    video = feature.decode_example(example["video"])
    frames = example["video"].shape[0]  # static: the stored or the sampled count
    return {**example, "video": tf.ensure_shape(video, (frames, *feature.shape[1:]))}


def decoded_bytes(builder, protocol, parts=("train", "validation")):
    """Memory the decoded clips of some parts of a protocol take (`make_fold_datasets(...,
    cache=True)` holds those of `train` and `validation`): clips x the stored video's
    uint8 size.

    Args:
        builder: a prepared TFDS builder with a `video` feature.
        protocol: dict part -> `SplitSelection` (or split names), as `fold_protocol` gives.
        parts: the parts counted.

    Returns:
        int bytes.
    """
    clip = int(np.prod(builder.info.features["video"].shape))
    clips = 0
    for part in parts:
        selection = SplitSelection.of(protocol[part])
        if selection.num_examples is not None:
            clips += selection.num_examples
        else:
            clips += sum(builder.info.splits[name].num_examples for name in selection.splits)
    return clips * clip


def make_fold_datasets(
    builder,
    fold,
    batch_size=16,
    normalization="imagenet",
    tasks=TASKS,
    shuffle_buffer=512,
    seed=0,
    num_folds=None,
    with_metadata=False,
    augment=(),
    shuffle_labels=None,
    image_size=None,
    train_fraction=None,
    validation="actors",
    validation_share=0.1,
    protocol=None,
    num_frames=None,
    eval_offset=0.5,
    temporal_sampling="segment",
    frame_expression=False,
    cache=False,
):
    """Train / validation / test `tf.data.Dataset`s of one cross-validation fold.

    Args:
        builder: a prepared TFDS builder with `fold0..fold{K-1}` splits.
        fold: int. The test fold.
        batch_size: int. Global batch size.
        normalization: str. A key of `NORMALIZATIONS`.
        tasks: outputs of the model (`("expression",)` for STL; the `affect` task set's
            `action_units`, `valence`, `arousal` need dataset features of those names).
        shuffle_buffer: int. Shuffle buffer of the training set, in encoded clips
            (reshuffled each epoch: see `replay_epochs` to resume).
        seed: int. Shuffle seed.
        num_folds: int. Folds of the dataset (`builder.num_folds`, its protocol's, if None).
        with_metadata: bool. Evaluation sets also yield `clip_id`, `actor` and the clip's
            `label` (as a 4th item).
        augment: sequence of `AUGMENTATIONS` names (`"flip"`, `"translate"`) applied, in
            that order, to the training set only; `True` means all of them. None by default:
            the paper trains without augmentation.
        shuffle_labels: int seed or None. Replace the training labels by a seeded
            permutation of them (`shuffled_label_table`), the control of a learning claim;
            validation and test keep their true labels.
        image_size: `(height, width)` of the model's input; the stored frames are resized
            to it when they differ (e.g. 224 -> 160 for MAE-DFER's encoder). None: as stored.
        train_fraction: float in (0, 1] or None. Train on a stratified subset of the
            training clips of this size, drawn with `seed` (`labelled_subset_table`);
            validation and test are whole.
        validation: str. The clips that select checkpoints, a `VALIDATION_PROTOCOLS` name
            (`fold_protocol`): `actors` (default) a seeded share of the training actors,
            `fold` the next fold, `test` the test fold (optimistic).
        validation_share: float. Under `actors`, the share of training actors held out.
        protocol: dict `train` / `validation` / `test` -> `SplitSelection` (or split
            names): the clips of each part, when the caller has chosen them
            (`fold_protocol(...)`); `fold`, `validation` and `validation_share` are unused.
        num_frames: int. Frames per clip the model takes (None: as stored). From a dataset
            that stores more, training clips take a random sample of the stored frames
            every epoch (`random_temporal_jitter`) and evaluation clips the one at
            `eval_offset` (`temporal_indices`); only the frames taken are decoded.
        eval_offset: float in [0, 1). The test view of the validation and test clips (0.5:
            the middle one; `view_offsets` for several views).
        temporal_sampling: str. `segment` (consecutive frames, MAE-DFER's clips) or
            `phase` (every r-th frame); see `temporal_indices`.
        frame_expression: bool. The `expression` target per frame (`to_model_io`), for
            models of the `affect` task set.
        cache: bool. Keep the decoded training and validation clips in memory after their
            first pass (`tf.data.Dataset.cache`), so that later epochs skip the TFRecord read
            and the JPEG decode; `decoded_bytes` says what that holds. The training clips
            are then read in file order and shuffled after the cache, over the whole
            training set (a fresh order every epoch, drawn from `seed` as before); frames
            are sampled after it. The same clips, labels and augmentations, in another
            order than without the cache.

    Returns:
        dict `train`, `validation`, `test` of batched, prefetched datasets.
    """
    augment = augmentation_names(augment)
    missing = [task for task in AFFECT_FEATURES
               if task in tasks and task not in builder.info.features]  # fmt: skip
    if missing:
        raise ValueError(
            f"{builder.name} has no {', '.join(missing)} labels (its features: "
            f"{', '.join(builder.info.features)}); the affect tasks need a dataset that has "
            "them: synthetic_faces (1.3.0 and later) or aff_wild2."
        )
    if train_fraction is not None and not 0.0 < train_fraction <= 1.0:
        raise ValueError(f"The labelled fraction must be in (0, 1]; got {train_fraction}.")
    if protocol is None:
        protocol = fold_protocol(builder, fold, validation, validation_share, seed, num_folds)
    out = {}
    video_feature = builder.info.features["video"]
    stored = video_feature.shape[0]
    num_frames = num_frames or stored
    temporal_choices(stored, num_frames, temporal_sampling)  # a clear error, before any pipeline
    decode = partial(_decode_video, video_feature)
    parallel = {"num_parallel_calls": tf.data.AUTOTUNE}
    for part, selection in protocol.items():
        selection = SplitSelection.of(selection)
        training = part == "train"
        cached = cache and part in ("train", "validation")
        if training:
            # Shuffle the encoded clips, decode after: a buffer of 512 decoded 16x224x224
            # clips would hold 1.2 GB; encoded, a few percent of that. The order is the same.
            # The file order is seeded too: TFDS draws an unseeded one otherwise. Cached,
            # the files are read in order (whenever the cache fills, it holds the same
            # order) and the decoded clips shuffled from memory; not the encoded ones too
            # (TFDS caches a small dataset read in order: `try_autocache`).
            ds = read_selection(builder, selection, shuffle_files=not cached,
                                read_config=tfds.ReadConfig(shuffle_seed=seed,
                                                            try_autocache=False))  # fmt: skip
            if train_fraction is not None and train_fraction < 1.0:
                subset, kept = labelled_subset_table(builder, selection, train_fraction, seed)
                ds = ds.filter(lambda ex, subset=subset: subset.lookup(ex["clip_id"]) > 0)
                ds = ds.apply(tf.data.experimental.assert_cardinality(kept))
            if shuffle_labels is not None:
                table = shuffled_label_table(builder, selection, shuffle_labels)
                ds = ds.map(lambda ex, table=table: {**ex, "label": table.lookup(ex["clip_id"])})
            buffer = shuffle_buffer
            if cached:
                ds = ds.map(decode, **parallel).cache()
                known = int(ds.cardinality())  # the whole set; unknown: the usual buffer
                buffer = known if known > 0 else shuffle_buffer
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
            if stored != num_frames:  # a random phase per clip and epoch
                ds = ds.map(partial(random_temporal_jitter, frames=num_frames,
                                    sampling=temporal_sampling))  # fmt: skip
        else:
            ds = read_selection(builder, selection,
                                read_config=tfds.ReadConfig(try_autocache=not cached))  # fmt: skip
            if cached:
                ds = ds.map(decode, **parallel).cache()
            if stored != num_frames:
                ds = ds.map(partial(sample_frames, frames=num_frames, offset=eval_offset,
                                    sampling=temporal_sampling))  # fmt: skip
        if not cached:
            ds = ds.map(decode, **parallel)
        if training:
            for name in AUGMENTATIONS:  # a fixed order, whatever the order asked
                if name in augment:
                    ds = ds.map(AUGMENTATIONS[name], num_parallel_calls=tf.data.AUTOTUNE)

        def convert(example, keep=with_metadata and not training):
            video, targets, weights = to_model_io(example, normalization, tasks, image_size,
                                                  frame_expression)  # fmt: skip
            if keep:
                meta = {key: example[key] for key in ("clip_id", "actor", "label")
                        if key in example}  # fmt: skip
                return video, targets, weights, meta
            return video, targets, weights

        ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
        out[part] = ds.batch(batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE)
    return out


def replay_epochs(dataset, epochs, iterators_per_epoch=1):
    """Advances `dataset`'s per-epoch reshuffling past `epochs` passes without reading it.

    Each iterator over a dataset shuffled with `reshuffle_each_iteration` (the training set of
    `make_fold_datasets`) draws a new order from the seed, so a run resumed at epoch `k`
    would replay epoch 0's order unless the earlier draws are made first. Creating an
    iterator draws the order and reads nothing (the shuffle buffer fills on the first
    element), so this is cheap; `tf.distribute`'s iterators share the dataset's seed
    generator. A custom loop makes one iterator per epoch, as `fit` does over
    `repeat_for_fit`'s dataset.

    Args:
        dataset: a `tf.data.Dataset`.
        epochs: int. Passes to skip.
        iterators_per_epoch: int. Iterators the training loop creates per epoch.
    """
    for _ in range(int(epochs) * int(iterators_per_epoch)):
        iter(dataset)
    return dataset


def repeat_for_fit(dataset, completed_epochs=0):
    """`dataset` repeated, with its batches per epoch: one iterator for a whole Keras `fit`.

    Over a dataset of known length, Keras 3 `fit` (3.15) makes a new iterator at the start
    of every epoch and another at its end (`EpochIterator._enumerate_iterator`), which the
    next epoch drops unused. Dropping it waited for tf.data's autotuning thread: in 4-6 of
    the demo's 20 epochs the first batch came 2-7 s late, both cores idle (`py-spy` caught
    it in `RootDataset::Iterator::~Iterator`; with autotuning off it never stalled).
    Repeated, with `steps_per_epoch`, `fit` keeps one iterator, and the epochs' orders are
    those of successive iterators over `dataset`: each pass of the repeat draws the next
    order from the shuffle's seed as a new iterator would. A dataset of unknown length is
    returned as it is (`fit` then makes one iterator per epoch, when the last one runs out).
    Either way `completed_epochs` orders are drawn first (`replay_epochs`), so a resumed
    run's first epoch gets the order of the epoch it resumes.

    Args:
        dataset: a finite `tf.data.Dataset` of batches (`make_fold_datasets(...)["train"]`).
        completed_epochs: int. Epochs an interrupted run has finished.

    Returns:
        `(dataset, steps_per_epoch)` for `model.fit(dataset, steps_per_epoch=...)`;
        `steps_per_epoch` is None for a dataset of unknown length.
    """
    replay_epochs(dataset, completed_epochs)
    steps = int(dataset.cardinality())
    if steps == tf.data.INFINITE_CARDINALITY:
        raise ValueError("repeat_for_fit takes a finite dataset (one epoch); this one repeats.")
    if steps < 0:
        return dataset, None
    return dataset.repeat(), steps


def make_pretraining_dataset(
    builder,
    split_names,
    mask_generator,
    batch_size=8,
    image_size=None,
    normalization="imagenet",
    shuffle_buffer=512,
    seed=0,
):
    """Unlabelled clips with masks for `MaskedVideoPretrainer.fit`.

    The videos of `split_names` (labels, boxes and actors unused), shuffled encoded and
    decoded after (as `make_fold_datasets`), resized to the encoder's `image_size`,
    normalised, and given a fresh mask per clip and epoch by `mask_generator`; batches of
    exactly `batch_size` (a last, smaller one is dropped: the masked-token count of a batch
    is static, which XLA needs).

    Args:
        builder: a prepared TFDS builder with a `video` feature.
        split_names: list of split names (for a cross-validated dataset: the training folds
            of the fold whose test actors must stay unseen).
        mask_generator: a `TubeMaskGenerator` (`MaskedVideoPretrainer.mask_generator`).
        batch_size: int. Global batch size.
        image_size: `(height, width)` of the encoder; None: as stored.
        normalization: key of `NORMALIZATIONS`.
        shuffle_buffer: int. Encoded clips in the shuffle buffer.
        seed: int. Seed of the file order, the shuffle and the masks.

    Returns:
        A `tf.data.Dataset` of `{"pixel_values": (B, T, H, W, 3), "mask": (B, N)}`.
    """
    ds = builder.as_dataset(split="+".join(split_names), shuffle_files=True,
                            read_config=tfds.ReadConfig(shuffle_seed=seed),
                            decoders={"video": tfds.decode.SkipDecoding()})  # fmt: skip
    count = int(ds.cardinality())
    if 0 <= count < batch_size:
        raise ValueError(
            f"{builder.name} {'+'.join(split_names)} holds {count} clips, fewer than one batch "
            f"of {batch_size}: lower --batch-size."
        )
    ds = ds.map(lambda example: {"video": example["video"]})
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(partial(_decode_video, builder.info.features["video"]),
                num_parallel_calls=tf.data.AUTOTUNE)  # fmt: skip

    def to_pixels(example):
        video = (
            example["video"] if image_size is None else resize_video(example["video"], image_size)
        )
        return {"pixel_values": normalize_video(video, normalization)}

    ds = ds.map(to_pixels, num_parallel_calls=tf.data.AUTOTUNE)
    ds = mask_generator.map_dataset(ds, seed)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
