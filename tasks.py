"""The project's two entry points; each sets up its own virtual environment first.

    python3 tasks.py demo    # the main job on the embedded default data
    python3 tasks.py test    # lint + the test suite (what CI runs)

Needs only Python 3.11 on the machine: creates `.venv`, installs the pinned requirements
(again only when a requirements file changed), then runs inside it.
"""

import hashlib
import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
PYTHON = os.path.join(VENV, "bin", "python")
STAMP = os.path.join(VENV, ".requirements-stamp")


def run(*command, **kwargs):
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT, **kwargs).returncode


def ensure_venv(requirements):
    if sys.version_info[:2] != (3, 11):
        print(f"warning: tested with Python 3.11, running {sys.version.split()[0]}")
    if not os.path.exists(PYTHON):
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    digest = hashlib.sha256()
    for name in ("requirements.txt", requirements):
        with open(os.path.join(ROOT, name), "rb") as file:
            digest.update(file.read())
    wanted = f"{requirements}:{digest.hexdigest()}"
    if os.path.exists(STAMP) and open(STAMP).read() == wanted:
        return
    if run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip") or run(
        PYTHON, "-m", "pip", "install", "--quiet", "-r", requirements
    ):
        sys.exit("pip install failed (see above)")
    with open(STAMP, "w") as file:
        file.write(wanted)


def demo():
    ensure_venv("requirements-dev.txt")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return run(
        PYTHON, "tools/convert_videomae_checkpoint.py",
        "tests/fixtures/videomae_tiny/original_pretrain.pth",
        "--output", "runs/demo/videomae_tiny.weights.h5",
        "--num-heads", "4", "--image-size", "32", "--num-frames", "4", "--verify",
        env=env,
    )  # fmt: skip


def test():
    ensure_venv("requirements-dev.txt")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("MTCAE_CREMA_D_DIR", os.path.join(ROOT, "..", "shared", "data", "crema_d"))
    if run(PYTHON, "-m", "ruff", "check", ".") or run(
        PYTHON, "-m", "ruff", "format", "--check", "."
    ):
        return 1
    code = run(PYTHON, "-m", "pytest", "-q", "-m", "not slow", *sys.argv[2:], env=env)
    if code == 5:
        print("pytest collected no tests: failing on purpose")
        return 1
    return code


if __name__ == "__main__":
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    sys.exit(commands[sys.argv[1]]())
