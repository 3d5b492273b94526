"""Decoding videos into a fixed number of RGB frames, with clear errors for bad files."""

import os

import cv2
import numpy as np


class VideoDecodeError(ValueError):
    """A video that cannot give frames; the message names the file and the reason."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def sample_frame_indices(num_available, num_frames=16):
    """Indices of `num_frames` frames spread uniformly over the whole clip.

    `round(linspace(0, n - 1, num_frames))`: first and last frame included. (The reference
    takes `round(linspace(0, 15 * s, 16))` with `s = n // 16`, which skips up to 15 final
    frames and, for a clip shorter than 16 frames, repeats frame 0.) A clip with fewer frames
    than `num_frames` repeats its frames evenly (nearest-neighbour in time), so it keeps its
    whole time course.
    """
    if num_available < 1:
        raise ValueError("a clip needs at least one frame")
    return np.round(np.linspace(0, num_available - 1, num_frames)).astype(int)


def read_video(path, num_frames=16, image_size=224):
    """Reads `num_frames` uniformly sampled frames, resized to `image_size`, as RGB uint8.

    Frames are counted by grabbing (no decoding), then only the sampled ones are decoded.
    Grayscale and odd-resolution videos are converted / resized like any other.

    Args:
        path: str. Any video OpenCV's FFmpeg can read (MP4/H.264, FLV/VP6, ...).
        num_frames: int. Frames to return.
        image_size: int or `(height, width)`.

    Returns:
        `(frames, info)`: uint8 `(num_frames, H, W, 3)` RGB, and a dict with `frame_count`
        (frames that decode), `declared_frame_count` (what the container's header implies,
        None if it says nothing; far more than `frame_count` means a truncated file), `width`,
        `height`, `fps` of the source, `indices` sampled and `repaired_frames`.

    Raises:
        VideoDecodeError: missing, empty or undecodable files, or files without frames.
    """
    height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
    if not os.path.exists(path):
        raise VideoDecodeError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "empty file (0 bytes)")
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise VideoDecodeError(path, "cannot be opened as a video (corrupt or unknown format)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        declared = capture.get(cv2.CAP_PROP_FRAME_COUNT)  # from the container's duration
        count = 0
        while capture.grab():
            count += 1
    finally:
        capture.release()
    if count == 0:
        raise VideoDecodeError(path, "no decodable frames (truncated or corrupt stream)")
    indices = sample_frame_indices(count, num_frames)
    wanted = set(indices.tolist())
    decoded, source_size = {}, None
    capture = cv2.VideoCapture(path)
    try:
        for index in range(int(indices.max()) + 1):
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    decoded[index] = frame
    finally:
        capture.release()
    if not decoded:
        raise VideoDecodeError(path, "frames were counted but none could be decoded")
    frames = []
    for index in indices:
        # A frame that fails to decode on the second pass takes its nearest decoded neighbour.
        nearest = min(decoded, key=lambda i: (abs(i - index), i))
        frame = decoded[nearest]
        source_size = frame.shape[:2]
        if frame.ndim == 2 or frame.shape[-1] == 1:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        else:
            frame = cv2.cvtColor(frame[..., :3], cv2.COLOR_BGR2RGB)
        if frame.shape[:2] != (height, width):
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        frames.append(frame)
    info = {
        "frame_count": count,
        "declared_frame_count": int(declared) if declared > 0 else None,
        "height": int(source_size[0]),
        "width": int(source_size[1]),
        "fps": float(fps),
        "indices": indices.tolist(),
        "repaired_frames": int(sum(i not in decoded for i in indices)),
    }
    return np.stack(frames), info


def write_video(path, frames, fps=15.0):
    """Writes RGB uint8 frames to an MP4 (mp4v) file; used for examples and tests."""
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise VideoDecodeError(path, "cannot open a video writer")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
