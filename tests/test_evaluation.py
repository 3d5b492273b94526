import numpy as np
import pytest

from mtcae_keras.training.evaluation import box_iou
from mtcae_keras.training.evaluation import classification_metrics
from mtcae_keras.training.evaluation import landmark_nme
from mtcae_keras.training.run_evaluation import metrics_from_predictions
from mtcae_keras.training.run_evaluation import pool_predictions

NAMES = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]


def test_known_war_uar_with_a_class_missing_from_the_fold():
    labels = np.array([0, 0, 0, 0, 1, 1, 3, 3, 3, 3])  # FEA, NEU, SAD absent
    predicted = np.array([0, 0, 1, 2, 1, 1, 3, 3, 0, 0])
    metrics = classification_metrics(labels, predicted, NAMES)
    assert metrics["war"] == pytest.approx(0.6)
    assert metrics["uar"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)  # not divided by 6 or 7
    assert metrics["per_class_recall"]["FEA"] is None
    assert metrics["per_class_recall"]["DIS"] == 1.0
    assert np.array(metrics["confusion_matrix"]).shape == (6, 6)
    assert metrics["confusion_matrix"][0] == [2, 1, 1, 0, 0, 0]
    assert metrics["support"]["HAP"] == 4


def test_pooled_metrics_equal_metrics_of_concatenated_predictions():
    rng = np.random.default_rng(0)
    folds = []
    for size in (7, 11, 5):
        folds.append({
            "label": rng.integers(0, 6, size),
            "logits": rng.standard_normal((size, 6)),
            "clip_id": np.array([f"c{i}" for i in range(size)]),
        })  # fmt: skip
    pooled = metrics_from_predictions(pool_predictions(folds), NAMES)
    labels = np.concatenate([f["label"] for f in folds])
    predicted = np.concatenate([f["logits"].argmax(-1) for f in folds])
    direct = classification_metrics(labels, predicted, NAMES)
    assert pooled == direct
    mean_of_folds = np.mean([metrics_from_predictions(f, NAMES)["uar"] for f in folds])
    assert pooled["count"] == 23 and pooled["uar"] != pytest.approx(mean_of_folds)


def test_pooled_metrics_known_values():
    """Worked by hand: pooling counts every clip once, which is not the mean over folds."""
    one_hot = np.eye(3)
    folds = [
        {"label": np.array([0, 0, 0, 1]), "logits": one_hot[[0, 0, 0, 1]]},  # all right
        {"label": np.array([1, 1, 2]), "logits": one_hot[[0, 1, 2]]},  # one class-1 miss
    ]
    pooled = metrics_from_predictions(pool_predictions(folds), ["a", "b", "c"])
    # Recall: class 0 3/3, class 1 2/3, class 2 1/1; accuracy 6/7. Fold means: UAR 0.875.
    assert pooled["uar"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert pooled["war"] == pytest.approx(6 / 7)
    assert pooled["count"] == 7


def test_box_iou_and_landmark_nme_known_values():
    assert box_iou([0, 0, 2, 2], [1, 1, 2, 2]) == pytest.approx(1 / 7)
    assert box_iou([0, 0, 1, 1], [0, 0, 1, 1]) == pytest.approx(1.0)
    assert box_iou([0, 0, 1, 1], [2, 2, 1, 1]) == 0.0
    target = np.array([0.3, 0.4, 0.7, 0.4, 0.5, 0.55, 0.35, 0.7, 0.65, 0.7])
    shifted = target + np.tile([0.04, 0.0], 5)  # every point 0.04 right; eyes 0.4 apart
    assert landmark_nme(shifted, target) == pytest.approx(0.1)


def test_ensemble_averages_probabilities_clip_by_clip_known_values():
    """Worked by hand: two runs, their clips in different orders. For clip b, run 0 says
    class 1 (p 0.98) and run 1 splits between classes 0 and 2: the mean probability picks
    class 1 (0.49 vs 0.26); the mean logit (a geometric mean) would pick class 0."""
    from mtcae_keras.training.run_summary import ensemble_predictions

    first = {"clip_id": np.array(["a", "b"]), "label": np.array([0, 1]),
             "logits": np.log([[0.7, 0.2, 0.1], [0.02, 0.98, 1e-6]]),
             "pred_boxes": np.zeros((2, 1, 4))}  # fmt: skip
    second = {"clip_id": np.array(["b", "a"]), "label": np.array([1, 0]),
              "logits": np.log([[0.5, 1e-6, 0.5], [0.5, 0.25, 0.25]]),
              "pred_boxes": np.ones((2, 1, 4))}  # fmt: skip
    ensemble = ensemble_predictions([first, second])
    assert list(ensemble["clip_id"]) == ["a", "b"]
    np.testing.assert_allclose(
        ensemble["probabilities"], [[0.6, 0.225, 0.175], [0.26, 0.49, 0.25]], atol=2e-6
    )
    assert list(ensemble["logits"].argmax(-1)) == [0, 1]
    assert np.mean([first["logits"][1], second["logits"][0]], 0).argmax() == 0
    np.testing.assert_allclose(ensemble["pred_boxes"], 0.5)
    with pytest.raises(ValueError, match="other clips"):
        ensemble_predictions([first, {**second, "clip_id": np.array(["b", "c"])}])
