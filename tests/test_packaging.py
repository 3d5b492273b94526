"""The installed package: dependencies, console scripts, and builders found by name outside
the repository (a wheel built from a copy of the sources, installed to a target folder)."""

import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ("mtcae-train", "mtcae-evaluate", "mtcae-predict", "mtcae-pretrain",
           "mtcae-cross-validate", "mtcae-demo-app")  # fmt: skip


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        return tomllib.load(file)["project"]


def _name(requirement):
    return re.split(r"[<>=!~ ;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_dependencies_are_the_pinned_requirements():
    pinned = {}
    with open(os.path.join(ROOT, "requirements.txt")) as file:
        for line in file:
            line = line.split("#")[0].strip()
            if line:
                name, version = line.split("==")
                pinned[_name(name)] = version
    declared = {_name(r): r.split(">=")[1] for r in _project()["dependencies"]}
    assert declared == pinned  # the same packages, each with its pin as the floor


def test_importing_mtcae_keras_first_turns_tensorflows_onednn_kernels_on_unless_told_not_to():
    # On an AVX2-only CPU TensorFlow leaves them off (README "Speed"); this machine may have
    # them on by default, so the variable is checked as well as TensorFlow's reading of it.
    code = ("import os, mtcae_keras; from tensorflow.python.util import _pywrap_util_port as p;"
            "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], p.IsMklEnabled())")  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for preset, expected in ((None, ["1", "True"]), ("0", ["0", "False"])):
        extra = {"TF_ENABLE_ONEDNN_OPTS": preset} if preset else {}
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                                text=True, env={**env, **extra})  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.split()[-2:] == expected


def test_console_scripts_name_existing_mains():
    import importlib

    scripts = _project()["scripts"]
    assert sorted(scripts) == sorted(SCRIPTS)
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`pip install --no-deps --target` of a copy of the sources (the dependencies are the
    test venv's): what `pip install .` puts in site-packages, and its `bin/` scripts."""
    folder = tmp_path_factory.mktemp("install")
    source = folder / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source)
    for name in ("mtcae_keras", "tfds_builders"):
        shutil.copytree(os.path.join(ROOT, name), source / name,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    target = folder / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, cwd=folder,
    )  # fmt: skip
    work = folder / "elsewhere"  # neither the repository nor the sources
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return target, work, env


def _run(command, installed, **kwargs):
    _, work, env = installed
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, **kwargs)


def test_builders_are_found_by_name_from_elsewhere(installed):
    target, _, _ = installed
    assert os.path.isfile(target / "tfds_builders" / "crema_d" / "CITATIONS.bib")
    code = (
        "import mtcae_keras, tensorflow_datasets as tfds, tfds_builders;"
        "b = tfds.builder('crema_d/frames32', data_dir='tfds');"
        "print(type(b).__module__, tfds_builders.__file__, b.info.features['video'].shape,"
        " b.info.citation.startswith('@article'))"
    )
    result = _run([sys.executable, "-c", code], installed, check=True)
    module, path, *rest = result.stdout.split()
    assert module == "tfds_builders.crema_d.crema_d_dataset_builder"
    assert path.startswith(str(target)) and " ".join(rest) == "(32, 224, 224, 3) True"


def test_console_scripts_run_from_elsewhere(installed):
    target, work, _ = installed
    scripts = _project()["scripts"]
    for script in SCRIPTS:  # each installed, calling its main (which the test above imports)
        module, function = scripts[script].split(":")
        text = open(target / "bin" / script).read()
        assert f"from {module} import {function}" in text and sys.executable in text
    result = _run([str(target / "bin" / "mtcae-train"), "--help"], installed)
    assert result.returncode == 0 and "--validation" in result.stdout, result.stderr[-2000:]
    # One epoch on tiny synthetic_faces, built on first use in the working folder.
    result = _run(
        [str(target / "bin" / "mtcae-train"), "--dataset", "synthetic_faces/tiny", "--fold", "0",
         "--epochs", "1", "--batch-size", "4", "--jit-compile", "off", "--data-dir", "tfds",
         "--output", "run", "--verbose", "0"],
        installed, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(work / "run" / "metrics.json")
    assert os.path.isfile(work / "run" / "checkpoints" / "best.keras")
