"""cross_validate.py and evaluate.py --ensemble end to end on synthetic_faces tiny_unbalanced:
five folds with unequal classes, so that WAR and UAR differ and a UAR bug shows."""

import json
import os

import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from sklearn.metrics import balanced_accuracy_score

import cross_validate
import evaluate
import train

FLAGS = ["--epochs", "1", "--batch-size", "9", "--verbose", "0", "--jit-compile", "off",
         "--strategy", "stl"]  # fmt: skip


def _base(tmp_path):
    return ["--dataset", "synthetic_faces", "--dataset-config", "tiny_unbalanced",
            "--data-dir", str(tmp_path / "tfds")]  # fmt: skip


def _predictions(run_dir):
    with np.load(os.path.join(run_dir, "predictions.npz")) as data:
        return {key: data[key] for key in data.files}


def _softmax(logits):
    exponentials = np.exp(logits - logits.max(-1, keepdims=True))
    return exponentials / exponentials.sum(-1, keepdims=True)


@pytest.mark.slow
def test_cross_validation_table_pools_five_folds_and_the_ensemble_averages_probabilities(
    tmp_path, capsys
):
    root = tmp_path / "cv"
    assert cross_validate.main(_base(tmp_path) + FLAGS + ["--output", str(root)]) == 0
    table = capsys.readouterr().out
    runs = [str(root / f"fold{k}") for k in range(5)]
    for k, run in enumerate(runs):
        config = json.loads(open(os.path.join(run, "config.json")).read())
        assert config["fold"] == k and config["validation"] == "actors"
        assert config["test_splits"] == [f"fold{k}"] and config["validation_clips"] == 9
        assert f"synthetic_faces fold {k} stl" in table
    assert "mean ± s.d. (5 runs)" in table and "pooled (5 runs)" in table

    # Pooled metrics are those of the concatenated predictions, recomputed here with
    # scikit-learn; the folds' classes are unequal, so WAR and UAR differ.
    predictions = [_predictions(run) for run in runs]
    labels = np.concatenate([p["label"] for p in predictions])
    predicted = np.concatenate([p["logits"].argmax(-1) for p in predictions])
    pooled = json.loads((root / "pooled_metrics.json").read_text())
    assert pooled["pooled"]["count"] == 45 == len(labels)
    assert pooled["pooled"]["uar"] == pytest.approx(balanced_accuracy_score(labels, predicted))
    assert pooled["pooled"]["war"] == pytest.approx(accuracy_score(labels, predicted))
    fold_uar = [json.loads(open(os.path.join(r, "metrics.json")).read())["uar"] for r in runs]
    assert pooled["mean"]["uar"] == pytest.approx(np.mean(fold_uar))
    assert pooled["std"]["uar"] == pytest.approx(np.std(fold_uar, ddof=1))
    assert (root / "pooled_table.md").read_text().startswith("| run | UAR % |")
    assert os.path.exists(root / "pooled_confusion_matrix.png")

    # Resumable: finished folds with the same settings are kept; other settings are refused.
    logs = [os.path.getmtime(os.path.join(run, "log.csv")) for run in runs]
    assert cross_validate.main(_base(tmp_path) + FLAGS + ["--output", str(root)]) == 0
    assert "fold 3: finished with these settings" in capsys.readouterr().out
    assert logs == [os.path.getmtime(os.path.join(run, "log.csv")) for run in runs]
    with pytest.raises(SystemExit, match=r"other settings:\n  lr: 0.001 -> 0.01"):
        cross_validate.main(_base(tmp_path) + FLAGS + ["--output", str(root), "--lr", "0.01"])

    # An ensemble of fold 0 with a second seed that selected on the test fold: the average
    # of the two runs' softmax probabilities, and marked optimistic.
    other = str(tmp_path / "seed1")
    argv = _base(tmp_path) + FLAGS + ["--fold", "0", "--seed", "1", "--validation", "test"]
    assert train.main(argv + ["--output", other]) == 0
    assert json.loads(open(os.path.join(other, "metrics.json")).read())["optimistic"] is True
    capsys.readouterr()
    assert evaluate.main([runs[0], other, "--ensemble", "--output", str(tmp_path / "ens")]) == 0
    out = capsys.readouterr().out
    assert "ensemble (2 runs)" in out and "Optimistic" in out
    first, second = _predictions(runs[0]), _predictions(other)
    order = np.argsort(second["clip_id"])[np.argsort(np.argsort(first["clip_id"]))]
    assert np.array_equal(second["clip_id"][order], first["clip_id"])
    expected = (_softmax(first["logits"]) + _softmax(second["logits"][order])) / 2
    ensemble = np.load(tmp_path / "ens" / "ensemble_predictions.npz")
    np.testing.assert_allclose(ensemble["probabilities"], expected, rtol=1e-5, atol=1e-7)
    metrics = json.loads((tmp_path / "ens" / "ensemble_metrics.json").read_text())["ensemble"]
    assert metrics["uar"] == pytest.approx(
        balanced_accuracy_score(first["label"], expected.argmax(-1))
    )
    with pytest.raises(SystemExit, match="same test fold"):
        evaluate.main([runs[0], runs[1], "--ensemble"])


def test_flags_cross_validation_cannot_honour_are_refused(tmp_path):
    for flag in (["--fold", "1"], ["--distribute", "multi_worker"]):
        with pytest.raises(SystemExit):
            cross_validate.parse_args(_base(tmp_path) + flag)
    with pytest.raises(SystemExit, match="--validation-share: only --validation actors"):
        train.main(_base(tmp_path) + ["--validation", "fold", "--validation-share", "0.2"])


def test_the_ablation_table_gives_mean_and_spread_over_seeds_and_both_orderings():
    import importlib.util

    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "ablation.py"
    )
    spec = importlib.util.spec_from_file_location("ablation", path)
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    pooled = {"stl": [{"uar": 0.5, "war": 0.6}, {"uar": 0.7, "war": 0.6}],
              "cascaded_vit": [{"uar": 0.55, "war": 0.5}, {"uar": 0.55, "war": 0.7}]}  # fmt: skip
    rows = ablation.strategy_rows(pooled)
    assert rows["stl"]["uar"] == pytest.approx(60.0)
    assert rows["stl"]["uar_std"] == pytest.approx(np.std([50, 70], ddof=1))
    assert rows["cascaded_vit"]["war_std"] == pytest.approx(np.std([50, 70], ddof=1))
    text = ablation.table(rows)
    assert "| stl | 60.00 ± 14.14 | 60.00 ± 0.00 | 2 | 75.87 / 76.21 |" in text
    assert "UAR order, ours:  stl > cascaded_vit" in text
    assert "UAR order, paper: cascaded_vit > stl" in text
