"""aff_wild2: Aff-Wild2 in the ABAW multi-task challenge's layout, cut into frame segments."""

import dataclasses
import json
import logging
import os
import re

import cv2
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from mtcae_keras.data.synthetic_face_renderer import ACTION_UNITS

# The challenge's 8 expressions, in its label order (0-7), and its 12 action units.
EXPRESSIONS = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise",
               "Other")  # fmt: skip
ANNOTATIONS = {"train": "training_set_annotations.txt",
               "validation": "validation_set_annotations.txt"}  # fmt: skip
HEADER = ("image", "valence", "arousal", "expression", *(a.lower() for a in ACTION_UNITS))
FRAME_NAME = re.compile(r"^(?P<video>[^/]+)/(?P<frame>\d+)\.jpg$")
MISSING_AFFECT, MISSING_CLASS = -5.0, -1

_LOG = logging.getLogger(__name__)

_INSTRUCTIONS = """
Aff-Wild2 is released by the ABAW organisers under an end-user licence agreement
(https://ibug.doc.ic.ac.uk/resources/aff-wild2/): ask for access, then pass the folder of the
multi-task challenge's data as --manual_dir:

    DIR/cropped_aligned/<video>/<frame:05d>.jpg       (112x112 aligned faces)
    DIR/training_set_annotations.txt                  (the MTL challenge's annotation files)
    DIR/validation_set_annotations.txt

    tfds build tfds_builders/aff_wild2 --manual_dir DIR

Each annotation file starts with the header `image,valence,arousal,expression,au1,au2,au4,
au6,au7,au10,au12,au15,au23,au24,au25,au26`; every further line names a frame
(`<video>/<frame>.jpg`) and its labels; -5 marks a missing valence / arousal, -1 a missing
expression or action unit.
"""


@dataclasses.dataclass
class AffWild2Config(tfds.core.BuilderConfig):
    """How frames are grouped.

    Args:
        segment_length: consecutive annotated frames of one video per example (the last
            segment of a video is padded: `frame_present` False, labels missing).
        image_size: frame side (the aligned crops are 112x112; others are resized).
    """

    segment_length: int = 64
    image_size: int = 112


class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Aff-Wild2 (ABAW multi-task challenge): per-frame V/A, expression and 12 AUs."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    BUILDER_CONFIGS = [
        AffWild2Config(name="mtl", description="64-frame segments (the ABAW4 system's "
                       "sequence length), 112x112 aligned faces."),
        AffWild2Config(name="mtl_16", segment_length=16,
                       description="16-frame segments, the clip length of our encoders."),
    ]  # fmt: skip
    DEFAULT_BUILDER_CONFIG_NAME = "mtl"

    def _info(self):
        length, size = self.builder_config.segment_length, self.builder_config.image_size
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "video": tfds.features.Video(
                        shape=(length, size, size, 3), encoding_format="jpeg"
                    ),
                    "frame_present": tfds.features.Tensor(shape=(length,), dtype=np.bool_),
                    "frame_index": tfds.features.Tensor(shape=(length,), dtype=np.int32),
                    "valence": tfds.features.Tensor(shape=(length,), dtype=np.float32),
                    "arousal": tfds.features.Tensor(shape=(length,), dtype=np.float32),
                    "expression": tfds.features.Tensor(shape=(length,), dtype=np.int32),
                    "action_units": tfds.features.Tensor(
                        shape=(length, len(ACTION_UNITS)), dtype=np.int8
                    ),
                    "video_id": tfds.features.Text(),
                    "segment": tfds.features.Scalar(dtype=np.int32),
                    "clip_id": tfds.features.Text(),
                }
            ),  # fmt: skip
            supervised_keys=None,
            homepage="https://ibug.doc.ic.ac.uk/resources/aff-wild2/",
        )

    def _report_path(self):
        return os.path.join(self.data_dir_root, self.name, self.builder_config.name,
                            f"{self.version}_report.json")  # fmt: skip

    def _split_generators(self, dl_manager):
        root = dl_manager.manual_dir
        missing = [name for name in ("cropped_aligned", *ANNOTATIONS.values())
                   if not tf.io.gfile.exists(os.path.join(root, name))]  # fmt: skip
        if missing:
            raise FileNotFoundError(
                f"{root} lacks {', '.join(missing)}: the layout is\n{_INSTRUCTIONS}"
            )
        report = {}
        splits = {}
        for split, name in ANNOTATIONS.items():
            videos, problems = read_annotations(os.path.join(root, name))
            report[split] = {"annotation_file": name, "malformed_lines": problems,
                             "videos": len(videos),
                             "frames": sum(len(rows) for rows in videos.values())}  # fmt: skip
            splits[split] = self._generate_examples(root, videos, report[split])
        self._report = report
        return splits

    def _generate_examples(self, root, videos, report):
        config = self.builder_config
        length, size = config.segment_length, config.image_size
        report.update({"missing_images": [], "unreadable_images": [], "segments": 0})
        for video, rows in sorted(videos.items()):
            for segment, start in enumerate(range(0, len(rows), length)):
                part = rows[start : start + length]
                frames = np.zeros((length, size, size, 3), np.uint8)
                present = np.zeros(length, bool)
                index = np.full(length, -1, np.int32)
                valence = np.full(length, MISSING_AFFECT, np.float32)
                arousal = np.full(length, MISSING_AFFECT, np.float32)
                expression = np.full(length, MISSING_CLASS, np.int32)
                units = np.full((length, len(ACTION_UNITS)), MISSING_CLASS, np.int8)
                for t, (frame, labels) in enumerate(part):
                    image = _read_frame(root, f"cropped_aligned/{video}/{frame}.jpg", size,
                                        report)  # fmt: skip
                    index[t] = int(frame)
                    if image is None:  # counted; the frame's labels are dropped with it
                        continue
                    frames[t], present[t] = image, True
                    valence[t], arousal[t], expression[t] = labels[0], labels[1], labels[2]
                    units[t] = labels[3:]
                if not present.any():
                    continue
                report["segments"] += 1
                clip_id = f"{video}_{segment:04d}"
                yield clip_id, {
                    "video": frames, "frame_present": present, "frame_index": index,
                    "valence": valence, "arousal": arousal, "expression": expression,
                    "action_units": units, "video_id": video, "segment": segment,
                    "clip_id": clip_id,
                }  # fmt: skip
        self._write_report()

    def _write_report(self):
        path = self._report_path()
        tf.io.gfile.makedirs(os.path.dirname(path))
        with tf.io.gfile.GFile(path, "w") as file:
            json.dump(self._report, file, indent=2, sort_keys=True)


