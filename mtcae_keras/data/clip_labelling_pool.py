"""Decode, sample and MTCNN-label many clips in parallel worker processes."""

import collections
import concurrent.futures
import itertools
import multiprocessing
import os

_WORKER = {}


def init_worker(num_frames, image_size, min_confidence, threads, traced=True):
    """Sets up this process for `label_clip` (a pool worker, or a Beam worker's `setup`):
    MTCNN loaded once (`TracedMTCNN`, or `mtcnn.MTCNN` with `traced=False`); `threads` > 0
    limits TensorFlow's threads (0: leave them)."""
    if threads:  # a fresh worker process; 0 = this process, left as it is
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    from mtcae_keras.data.mtcnn_labeler import MTCNNLabeler

    detector = None
    if not traced:
        from mtcnn import MTCNN

        detector = MTCNN()
    _WORKER.update(
        labeler=MTCNNLabeler(min_confidence, detector=detector),
        num_frames=num_frames,
        image_size=image_size,
    )


def label_clip(path):
    """`(frames, labels, None, info)` for a readable clip, `(None, None, reason, None)`
    otherwise; `info` holds the source's `frame_count` and `declared_frame_count`."""
    from mtcae_keras.data.video_reader import VideoDecodeError
    from mtcae_keras.data.video_reader import read_video

    try:
        frames, info = read_video(path, _WORKER["num_frames"], _WORKER["image_size"])
    except VideoDecodeError as error:  # returned, not raised: the reason must cross processes
        return None, None, error.reason, None
    counts = {key: info[key] for key in ("frame_count", "declared_frame_count")}
    return frames, _WORKER["labeler"].label(frames), None, counts


def _ordered(executor, function, items, ahead):
    """`executor.map` that keeps at most `ahead` items submitted (decoded clips are large)."""
    items, pending = iter(items), collections.deque()
    for item in itertools.islice(items, ahead):
        pending.append(executor.submit(function, item))
    while pending:
        result = pending.popleft().result()
        for item in itertools.islice(items, 1):
            pending.append(executor.submit(function, item))
        yield result


class ClipLabellingPool:
    """Reads 16 frames per clip and labels them with MTCNN, in `num_workers` processes.

    MTCNN (many small convolutions on an image pyramid) uses a second core poorly, so
    separate processes with one thread each scale better than one process with many threads
    (measured in `bench/labelling.py`). Results come back in the order of the paths, so a
    build's records do not depend on the number of workers. `num_workers=1` runs in this
    process, and so does a call with fewer than `MIN_CLIPS_PER_WORKER` clips per worker (a
    worker takes seconds to start: TensorFlow and the MTCNN weights).

    Args:
        num_workers: int. Worker processes; None reads `MTCAE_LABEL_WORKERS`, else uses one
            per CPU core.
        num_frames: int. Frames sampled per clip.
        image_size: int. Frame side after resizing.
        min_confidence: float. MTCNN detections below it count as no face.
        progress: bool or str. Show a tqdm progress bar (a str is its description).
        traced: bool. Label with `TracedMTCNN` (the default; the same detections as
            `mtcnn.MTCNN`, faster); False uses `mtcnn.MTCNN` itself.

    Example:
    ```python
    pool = ClipLabellingPool(num_workers=2)
    for path, frames, labels, error, info in pool.imap(paths):
        ...
    ```
    """

    MIN_CLIPS_PER_WORKER = 8
    # Clips in flight per worker: results wait in order, so a bounded queue bounds memory.
    AHEAD_PER_WORKER = 4

    def __init__(self, num_workers=None, num_frames=16, image_size=224, min_confidence=0.9,
                 progress=True, traced=True):  # fmt: skip
        if num_workers is None:
            num_workers = int(os.environ.get("MTCAE_LABEL_WORKERS", 0)) or os.cpu_count() or 1
        self.num_workers = max(1, int(num_workers))
        self.num_frames = num_frames
        self.image_size = image_size
        self.min_confidence = min_confidence
        self.progress = progress
        self.traced = traced

    def imap(self, paths):
        """Yields `(path, frames, labels, error, info)` per path, in order; `error` is a
        reason string (frames, labels and info None) for a clip that could not be decoded;
        `info` holds the source's `frame_count` and `declared_frame_count`."""
        paths = list(paths)
        bar = None
        if self.progress:
            from tqdm import tqdm

            label = self.progress if isinstance(self.progress, str) else "labelling clips"
            bar = tqdm(total=len(paths), desc=label, unit="clip")
        try:
            for path, result in zip(paths, self._results(paths), strict=True):
                if bar is not None:
                    bar.update()
                yield (path, *result)
        finally:
            if bar is not None:
                bar.close()

    def _results(self, paths):
        init = (self.num_frames, self.image_size, self.min_confidence, self.traced)
        workers = min(self.num_workers, len(paths) // self.MIN_CLIPS_PER_WORKER)
        if workers <= 1:
            if _WORKER.get("init") != init:
                init_worker(*init[:3], threads=0, traced=init[3])  # TF's default threads
                _WORKER["init"] = init
            yield from map(label_clip, paths)
            return
        context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe
        with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=init_worker, initargs=(*init[:3], 1, init[3])
        ) as executor:
            yield from _ordered(executor, label_clip, paths, workers * self.AHEAD_PER_WORKER)
