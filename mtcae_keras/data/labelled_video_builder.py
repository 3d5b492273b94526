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
            name, _, pinned = builder_config.partition(":")
            variant = self.frame_variant(name)
            if variant is not None:
                builder_config, version = variant, pinned or version
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

    def _download_and_prepare(self, *args, **kwargs):
        # A build writes its report whole: sections left by an earlier, failed build (a
        # split or an archive that is no longer there) must not survive into this one.
        path = self._report_path()
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
        return super()._download_and_prepare(*args, **kwargs)

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
        """Yields `(key, example)` for `clips` = [(key, path, features)], in their order."""
        with _extracted(clips) as local_paths:
            yield from self._label_and_yield(clips, local_paths, split)

    def _label_and_yield(self, clips, paths, split):
        pool = ClipLabellingPool(
            num_frames=self.num_frames, image_size=self.IMAGE_SIZE, progress=f"{self.name} {split}"
        )
        report = {"found": len(clips), "kept": 0, "skipped": {}, "no_face_clips": [],
                  "frames_without_face": 0, "per_class": {}, "repeated_frames": {},
                  "short_decodes": {}}  # fmt: skip
        for (key, source, features), (_, frames, labels, error, info) in zip(
            clips, pool.imap(paths), strict=True
        ):
            # Name the clip as the user has it, not by its temporary extracted copy.
            shown = f"{source[0]}:{source[1]}" if isinstance(source, tuple) else source
            if error is not None:
                _LOG.warning("%s: skipping %s: %s", self.name, shown, error)
                report["skipped"][key] = error
                continue
            count, declared = info["frame_count"], info["declared_frame_count"]
            if count < self.num_frames:  # kept: every frame is used, some twice
                _LOG.warning("%s: %s has %d frames; %d are repeated to make %d (kept)",
                             self.name, shown, count, self.num_frames - count,
                             self.num_frames)  # fmt: skip
                report["repeated_frames"][key] = count
            if declared and count < self.SHORT_DECODE_FRACTION * declared:
                _LOG.warning("%s: %s decodes %d of the %d frames its header declares: truncated?"
                             " (kept)", self.name, shown, count, declared)  # fmt: skip
                report["short_decodes"][key] = {"decoded": count, "declared": declared}
            missing = int((~labels["face_found"]).sum())
            report["frames_without_face"] += missing
            if missing == self.num_frames:  # kept: the expression label is still valid
                _LOG.warning("%s: no face in any frame of %s (kept)", self.name, shown)
                report["no_face_clips"].append(key)
            report["kept"] += 1
            label = features["label"]
            report["per_class"][label] = report["per_class"].get(label, 0) + 1
            yield (
                key,
                {
                    "video": frames,
                    "boxes": labels["boxes"],
                    "landmarks": labels["landmarks"],
                    "face_found": labels["face_found"],
                    "clip_id": key,
                    **features,
                },
            )
        self._update_report(split, report)


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
                for name in names:  # read_video then reports each as "file not found"
                    local.setdefault((archive, name), os.path.join(target, "missing", name))
        yield [local[path] if isinstance(path, tuple) else path for _, path, _ in clips]
