"""Procedural face videos with exact box / landmark labels (the `synthetic_faces` dataset).

Each clip is one synthetic actor making one expression. The expression unfolds from neutral to
its apex over the clip, while the head drifts, scales and rotates. Identity (face shape, skin
tone, feature spacing), background texture, lighting and noise vary as nuisances. Everything
is drawn with OpenCV from a seeded numpy generator, so a (seed, actor, clip) triple always
gives the same pixels. The labels come from the drawing geometry itself, not from a
detector.
"""

import math

import cv2
import numpy as np

# CREMA-D's six classes, in its label order.
CLASS_NAMES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")

# Apex geometry of each expression, in units of the face half-height (y points down):
# brow_raise (up > 0), brow_tilt (inner ends up > 0), eye_open (x openness), mouth_curve
# (corners up > 0), mouth_open, mouth_width (x width), mouth_asym (right corner up > 0).
EXPRESSIONS = {
    "NEU": {},
    "HAP": {"mouth_curve": 0.22, "mouth_width": 1.3, "eye_open": 0.6, "mouth_open": 0.12},
    "SAD": {"mouth_curve": -0.2, "brow_tilt": 0.16, "brow_raise": 0.04, "eye_open": 0.6},
    "ANG": {"brow_raise": -0.16, "brow_tilt": -0.24, "eye_open": 0.45, "mouth_width": 0.6,
            "mouth_curve": -0.05},
    "FEA": {"brow_raise": 0.16, "brow_tilt": 0.06, "eye_open": 1.8, "mouth_open": 0.3,
            "mouth_width": 0.75},
    "DIS": {"brow_raise": -0.08, "eye_open": 0.75, "mouth_asym": 0.16, "mouth_curve": -0.14,
            "nose_lift": 0.12, "mouth_open": 0.08, "mouth_width": 0.85},
}  # fmt: skip
_NEUTRAL = {
    "brow_raise": 0.0, "brow_tilt": 0.0, "eye_open": 1.0, "mouth_curve": 0.0,
    "mouth_open": 0.0, "mouth_width": 1.0, "mouth_asym": 0.0, "nose_lift": 0.0,
}  # fmt: skip
_MULTIPLICATIVE = ("eye_open", "mouth_width")

# Valence and arousal of each class's apex, placed on Russell's circumplex (our choice; the
# renderer has no affect of its own): a frame's values are these times the clip's expression
# intensity at that frame, so they rise from 0 (neutral onset) with the expression.
AFFECT_PROTOTYPES = {
    "NEU": (0.0, 0.0), "HAP": (0.8, 0.5), "SAD": (-0.7, -0.4), "ANG": (-0.6, 0.8),
    "FEA": (-0.6, 0.7), "DIS": (-0.7, 0.3),
}  # fmt: skip
# Aff-Wild2's 12 action units (the ABAW multi-task challenge's), in its order, and the
# drawing geometry that turns each on at a frame (the parameters above, after the clip's
# intensity scaling). AU10 stands for the disgust nose creases (drawn when nose_lift > 0.03;
# AU9, the nose wrinkler, is not in the challenge's set); AU25 is on exactly when the teeth
# are drawn (mouth_open > 0.05). The thresholds are ours.
ACTION_UNITS = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24",
                "AU25", "AU26")  # fmt: skip


def action_units_of(params):
    """The 12 action units (bool, `ACTION_UNITS` order) that a frame's geometry draws."""
    lowered = params["brow_raise"] <= -0.04 or params["brow_tilt"] <= -0.06
    narrowed = params["eye_open"] <= 0.85
    return np.array([
        params["brow_tilt"] >= 0.04,  # AU1 inner brow raiser: inner brow ends up
        params["brow_raise"] >= 0.06,  # AU2 outer brow raiser: whole brow up
        lowered,  # AU4 brow lowerer
        narrowed and params["mouth_curve"] >= 0.06,  # AU6 cheek raiser: smiling eyes
        narrowed,  # AU7 lid tightener
        params["nose_lift"] > 0.03,  # AU10 (the drawn nose creases)
        params["mouth_curve"] >= 0.06,  # AU12 lip corner puller
        params["mouth_curve"] <= -0.06,  # AU15 lip corner depressor
        params["mouth_width"] <= 0.85,  # AU23 lip tightener: narrowed lips
        params["mouth_width"] <= 0.85 and params["mouth_open"] <= 0.02,  # AU24 lip pressor
        params["mouth_open"] > 0.05,  # AU25 lips part (the drawn teeth)
        params["mouth_open"] >= 0.2,  # AU26 jaw drop
    ])  # fmt: skip


