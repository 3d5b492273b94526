"""Labelling speed: decode + sample + MTCNN per clip, batched and in processes, vs per frame.

    python bench/labelling.py [--clips DIR] [--repeat 4] [--workers 2] [--output rows.json]

The clips default to `$MTCAE_CREMA_D_DIR` (the six real CREMA-D clips), each read `--repeat`
times. Every mode reads 16 frames at 224x224 with `read_video`, then labels them:

- `per-frame loop`: one `mtcnn.MTCNN.detect_faces` call per frame (the reference's way);
- `batched`: `ClipLabellingPool(num_workers=1)`, one batched `MTCNNLabeler` call per clip (its
  default `TracedMTCNN`), in this process (TF's threads);
- `N processes`: `ClipLabellingPool(num_workers=N)`, one thread per process;
- `untraced`: the same with `traced=False`, labelling with `mtcnn.MTCNN` itself (the labeller
  as it was before `TracedMTCNN`): the same-run reference for the tracing.

Each mode runs in its own process. clips/s is the steady rate, from the first finished clip to
the last (process start and model loading are reported apart as `start s`). The last column
estimates a full CREMA-D build (7,442 clips) at that rate.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.machine import cpu_description  # noqa: E402

CREMA_D_CLIPS = 7442


def _steady_rate(start, stamps):
    if len(stamps) < 2:
        return float("nan"), float("nan")
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), stamps[0] - start


def run_mode(mode, paths, workers):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    start = time.perf_counter()
    stamps, faces = [], 0
    if mode == "per_frame":
        from mtcnn import MTCNN

        from mtcae_keras.data.video_reader import read_video

        detector = MTCNN()
        for path in paths:
            frames, _ = read_video(path, 16, 224)
            faces += sum(bool(detector.detect_faces(frame)) for frame in frames)
            stamps.append(time.perf_counter())
    else:
        from mtcae_keras.data.clip_labelling_pool import ClipLabellingPool

        pool = ClipLabellingPool(num_workers=1 if mode.startswith("batched") else workers,
                                 progress=False, traced=not mode.endswith("untraced"))  # fmt: skip
        for _, _, labels, _, _ in pool.imap(paths):
            faces += int(labels["face_found"].sum())
            stamps.append(time.perf_counter())
    rate, startup = _steady_rate(start, stamps)
    return {"mode": mode, "workers": workers, "clips": len(paths), "clips_per_s": rate,
            "start_s": startup, "frames_with_face": faces}  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", default=os.environ.get("MTCAE_CREMA_D_DIR"))
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--workers", nargs="+", type=int, default=[os.cpu_count() or 1])
    parser.add_argument("--output", help="write the rows as JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        spec = json.loads(args.one)
        print(json.dumps(run_mode(spec["mode"], spec["paths"], spec["workers"])))
        return 0
    if not args.clips:
        parser.error("pass --clips DIR or set MTCAE_CREMA_D_DIR")
    paths = sorted(glob.glob(os.path.join(args.clips, "*.flv"))) * args.repeat
    if not paths:
        parser.error(f"no .flv clips in {args.clips}")

    specs = [("per_frame", 1), ("batched_untraced", 1), ("batched", 1)]
    specs += [(mode, n) for n in args.workers for mode in ("pool_untraced", "pool")]
    rows = []
    for mode, workers in specs:
        spec = json.dumps({"mode": mode, "paths": paths, "workers": workers})
        result = subprocess.run([sys.executable, __file__, "--one", spec], capture_output=True,
                                text=True, cwd=ROOT)  # fmt: skip
        lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
        if result.returncode or not lines:
            print(f"failed: {mode}\n{result.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(lines[-1]))
        print(f"  measured {mode} x{workers}", file=sys.stderr, flush=True)

    reference = next((r for r in rows if r["mode"] == "per_frame"), None)
    machine = cpu_description()
    print(f"\nLabelling {len(paths)} clips (16 frames, 224x224) on {machine}; "
          f"ratio = clips/s / per-frame loop's")  # fmt: skip
    print("| mode | clips/s | ratio | start s | frames with a face | full CREMA-D |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        name = "per-frame loop" if row["mode"] == "per_frame" else "batched, 1 process"
        if row["mode"].startswith("pool"):
            name = f"batched, {row['workers']} processes"
        if row["mode"].endswith("untraced"):
            name += ", untraced (as before)"
        ratio = row["clips_per_s"] / reference["clips_per_s"] if reference else float("nan")
        minutes = CREMA_D_CLIPS / row["clips_per_s"] / 60
        print(f"| {name} | {row['clips_per_s']:.2f} | {ratio:.2f} | {row['start_s']:.1f} | "
              f"{row['frames_with_face']} | {minutes:.0f} min |")  # fmt: skip
    if args.output:
        with open(args.output, "w") as file:
            json.dump({"command": " ".join(sys.argv), "machine": machine, "rows": rows}, file,
                      indent=2)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
