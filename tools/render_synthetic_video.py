"""Renders one synthetic_faces clip to a video file (e.g. to try predict.py).

    python tools/render_synthetic_video.py OUT.mp4 [--actor 0] [--label HAP] [--clip 0]
        [--size 64] [--frames 48]

Actor `a` belongs to fold `a % 5`; pick an actor of a run's test fold to predict on unseen
identities. The default size is the `small` config's: a model trained on 64x64 renders is not
invariant to the render size (3 of 9 test clips changed class when drawn at 128 and scaled
down; issue 4 notes).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtcae_keras.data.synthetic_face_renderer import CLASS_NAMES  # noqa: E402
from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer  # noqa: E402
from mtcae_keras.data.video_reader import write_video  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output")
    parser.add_argument("--actor", type=int, default=0)
    parser.add_argument("--label", default="HAP", choices=CLASS_NAMES)
    parser.add_argument("--clip", type=int, default=1000, help="clip index (>= 16: unseen)")
    parser.add_argument("--size", type=int, default=64, help="64: the `small` config's frames")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    renderer = SyntheticFaceRenderer(args.size, args.frames, args.seed)
    clip = renderer.render(args.actor, args.label, args.clip)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    write_video(args.output, clip["video"])
    print(f"wrote {args.output}: actor {args.actor}, {args.label}, {args.frames} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
