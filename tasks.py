"""The project's two entry points; each sets up its own virtual environment first.

    python3 tasks.py demo    # the main job on the embedded default data
    python3 tasks.py test    # lint + the test suite (what CI runs)

Needs only Python 3.11 on the machine: creates `.venv`, installs the pinned requirements
(again only when a requirements file changed), then runs inside it.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
PYTHON = os.path.join(VENV, "bin", "python")
# requirements file -> the files whose requirements it includes (`-r`), in install order.
INCLUDES = {"requirements.txt": ("requirements.txt",),
            "requirements-dev.txt": ("requirements.txt", "requirements-dev.txt")}  # fmt: skip


def run(*command, **kwargs):
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, **kwargs).returncode


def _stamp(requirements):
    """What an install of `requirements` leaves in the venv: its files' digest."""
    digest = hashlib.sha256()
    for name in INCLUDES[requirements]:
        with open(os.path.join(ROOT, name), "rb") as file:
            digest.update(file.read())
    return os.path.join(VENV, f".stamp-{requirements}"), digest.hexdigest()


def installed(requirements):
    """True if `requirements`, or a file that includes it, is installed as it is now."""
    for candidate, includes in INCLUDES.items():
        if requirements in includes:
            path, digest = _stamp(candidate)
            if os.path.exists(path) and open(path).read() == digest:
                return True
    return False


def ensure_venv(requirements):
    """Creates `.venv` and installs `requirements` unless it (or a superset) already is.

    `demo` needs only the runtime requirements (no torch, transformers or Jupyter: 71 s
    instead of 85 s into a new venv here, with pip's cache warm); `test` needs the
    development set.
    """
    if sys.version_info[:2] != (3, 11):
        print(f"warning: tested with Python 3.11, running {sys.version.split()[0]}")
    if not os.path.exists(PYTHON):
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    if installed(requirements):
        return
    if run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip") or run(
        PYTHON, "-m", "pip", "install", "--quiet", "-r", requirements
    ):
        sys.exit("pip install failed (see above)")
    path, digest = _stamp(requirements)
    with open(path, "w") as file:
        file.write(digest)


def demo():
    """Train, evaluate and export on the embedded synthetic_faces data, then predict."""
    ensure_venv("requirements.txt")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    run_dir = os.path.join("runs", "demo")
    shutil.rmtree(os.path.join(ROOT, run_dir), ignore_errors=True)  # a fresh run each time
    steps = [
        [PYTHON, "train.py", "--dataset", "synthetic_faces", "--fold", "0", "--verbose", "2",
         "--data-dir", os.path.join("runs", "tfds"), "--output", run_dir, "--export"],
        [PYTHON, "tools/render_synthetic_video.py", os.path.join(run_dir, "example.mp4"),
         "--actor", "5", "--label", "HAP"],
        [PYTHON, "predict.py", os.path.join(run_dir, "example.mp4"), "--run", run_dir,
         "--annotate", os.path.join(run_dir, "example_prediction.png")],
    ]  # fmt: skip
    for step in steps:
        code = run(*step, env=env)
        if code:
            return code
    print(f"done: {run_dir}/metrics.json, confusion_matrix.png, saved_model/, log.csv")
    return 0


def test():
    ensure_venv("requirements-dev.txt")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("MTCAE_CREMA_D_DIR", os.path.join(ROOT, "..", "shared", "data", "crema_d"))
    if run(PYTHON, "-m", "ruff", "check", ".") or run(
        PYTHON, "-m", "ruff", "format", "--check", "."
    ):
        return 1
    # Two pytest workers, whole files each (module fixtures stay shared): most tests spend
    # their time in one thread or in subprocesses, so the suite takes 9m51s instead of
    # 15m02s on 2 cores. The caller's `-n N` (`-n 0`: one process) or `-p no:xdist` wins.
    caller = sys.argv[2:]
    chosen = any(a.startswith(("-n", "--numprocesses")) or a == "no:xdist" for a in caller)
    workers = [] if chosen else ["-n", "2", "--dist", "loadfile"]
    code = run(PYTHON, "-m", "pytest", "-q", *workers, *caller, env=env)
    if code == 5:
        print("pytest collected no tests: failing on purpose")
        return 1
    return code


if __name__ == "__main__":
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    sys.exit(commands[sys.argv[1]]())
