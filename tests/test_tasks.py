"""tasks.py's install bookkeeping: which requirement sets a venv already satisfies."""

import os

import tasks


def _project(tmp_path, monkeypatch):
    (tmp_path / "requirements.txt").write_text("numpy==2.4.6\n")
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\npytest==9.2.0\n")
    os.makedirs(tmp_path / ".venv")
    monkeypatch.setattr(tasks, "ROOT", str(tmp_path))
    monkeypatch.setattr(tasks, "VENV", str(tmp_path / ".venv"))


def _mark_installed(requirements):
    path, digest = tasks._stamp(requirements)
    with open(path, "w") as file:
        file.write(digest)


def test_the_development_set_satisfies_the_runtime_set_but_not_the_reverse(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch)
    assert not tasks.installed("requirements.txt")
    _mark_installed("requirements.txt")
    assert tasks.installed("requirements.txt")
    assert not tasks.installed("requirements-dev.txt")  # demo's install does not cover tests
    _mark_installed("requirements-dev.txt")
    assert tasks.installed("requirements-dev.txt")


def test_an_edited_requirements_file_invalidates_every_set_that_includes_it(tmp_path, monkeypatch):
    _project(tmp_path, monkeypatch)
    _mark_installed("requirements-dev.txt")
    assert tasks.installed("requirements.txt")  # via the development set, which includes it
    (tmp_path / "requirements.txt").write_text("numpy==2.4.7\n")
    assert not tasks.installed("requirements.txt")
    assert not tasks.installed("requirements-dev.txt")
