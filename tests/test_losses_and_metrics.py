import numpy as np
import pytest

from mtcae_keras.training import DEFAULT_LOSS_WEIGHTS
from mtcae_keras.training import UnweightedAverageRecall
from mtcae_keras.training import compile_mtcae_model
from mtcae_keras.training import masked_mse
from mtcae_keras.training import warmup_cosine_decay
from tests.test_mtcae_model import batch
from tests.test_mtcae_model import tiny_model


def test_masked_mse_ignores_frames_without_a_face():
    loss = masked_mse("boxes")
    rng = np.random.default_rng(0)
    target, prediction = rng.random((2, 4, 4)), rng.random((2, 4, 4))
    mask = np.array([[1, 0, 1, 1], [1, 1, 1, 0]], "float32")
    base = float(loss(target, prediction, sample_weight=mask))
    expected = ((target - prediction) ** 2).mean(-1)[mask > 0].mean()
    assert base == pytest.approx(expected, rel=1e-5)
    changed = target.copy()
    changed[0, 1] += 100.0
    assert float(loss(changed, prediction, sample_weight=mask)) == pytest.approx(base, rel=1e-6)
    changed[0, 0] += 1.0
    assert float(loss(changed, prediction, sample_weight=mask)) > base + 1e-3


def test_warmup_cosine_decay_follows_its_closed_form():
    schedule = warmup_cosine_decay(2e-3, 100, warmup_fraction=0.1, alpha=0.01)
    for step in (0, 5, 10, 40, 99, 100):
        if step <= 10:
            expected = 2e-3 * step / 10
        else:
            cosine = 0.5 * (1 + np.cos(np.pi * (step - 10) / 90))
            expected = 2e-3 * (0.01 + 0.99 * cosine)
        assert float(schedule(step)) == pytest.approx(expected, rel=1e-5, abs=1e-9)
    with pytest.raises(ValueError, match="total_steps"):
        warmup_cosine_decay(1e-3, 0)


def test_model_loss_ignores_masked_frames_and_uses_the_paper_weights():
    model = compile_mtcae_model(tiny_model("cascaded_vit"), 6)
    assert DEFAULT_LOSS_WEIGHTS == {"boxes": 0.5, "landmarks": 0.5, "expression": 1.5}
    x, y, weights = batch()  # frame 1 of clip 0 has no face
    base = model.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
    y["boxes"][0, 1] += 50.0
    y["landmarks"][0, 1] -= 50.0
    same = model.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
    assert same["loss"] == pytest.approx(base["loss"], rel=1e-6)
    total = sum(DEFAULT_LOSS_WEIGHTS[k] * base[f"{k}_loss"] for k in DEFAULT_LOSS_WEIGHTS)
    assert base["loss"] == pytest.approx(total, rel=1e-5)


def test_uar_is_mean_recall_over_present_classes():
    metric = UnweightedAverageRecall(4)
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])  # class 3 absent
    predicted = np.array([0, 0, 0, 0, 1, 0, 2, 0])
    metric.update_state(y_true, np.eye(4)[predicted])
    assert float(metric.result()) == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    accuracy = (y_true == predicted).mean()
    assert float(metric.result()) != pytest.approx(accuracy)
    metric.update_state(np.array([3]), np.eye(4)[[3]])
    assert float(metric.result()) == pytest.approx((1.0 + 0.5 + 0.5 + 1.0) / 4)
    metric.reset_state()
    assert float(metric.result()) == 0.0
