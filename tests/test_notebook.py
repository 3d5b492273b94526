"""Executes notebooks/quickstart.ipynb on the tiny synthetic_faces config."""

import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_quickstart_notebook_runs_and_trains(tmp_path, monkeypatch):
    from tfds_builders.synthetic_faces import synthetic_faces_dataset_builder

    synthetic_faces_dataset_builder.Builder(
        config="tiny", data_dir=str(tmp_path)
    ).download_and_prepare()
    monkeypatch.setenv("MTCAE_NOTEBOOK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MTCAE_NOTEBOOK_CONFIG", "tiny")
    with open(os.path.join(ROOT, "notebooks", "quickstart.ipynb")) as file:
        notebook = nbformat.read(file, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}},
    ).execute()  # fmt: skip
    cell = notebook.cells[-1].outputs  # printed probabilities, then the shapes
    outputs = next(o for o in cell if o["output_type"] == "execute_result")["data"]["text/plain"]
    assert "'boxes': (6, 16, 4)" in outputs and "'expression_probabilities': (6, 6)" in outputs
    printed = "".join(o.get("text", "") for o in cell if o["output_type"] == "stream")
    assert "'ANG':" in printed  # the class names came with the model
    uar = notebook.cells[-3].outputs[-1]["data"]["text/plain"]
    assert uar.startswith("[") and len(uar.strip("[]").split(",")) == 2
    # model.fit printed one line per epoch: the training loss must fall.
    log = "".join(
        o.get("text", "") for o in notebook.cells[-3].outputs if o["output_type"] == "stream"
    )
    losses = [float(v) for v in re.findall(r" - loss: ([0-9.]+)", log)]
    assert len(losses) == 2 and losses[1] < losses[0], log
