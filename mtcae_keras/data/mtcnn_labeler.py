"""Multi-task labels (face box + five landmarks per frame) from MTCNN."""

import numpy as np

LANDMARK_KEYS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


class MTCNNLabeler:
    """Labels the frames of one clip with a single batched MTCNN call.

    Per frame: the box `[x, y, w, h]` and the `(x, y)` of `LANDMARK_KEYS` (MTCNN's names;
    `left_eye` is the eye on the image's left), divided by the frame width / height, and
    `face_found`.

    - Several faces in a frame: the most confident one (ties: the larger box).
    - A detection below `min_confidence` counts as no face.
    - A box reaching past the frame is clipped to it, so boxes stay in [0, 1].
    - Frames without a face: labels copied from the nearest frame with one (the earlier one on
      a tie), with `face_found=False` so that the losses ignore them.
    - A clip with no face at all: zeros and `face_found` all False; the dataset builder decides
      whether to keep it and counts it.

    Args:
        min_confidence: float. Detections below it are ignored.
        detector: an `mtcnn.MTCNN` or anything with its `detect_faces`; None creates a
            `TracedMTCNN` (the same detections, faster) on first use.
    """

    def __init__(self, min_confidence=0.9, detector=None):
        self.min_confidence = min_confidence
        self._detector = detector

    @property
    def detector(self):
        if self._detector is None:
            from mtcae_keras.data.traced_mtcnn import TracedMTCNN

            self._detector = TracedMTCNN()
        return self._detector

    def label(self, frames):
        """Labels RGB uint8 frames `(T, H, W, 3)`.

        Returns:
            dict: `boxes` float32 `(T, 4)`, `landmarks` float32 `(T, 10)`, `face_found` bool
            `(T,)`, `confidence` float32 `(T,)` (0 where no face), `num_faces` int `(T,)`.
        """
        frames = np.asarray(frames)
        count, height, width = frames.shape[:3]
        detections = self.detector.detect_faces([frame for frame in frames])
        boxes = np.zeros((count, 4), np.float32)
        landmarks = np.zeros((count, 10), np.float32)
        confidence = np.zeros(count, np.float32)
        num_faces = np.zeros(count, np.int32)
        scale = np.array([width, height], np.float64)
        for t, faces in enumerate(detections):
            faces = [f for f in faces if f["confidence"] >= self.min_confidence]
            num_faces[t] = len(faces)
            if not faces:
                continue
            best = max(faces, key=lambda f: (f["confidence"], f["box"][2] * f["box"][3]))
            x, y, w, h = (float(v) for v in best["box"])
            x1, y1 = max(x, 0.0), max(y, 0.0)
            x2, y2 = min(x + w, width), min(y + h, height)
            boxes[t] = [x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height]
            points = np.array([best["keypoints"][k] for k in LANDMARK_KEYS], np.float64)
            landmarks[t] = np.clip(points / scale, 0.0, 1.0).reshape(-1)
            confidence[t] = best["confidence"]
        found = confidence > 0
        if found.any() and not found.all():
            detected = np.flatnonzero(found)
            for t in np.flatnonzero(~found):
                nearest = detected[np.argmin(np.abs(detected - t))]
                boxes[t], landmarks[t] = boxes[nearest], landmarks[nearest]
        return {
            "boxes": boxes,
            "landmarks": landmarks,
            "face_found": found,
            "confidence": confidence,
            "num_faces": num_faces,
        }