def _read_frame(root, name, size, report):
    """The RGB frame `root/name` resized to `size`, or None (missing or unreadable: `name`
    is listed in the report)."""
    path = os.path.join(root, name)
    if not tf.io.gfile.exists(path):
        report["missing_images"].append(name)
        _LOG.warning("%s: missing; its frame is marked absent", path)
        return None
    with tf.io.gfile.GFile(path, "rb") as file:
        data = np.frombuffer(file.read(), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        report["unreadable_images"].append(name)
        _LOG.warning("%s: not a readable image; its frame is marked absent", path)
        return None
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_annotations(path):
    """`{video: [(frame, labels), ...]}` sorted by frame, and the malformed lines (listed).

    `labels` is `[valence, arousal, expression, 12 AUs]` as floats; a line whose values are
    out of range (V/A outside [-1, 1] but not -5, an expression outside 0-7 but not -1, an AU
    not in {0, 1, -1}) or not parseable is left out and listed with its reason.
    """
    videos, problems = {}, []
    with tf.io.gfile.GFile(path) as file:
        header = file.readline().strip().lower().split(",")
        if tuple(h.strip() for h in header) != HEADER:
            raise ValueError(f"{path}: header {header!r} is not the MTL challenge's {HEADER}.")
        for number, line in enumerate(file, start=2):
            line = line.strip()
            if not line:
                continue
            reason = None
            fields = line.split(",")
            match = FRAME_NAME.match(fields[0].strip())
            if len(fields) != len(HEADER) or not match:
                reason = f"{len(fields)} fields or a bad frame name"
            else:
                try:
                    labels = [float(v) for v in fields[1:]]
                except ValueError:
                    reason = "non-numeric label"
            if reason is None:
                reason = _label_problem(labels)
            if reason:
                problems.append(f"line {number}: {reason}: {line[:80]}")
                continue
            videos.setdefault(match["video"], []).append((match["frame"], labels))
    for rows in videos.values():
        rows.sort(key=lambda row: int(row[0]))
    return videos, problems


def _label_problem(labels):
    v, a, e, units = labels[0], labels[1], labels[2], labels[3:]
    if any(x != MISSING_AFFECT and not -1.0 <= x <= 1.0 for x in (v, a)):
        return "valence / arousal outside [-1, 1]"
    if e != MISSING_CLASS and e not in range(len(EXPRESSIONS)):
        return "expression outside 0-7"
    if any(u not in (0.0, 1.0, -1.0) for u in units):
        return "an action unit not 0, 1 or -1"
    return None
