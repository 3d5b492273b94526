"""Dataset builds on Apache Beam: one clip per element, labelled on the runner's workers.

`LabelledVideoBuilder._generate_examples` returns `BeamClipLabelling` when the build runs
with Beam (TFDS's mechanism: `tfds build ... --beam_pipeline_options=...`, or
`DownloadConfig(beam_options=...)`), so the same builders run on the DirectRunner with
several processes, or on Dataflow / Flink / Spark. Each worker loads MTCNN once
(`DoFn.setup`); a clip inside an archive is extracted to a temporary folder on the worker.
What the data report needs of each clip (`clip_outcome`) is a second output of the labelling
step, gathered into one JSON file per split beside the report, which the builder reads when
the pipeline has finished (`read_outcomes`); the counts are Beam metrics as well (counters:
found, kept, skipped, frames without a face), for a runner's monitoring page. (A Beam
string-set metric would be simpler, but the DirectRunner's multi-process mode returns one
worker's set only: measured with Beam 2.77.)

Needs `apache-beam` (`pip install .[beam]`).
"""

import contextlib
import json
import tempfile

import apache_beam as beam
import tensorflow as tf
from apache_beam.metrics import Metrics

from mtcae_keras.data import clip_labelling_pool
from mtcae_keras.data import labelled_video_builder

OUTCOMES = "outcomes"  # the labelling step's second output


def namespace(name, split):
    """The Beam metrics namespace of a split's counters."""
    return f"mtcae_keras/{name}/{split}"


class LabelClip(beam.DoFn):
    """`(key, path, features)` -> `(key, example)`, and the clip's outcome as the tagged
    output `OUTCOMES` (a JSON string), counted.

    Args:
        settings: `LabelledVideoBuilder._labelling_settings` of the split.
    """

    def __init__(self, settings):
        super().__init__()
        self.settings = settings

    def setup(self):
        clip_labelling_pool.init_worker(
            self.settings["num_frames"], self.settings["image_size"], 0.9, threads=0
        )
        space = namespace(self.settings["name"], self.settings["split"])
        names = ("found", "kept", "skipped", "frames_without_face")
        self.counters = {key: Metrics.counter(space, key) for key in names}

    def process(self, clip):
        key, source, features = clip
        with _local_copy(source) as path:
            result = clip_labelling_pool.label_clip(path)
        example, outcome = labelled_video_builder.clip_outcome(
            self.settings, key, source, features, *result
        )
        yield beam.pvalue.TaggedOutput(OUTCOMES, json.dumps(outcome, sort_keys=True))
        self.counters["found"].inc()
        self.counters["kept" if example is not None else "skipped"].inc()
        self.counters["frames_without_face"].inc(outcome.get("missing", 0))
        if example is not None:
            yield key, example


class BeamClipLabelling(beam.PTransform):
    """The split's clips, labelled: a PTransform of `(key, example)` for TFDS to write.

    Args:
        clips: list of `(key, path, features)` (`path`: a file, or `(archive, member)`).
        settings: `LabelledVideoBuilder._labelling_settings` of the split.
    """

    def __init__(self, clips, settings):
        super().__init__()
        self.clips = list(clips)
        self.settings = settings

    def expand(self, root):
        split = self.settings["split"]
        labelled = (
            root
            | f"Clips {split}" >> beam.Create(self.clips)
            | f"Spread {split}" >> beam.Reshuffle()  # one clip per worker, not one bundle
            | f"Label {split}"
            >> beam.ParDo(LabelClip(self.settings)).with_outputs(OUTCOMES, main="examples")
        )
        _ = (
            labelled[OUTCOMES]
            | f"Gather {split}" >> beam.combiners.ToList()
            | f"Write outcomes {split}" >> beam.Map(_write, self.settings["outcomes_path"])
        )
        return labelled.examples


def _write(outcomes, path):
    with tf.io.gfile.GFile(path, "w") as file:
        json.dump(sorted(outcomes), file)


def read_outcomes(path):
    """The outcomes a finished Beam build gathered for a split (the file is removed)."""
    with tf.io.gfile.GFile(path) as file:
        outcomes = [json.loads(value) for value in json.load(file)]
    tf.io.gfile.remove(path)
    return outcomes


@contextlib.contextmanager
def _local_copy(source):
    """A local path of `source`: itself, or an archive member extracted for the while."""
    if not isinstance(source, (tuple, list)):
        yield source
        return
    archive, member = source
    with tempfile.TemporaryDirectory(prefix="mtcae_beam_") as folder:
        yield labelled_video_builder.extract_members(archive, [member], folder)[archive, member]
