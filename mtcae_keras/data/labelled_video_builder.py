"""The part every real-video TFDS builder shares: labelling, bad-input handling, the report."""

import contextlib
import copy
import json
import logging
import os
import re
import tarfile
import tempfile
import zipfile

import tensorflow as tf
import tensorflow_datasets as tfds

from mtcae_keras.data.clip_labelling_pool import ClipLabellingPool

_LOG = logging.getLogger(__name__)
# `[<config>_]frames<N>`: a builder config (or, for a builder without configs, the builder)
# storing N frames per clip.
_FRAMES_VARIANT = re.compile(r"^(?:(?P<base>.+)_)?frames(?P<frames>\d+)$")


class LabelledVideoBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the RAVDESS, CREMA-D and MEAD builders.

    A subclass lists its clips in `_split_generators` and returns
    `{split: self._generate_examples(clips, split)}`, with `clips` a list of
    `(key, path, features)`: `features` holds `label`, `actor` and the dataset's metadata;
    `path` is a file, or `(archive, member)` for a clip inside a `.zip` or `.tar` archive
    (extracted to a temporary folder while its split is written).
    Here each clip is decoded, sampled to `num_frames` frames (16, or `N` in a
    `..._frames{N}` config: `frame_variant`) of `IMAGE_SIZE` and labelled by
    MTCNN in worker processes (`ClipLabellingPool`); undecodable clips are logged, skipped and
    counted; clips without any face are kept (`face_found` all False) and listed. The report,
    `<data_dir>/<name>[/<config>]/<version>_report.json`, gathers per split: clips found,
    kept, skipped (with the reason), clips without a face, frames without a face, clips per
    class, clips with fewer than `num_frames` frames (`repeated_frames`: their frame count)
    and clips that decode less than half the frames their header declares (`short_decodes`,
    e.g. a truncated download). Those last two are kept, and logged.
    """

    NUM_FRAMES = 16
    IMAGE_SIZE = 224
    # A clip that decodes less than this share of the frames its header declares is flagged.
    SHORT_DECODE_FRACTION = 0.5
    TITLE = "the dataset"  # as errors name it, e.g. "RAVDESS"
    _beam_build = False  # set by `_download_and_prepare` from the download config

    @property
    def num_folds(self):
        """The folds of this dataset's protocol (`fold0 ... fold{K-1}`), whatever was built."""
        raise NotImplementedError

    @property
    def num_frames(self):
        """Frames stored per clip: the config's `num_frames` where it has one, else 16."""
        return getattr(self.builder_config, "num_frames", self.NUM_FRAMES)

    @classmethod
    def frame_variant(cls, name):
        """The config that config name `name` = `[<config>_]frames<N>` stands for, else None.

        It is a copy of `<config>` (the default config when `<config>` is left out; a plain
        `BuilderConfig` for a builder without configs) named `<config>_frames<N>` (or
        `frames<N>`) with `num_frames = N` and the description saying so.

        Raises:
            ValueError: `<config>` is not a config of this builder, or `N` is not more than
                the frames that config stores already.
        """
        match = _FRAMES_VARIANT.match(name)
        if match is None or cls.get_builder_config(name) is not None:
            return None
        base_name, frames = match.group("base"), int(match.group("frames"))
        if not cls.BUILDER_CONFIGS and base_name is None:
            base = tfds.core.BuilderConfig(name="frames", description=f"{cls.TITLE}, MTCNN labels.")
            variant_name = f"frames{frames}"
        else:
            default = cls.DEFAULT_BUILDER_CONFIG_NAME or cls.BUILDER_CONFIGS[0].name
            base_name = base_name or default
            base = cls.get_builder_config(base_name)
            if base is None:
                names = sorted(config.name for config in cls.BUILDER_CONFIGS)
                raise ValueError(f"{cls.name}: no config {base_name!r} to store {frames} frames"
                                 f" per clip ({name!r}); configs: {names}.")  # fmt: skip
            variant_name = f"{base.name}_frames{frames}"
        stored = getattr(base, "num_frames", cls.NUM_FRAMES)
        if frames <= stored:
            raise ValueError(f"{cls.name}: {name!r} asks for {frames} frames per clip; a frames"
                             f" variant stores more than the {stored} of its config (the models"
                             f" take {cls.NUM_FRAMES}).")  # fmt: skip
        variant = copy.copy(base)
        variant.name = variant_name
        variant.num_frames = frames
        variant.description = f"{base.description} {frames} frames per clip, evenly spaced."
        return variant

    def _create_builder_config(self, builder_config, version):
        if isinstance(builder_config, str):
            name = builder_config.partition(":")[0]  # "frames32:1.0.0": the version is TFDS's
            variant = self.frame_variant(name)
            if variant is not None:
                builder_config = variant
            elif self.get_builder_config(name) is None:
                names = sorted(config.name for config in self.BUILDER_CONFIGS)
                raise ValueError(f"{self.name}: no config {name!r}; configs: {names or 'none'},"
                                 f" or `[<config>_]frames<N>` to store N > {self.NUM_FRAMES}"
                                 " frames per clip.")  # fmt: skip
        return super()._create_builder_config(builder_config, version)

    def _manual_root(self, dl_manager):
        """The manual dir as a str, or a clear error (with the download page) if missing."""
        root = os.fspath(dl_manager.manual_dir)
        if not tf.io.gfile.isdir(root):
            raise FileNotFoundError(
                f"{self.TITLE} folder {root} does not exist.\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        return root

    def _report_path(self):
        config = [self.builder_config.name] if self.builder_config else []
        return os.path.join(self.data_dir_root, self.name, *config, f"{self.version}_report.json")

    def _download_and_prepare(self, dl_manager, download_config=None):
        # A build writes its report whole: sections left by an earlier, failed build (a
        # split or an archive that is no longer there) must not survive into this one.
        path = self._report_path()
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
        self._beam_build = bool(
            download_config and (download_config.beam_runner or download_config.beam_options)
        )
        self._beam_splits = []
        return super()._download_and_prepare(dl_manager, download_config)

    def _update_report(self, section, values):
        path = self._report_path()
        tf.io.gfile.makedirs(os.path.dirname(path))
        report = {}
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as file:
                report = json.load(file)
        report[section] = values
        with tf.io.gfile.GFile(path, "w") as file:
            json.dump(report, file, indent=2, sort_keys=True)

    def _find_clips(self, root, extension):
        """`(relative path, path)` of every `extension` file under `root`, members of `.zip`
        and `.tar` archives included as `(archive, member)` with the relative path
        `<archive>/<member>`. Unreadable archives are logged and reported (`bad_archives`)."""
        files, bad = [], []
        for folder, _, names in tf.io.gfile.walk(root):
            for name in sorted(names):
                path = os.path.join(folder, name)
                relative = os.path.relpath(path, root)
                lower = name.lower()
                if lower.endswith(extension):
                    files.append((relative, path))
                    continue
                if not lower.endswith((".zip", ".tar")):
                    continue
                try:
                    if lower.endswith(".zip"):
                        with zipfile.ZipFile(path) as archive:
                            members = archive.namelist()
                    else:
                        with tarfile.open(path) as archive:
                            members = [m.name for m in archive.getmembers() if m.isfile()]
                except (zipfile.BadZipFile, tarfile.TarError, OSError) as error:
                    _LOG.warning("%s: skipping archive %s: %s", self.name, path, error)
                    bad.append(relative)
                    continue
                files += [(f"{relative}/{member}", (path, member)) for member in sorted(members)
                          if member.lower().endswith(extension)]  # fmt: skip
        self._update_report("bad_archives", bad)
        return files

    def _report_unexpected(self, unexpected, why="unexpected file name"):
        for name in unexpected:
            _LOG.warning("%s: skipping %s: %s", self.name, name, why)
        self._update_report("unexpected_files", sorted(unexpected))

    def _generate_examples(self, clips, split):
        """`(key, example)` for `clips` = [(key, path, features)]: a generator, labelling in
        this machine's worker processes (`ClipLabellingPool`), or, when the build runs with
        Beam (`DownloadConfig(beam_options=...)`, `tfds build --beam_pipeline_options=...`),
        a Beam `PTransform` labelling one clip per element on the runner's workers. Both
        give the same examples and the same report (`split_report`; the Beam build's
        outcomes travel as Beam metrics)."""
        if self._beam_build:
            from mtcae_keras.data.beam_labelling import BeamClipLabelling

            self._beam_splits.append(split)
            tf.io.gfile.makedirs(os.path.dirname(self._report_path()))
            return BeamClipLabelling(clips, self._labelling_settings(split))
        return self._generate_in_process(clips, split)

    def _labelling_settings(self, split):
        outcomes = f"{os.path.splitext(self._report_path())[0]}.{split}_outcomes.json"
        return {"name": self.name, "split": split, "num_frames": self.num_frames,
                "image_size": self.IMAGE_SIZE, "outcomes_path": outcomes,
                "short_decode_fraction": self.SHORT_DECODE_FRACTION}  # fmt: skip

    def _generate_in_process(self, clips, split):
        settings = self._labelling_settings(split)
        pool = ClipLabellingPool(
            num_frames=self.num_frames, image_size=self.IMAGE_SIZE, progress=f"{self.name} {split}"
        )
        outcomes = []
        with _extracted(clips) as local_paths:
            for (key, source, features), (_, *result) in zip(
                clips, pool.imap(local_paths), strict=True
            ):
                example, outcome = clip_outcome(settings, key, source, features, *result)
                outcomes.append(outcome)
                if example is not None:
                    yield key, example
        self._update_report(split, split_report(outcomes, settings))

    def _process_pipeline_result(self, pipeline_result):
        """A Beam build's report: each split's clip outcomes, gathered by the pipeline."""
        from mtcae_keras.data.beam_labelling import read_outcomes

        del pipeline_result  # its counters are for the runner's monitoring
        for split in self._beam_splits:
            settings = self._labelling_settings(split)
            self._update_report(split, split_report(read_outcomes(settings["outcomes_path"]),
                                                    settings))  # fmt: skip


def clip_outcome(settings, key, source, features, frames, labels, error, info):
    """`(example or None, outcome)` of one labelled clip, logging what the report will list.

    Args:
        settings: `LabelledVideoBuilder._labelling_settings`: `name`, `num_frames`,
            `short_decode_fraction`.
        key, source, features: the clip as the builder lists it (`source`: its path, or
            `(archive, member)`).
        frames, labels, error, info: what `ClipLabellingPool` gives for it.

    Returns:
        The example to write (None for a clip that cannot be decoded) and a JSON-able
        outcome: `key`, `label`, `error`, `frame_count`, `declared_frame_count`, `missing`
        (frames without a face), which `split_report` sums up.
    """
    name, num_frames = settings["name"], settings["num_frames"]
    # Name the clip as the user has it, not by its temporary extracted copy.
    shown = f"{source[0]}:{source[1]}" if isinstance(source, (tuple, list)) else source
    outcome = {"key": key, "label": features["label"], "error": error}
    if error is not None:
        _LOG.warning("%s: skipping %s: %s", name, shown, error)
        return None, outcome
    count, declared = info["frame_count"], info["declared_frame_count"]
    missing = int((~labels["face_found"]).sum())
    outcome.update(frame_count=int(count), declared_frame_count=declared and int(declared),
                   missing=missing)  # fmt: skip
    if count < num_frames:  # kept: every frame is used, some twice
        _LOG.warning("%s: %s has %d frames; %d are repeated to make %d (kept)",
                     name, shown, count, num_frames - count, num_frames)  # fmt: skip
    if declared and count < settings["short_decode_fraction"] * declared:
        _LOG.warning("%s: %s decodes %d of the %d frames its header declares: truncated?"
                     " (kept)", name, shown, count, declared)  # fmt: skip
    if missing == num_frames:  # kept: the expression label is still valid
        _LOG.warning("%s: no face in any frame of %s (kept)", name, shown)
    example = {"video": frames, "boxes": labels["boxes"], "landmarks": labels["landmarks"],
               "face_found": labels["face_found"], "clip_id": key, **features}  # fmt: skip
    return example, outcome


def split_report(outcomes, settings):
    """A split's section of the data report from its clips' `clip_outcome`s (any order)."""
    num_frames, fraction = settings["num_frames"], settings["short_decode_fraction"]
    outcomes = sorted(outcomes, key=lambda outcome: outcome["key"])
    kept = [outcome for outcome in outcomes if outcome["error"] is None]
    per_class = {}
    for outcome in kept:
        per_class[outcome["label"]] = per_class.get(outcome["label"], 0) + 1
    return {
        "found": len(outcomes),
        "kept": len(kept),
        "skipped": {o["key"]: o["error"] for o in outcomes if o["error"] is not None},
        "no_face_clips": [o["key"] for o in kept if o["missing"] == num_frames],
        "frames_without_face": sum(o["missing"] for o in kept),
        "per_class": per_class,
        "repeated_frames": {
            o["key"]: o["frame_count"] for o in kept if o["frame_count"] < num_frames
        },  # fmt: skip
        "short_decodes": {
            o["key"]: {"decoded": o["frame_count"], "declared": o["declared_frame_count"]}
            for o in kept
            if o["declared_frame_count"] and o["frame_count"] < fraction * o["declared_frame_count"]
        },
    }


@contextlib.contextmanager
def _extracted(clips):
    """Local file paths for `clips`, extracting archive members into a temporary folder."""
    members = {}
    for _, path, _ in clips:
        if isinstance(path, tuple):
            members.setdefault(path[0], []).append(path[1])
    if not members:
        yield [path for _, path, _ in clips]
        return
    with tempfile.TemporaryDirectory(prefix="mtcae_extract_") as folder:
        local = {}
        for index, (archive, names) in enumerate(sorted(members.items())):
            target = os.path.join(folder, str(index))
            local.update(extract_members(archive, names, target))
        yield [local[path] if isinstance(path, tuple) else path for _, path, _ in clips]


def extract_members(archive, names, target):
    """`{(archive, name): local path}` of `names` extracted from a `.zip` / `.tar` into
    `target`; members that cannot be extracted map to a missing path, which `read_video`
    then reports as "file not found" (logged here)."""
    local = {}
    try:
        if archive.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as opened:
                for name in names:
                    local[archive, name] = opened.extract(name, target)
        else:
            with tarfile.open(archive) as opened:
                for name in names:
                    opened.extract(name, target, filter="data")
                    local[archive, name] = os.path.join(target, name)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, KeyError) as error:
        _LOG.warning("cannot extract from %s: %s", archive, error)
        for name in names:
            local.setdefault((archive, name), os.path.join(target, "missing", name))
    return local