# Landmark order of the dataset features (MTCNN's): image-left eye, image-right eye, nose,
# image-left mouth corner, image-right mouth corner.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


class SyntheticFaceRenderer:
    """Renders synthetic expression clips and their exact labels.

    Args:
        image_size: int. Frame side in pixels.
        num_frames: int. Frames per clip.
        seed: int. Dataset seed; identities and clips derive from it.
        nuisance: bool. Apply lighting gradients and sensor noise (True for the dataset;
            False draws clean frames, e.g. to check the labels against the pixels).

    Example:
    ```python
    renderer = SyntheticFaceRenderer(image_size=64)
    clip = renderer.render(actor=3, label="HAP", clip_index=0)
    clip["video"].shape, clip["boxes"].shape, clip["landmarks"].shape
    # (16, 64, 64, 3), (16, 4), (16, 10)
    ```
    """

    def __init__(self, image_size=224, num_frames=16, seed=0, nuisance=True):
        self.image_size = image_size
        self.num_frames = num_frames
        self.seed = seed
        self.nuisance = nuisance

    def _rng(self, *keys):
        return np.random.default_rng(np.random.SeedSequence([self.seed, *keys]))

    def identity(self, actor):
        """The fixed appearance of one synthetic actor."""
        rng = self._rng(1, actor)
        skin = rng.uniform([150, 105, 80], [245, 205, 180])  # RGB
        skin *= rng.uniform(0.55, 1.0)
        return {
            "aspect": rng.uniform(0.72, 0.86),
            "skin": skin,
            "iris": rng.uniform([10, 20, 20], [90, 110, 80]),
            "lips": np.array([150.0, 40.0, 50.0]) * rng.uniform(0.7, 1.0),
            "brow": rng.uniform(15, 70, 3),
            "eye_dx": rng.uniform(0.3, 0.4),
            "eye_y": rng.uniform(-0.22, -0.12),
            "eye_w": rng.uniform(0.17, 0.21),
            "eye_h": rng.uniform(0.09, 0.11),
            "brow_gap": rng.uniform(0.12, 0.17),
            "brow_len": rng.uniform(0.2, 0.26),
            "nose_y": rng.uniform(0.1, 0.2),
            "mouth_y": rng.uniform(0.42, 0.52),
            "mouth_w": rng.uniform(0.5, 0.6),
            "style": {k: rng.normal(0, 0.15) for k in ("brow_raise", "mouth_curve")},
        }

    def _apex_deltas(self, label, identity, rng):
        """Per-clip change from neutral at full strength: the class's apex geometry, scaled by
        the actor's style and a small per-clip jitter."""
        apex = EXPRESSIONS[label]
        return {
            key: (apex.get(key, neutral) - neutral)
            * (1 + rng.normal(0, 0.1) + identity["style"].get(key, 0.0))
            for key, neutral in _NEUTRAL.items()
        }

    def _background(self, rng):
        """Smooth random texture and a few shapes around a muted base colour."""
        size = self.image_size
        base = rng.uniform(60, 190, 3)
        coarse = rng.normal(0, 30, (rng.integers(3, 9), rng.integers(3, 9), 3))
        image = base + cv2.resize(
            coarse.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
        )
        fine = rng.normal(0, 10, (size // 4, size // 4, 3)).astype(np.float32)
        image += cv2.resize(fine, (size, size), interpolation=cv2.INTER_LINEAR)
        for _ in range(rng.integers(1, 4)):
            color = (base + rng.normal(0, 40, 3)).tolist()
            center = tuple(int(v) for v in rng.integers(0, size, 2))
            if rng.random() < 0.5:
                cv2.circle(image, center, int(rng.integers(size // 16, size // 5)), color, -1)
            else:
                corner = tuple(int(v) for v in rng.integers(0, size, 2))
                cv2.rectangle(image, center, corner, color, -1)
        return np.clip(image, 0, 255)

    def render(self, actor, label, clip_index, return_masks=False):
        """One clip.

        Args:
            actor: int. Synthetic actor id.
            label: str. One of `CLASS_NAMES`.
            clip_index: int. Which clip of that actor and expression.
            return_masks: bool. Also return `face_mask` `(frames, H, W)` bool, the drawn head.

        Returns:
            dict: `video` uint8 `(frames, H, W, 3)` RGB; `boxes` float32 `(frames, 4)` as
            `[x, y, w, h]` of the head divided by the frame size; `landmarks` float32
            `(frames, 10)` as `(x, y)` of `LANDMARK_NAMES`, same scaling; `face_found` bool
            `(frames,)` (always True); `label`, `actor`, `strength` (apex intensity);
            `valence`, `arousal` float32 `(frames,)` (`AFFECT_PROTOTYPES` times the frame's
            expression intensity) and `action_units` bool `(frames, 12)`
            (`action_units_of` the frame's geometry). The per-frame labels draw no random
            numbers: the other outputs are those of the renderer without them.
        """
        if label not in EXPRESSIONS:
            raise ValueError(f"Unknown expression {label!r}; choose one of {CLASS_NAMES}.")
        identity = self.identity(actor)
        rng = self._rng(2, actor, CLASS_NAMES.index(label), clip_index)
        size, frames = self.image_size, self.num_frames
        background = self._background(rng)
        strength = rng.uniform(0.7, 1.0)
        onset, apex = rng.uniform(0.0, 0.3), rng.uniform(0.55, 0.8)
        # Face-cropped clips, as after MTCNN cropping: the face is roughly centred and fills
        # most of the frame; it still drifts, scales and rotates within a clip.
        half = size * rng.uniform(0.38, 0.44)  # face half-height, pixels
        start = size / 2 + rng.uniform(-0.06, 0.06, 2) * size
        end = start + rng.normal(0, 0.03, 2) * size
        angle0, angle1 = rng.uniform(-6, 6), rng.uniform(-6, 6)
        wobble = rng.uniform(0, 2 * math.pi)
        gain = rng.uniform(0.75, 1.2)
        light_dir = rng.normal(size=2)
        light_dir /= np.linalg.norm(light_dir) + 1e-9
        light_amp = rng.uniform(0.0, 0.25)
        noise_sigma = rng.uniform(2, 8)

        video = np.empty((frames, size, size, 3), np.uint8)
        masks = np.zeros((frames, size, size), bool)
        boxes = np.empty((frames, 4), np.float32)
        landmarks = np.empty((frames, 10), np.float32)
        valence, arousal = np.empty(frames, np.float32), np.empty(frames, np.float32)
        action_units = np.empty((frames, len(ACTION_UNITS)), bool)
        grid = np.mgrid[0:size, 0:size][::-1].astype(np.float32) / size - 0.5
        lighting = gain * (1 + light_amp * (light_dir[0] * grid[0] + light_dir[1] * grid[1]))
        deltas = self._apex_deltas(
            label, identity, self._rng(3, actor, CLASS_NAMES.index(label), clip_index)
        )
        for t in range(frames):
            phase = t / max(frames - 1, 1)
            progress = strength * _smoothstep((phase - onset) / max(apex - onset, 1e-3))
            params = {k: _NEUTRAL[k] + progress * deltas[k] for k in _NEUTRAL}
            valence[t], arousal[t] = np.multiply(AFFECT_PROTOTYPES[label], progress)
            action_units[t] = action_units_of(params)
            center = start + (end - start) * phase
            scale = half * (1 + 0.04 * math.sin(2 * math.pi * phase + wobble))
            angle = angle0 + (angle1 - angle0) * phase + 2 * math.sin(4 * phase + wobble)
            image, mask, box, points = self._draw_face(
                background.copy(), identity, params, center, scale, math.radians(angle)
            )
            if self.nuisance:
                image = image * lighting[..., None]
                image += rng.normal(0, noise_sigma, image.shape)
            video[t] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
            masks[t], boxes[t], landmarks[t] = mask, box / size, points.reshape(-1) / size
        clip = {
            "video": video,
            "boxes": boxes,
            "landmarks": landmarks,
            "face_found": np.ones(frames, bool),
            "label": label,
            "actor": actor,
            "strength": strength,
            "valence": valence,
            "arousal": arousal,
            "action_units": action_units,
        }
        if return_masks:
            clip["face_mask"] = masks
        return clip

    @staticmethod
    def _draw_face(image, identity, params, center, scale, angle):
        """Draws the head and its features; returns image, head mask, box, landmarks (px)."""
        cos, sin = math.cos(angle), math.sin(angle)

        def to_image(points):
            points = np.asarray(points, np.float64).reshape(-1, 2)
            x = center[0] + scale * (cos * points[:, 0] - sin * points[:, 1])
            y = center[1] + scale * (sin * points[:, 0] + cos * points[:, 1])
            return np.stack([x, y], axis=-1)

        def ipt(point):
            return tuple(int(round(v)) for v in point)

        def width(value):
            return max(1, int(round(value * scale)))

        a, b = identity["aspect"], 1.0
        head_axes = (scale * a, scale * b)
        ellipse = (ipt(center), (int(round(2 * head_axes[0])), int(round(2 * head_axes[1]))),
                   math.degrees(angle))  # fmt: skip
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.ellipse(mask, ellipse, 1, -1)
        cv2.ellipse(image, ellipse, identity["skin"].tolist(), -1, cv2.LINE_AA)
        # Exact extent of the rotated ellipse.
        half_w = math.hypot(head_axes[0] * cos, head_axes[1] * sin)
        half_h = math.hypot(head_axes[0] * sin, head_axes[1] * cos)
        box = np.array([center[0] - half_w, center[1] - half_h, 2 * half_w, 2 * half_h])

        dx, ey = identity["eye_dx"], identity["eye_y"]
        eye_h = identity["eye_h"] * params["eye_open"]
        eyes = to_image([[-dx, ey], [dx, ey]])
        for eye in eyes:
            axes = (identity["eye_w"] * scale, max(eye_h * scale, 0.6))
            sclera = (tuple(eye), (2 * axes[0], 2 * axes[1]), math.degrees(angle))
            cv2.ellipse(image, sclera, (235, 235, 235), -1, cv2.LINE_AA)
            radius = max(min(axes[1], 0.5 * axes[0]) * 0.9, 1.0)
            cv2.circle(image, ipt(eye), int(round(radius)), identity["iris"].tolist(), -1)

        brow_y = ey - identity["brow_gap"] - params["brow_raise"]
        half_len = identity["brow_len"] / 2
        # A lowered brow may touch the upper lid but never covers the eye.
        lowest = ey - eye_h - 0.06
        for side in (-1, 1):
            inner = [side * (dx - half_len), min(brow_y - params["brow_tilt"], lowest)]
            outer = [side * (dx + half_len), min(brow_y + params["brow_tilt"] * 0.3, lowest)]
            p, q = to_image([inner, outer])
            cv2.line(image, ipt(p), ipt(q), identity["brow"].tolist(), width(0.11), cv2.LINE_AA)

        nose_top, nose = to_image([[0, ey + 0.05], [0, identity["nose_y"] - params["nose_lift"]]])
        nose_color = (identity["skin"] * 0.6).tolist()
        cv2.line(image, ipt(nose_top), ipt(nose), nose_color, width(0.035), cv2.LINE_AA)
        cv2.circle(image, ipt(nose), width(0.05), nose_color, -1)
        if params["nose_lift"] > 0.03:  # a wrinkled nose (disgust): creases between the eyes
            crease_color = (identity["skin"] * 0.4).tolist()
            for crease_y in (ey - 0.01, ey + 0.07):
                p, q = to_image([[-0.12, crease_y], [0.12, crease_y]])
                cv2.line(image, ipt(p), ipt(q), crease_color, width(0.05), cv2.LINE_AA)

        half_mouth = identity["mouth_w"] / 2 * params["mouth_width"]
        my = identity["mouth_y"]
        left = [-half_mouth, my - params["mouth_curve"] + params["mouth_asym"] * 0.2]
        right = [half_mouth, my - params["mouth_curve"] - params["mouth_asym"]]
        xs = np.linspace(-1, 1, 25)
        upper_mid, lower_mid = my - 0.01, my + params["mouth_open"] + 0.015
        corner_y = np.where(xs < 0, left[1], right[1]) * xs**2  # parabola through the corners
        upper = np.stack([xs * half_mouth, corner_y + upper_mid * (1 - xs**2)], -1)
        lower = np.stack([xs * half_mouth, corner_y + lower_mid * (1 - xs**2)], -1)
        outline = to_image(np.concatenate([upper, lower[::-1]]))
        lips = identity["lips"].tolist()
        cv2.fillPoly(image, [np.round(outline).astype(np.int32)], (40, 10, 20), cv2.LINE_AA)
        if params["mouth_open"] > 0.05:  # teeth show in an open mouth
            teeth = np.stack([upper[:, 0] * 0.8, upper[:, 1] + 0.025], -1)
            teeth = np.concatenate([teeth, teeth[::-1] + [0, params["mouth_open"] * 0.4]])
            cv2.fillPoly(image, [np.round(to_image(teeth)).astype(np.int32)], (240, 240, 230))
        for lip in (upper, lower):
            cv2.polylines(image, [np.round(to_image(lip)).astype(np.int32)], False, lips,
                          width(0.06), cv2.LINE_AA)  # fmt: skip
        corners = to_image([upper[0], upper[-1]])
        points = np.concatenate([eyes, nose[None], corners])
        order = [0, 1] if eyes[0][0] <= eyes[1][0] else [1, 0]
        corner_order = [3, 4] if corners[0][0] <= corners[1][0] else [4, 3]
        points = points[order + [2] + corner_order]
        return image, mask.astype(bool), box, points
