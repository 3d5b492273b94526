"""Synthetic clips drawn by worker processes while TFDS encodes and writes (synthetic_faces)."""

import contextlib
import multiprocessing
import os

import cv2

from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer

# Below this many clips in a split, starting worker processes costs more than they save.
POOL_MIN_CLIPS = 64
_WORKER_RENDERER = None  # each worker process's renderer (`_start_worker`)


def _start_worker(image_size, num_frames, seed):
    global _WORKER_RENDERER
    _WORKER_RENDERER = SyntheticFaceRenderer(image_size, num_frames, seed)


def _render_job(job):
    return _WORKER_RENDERER.render(*job)


@contextlib.contextmanager
def rendered_clips(image_size, num_frames, seed, jobs, processes=None):
    """An iterator of `SyntheticFaceRenderer.render(actor, label, clip)` for each job, in order.

    Rendering is most of a build's time (about 9 of 10.5 ms a 64x64 clip: TFDS's JPEG encode
    and writing the rest), so the clips are drawn by one forked worker process per core
    while TFDS encodes and writes in this one. Each clip is drawn from its own seeded
    generator, so the examples do not depend on which process drew them (tested: the same
    files, byte for byte, as a build drawn in one process). In this process instead where
    there is one core, fewer than `POOL_MIN_CLIPS` jobs, or no `fork` (the workers only draw
    with NumPy and OpenCV, never TensorFlow, which is not fork-safe).

    Args:
        image_size: frame side in pixels (as the next two, `SyntheticFaceRenderer`'s).
        num_frames: frames per clip.
        seed: generation seed.
        jobs: list of `(actor, label, clip_index)`.
        processes: int. Worker processes; None: the cores this process may use.
    """
    if processes is None:
        processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    arguments = (image_size, num_frames, seed)
    if (processes < 2 or len(jobs) < POOL_MIN_CLIPS
            or "fork" not in multiprocessing.get_all_start_methods()):  # fmt: skip
        renderer = SyntheticFaceRenderer(*arguments)
        yield (renderer.render(*job) for job in jobs)
        return
    # OpenCV's thread pool does not survive a fork: a forked worker that touched it (even to
    # resize it) hung. With one OpenCV thread while the workers run, they never touch it.
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(processes, initializer=_start_worker, initargs=arguments) as pool:
            yield pool.imap(_render_job, jobs, chunksize=4)
    finally:
        cv2.setNumThreads(threads)
