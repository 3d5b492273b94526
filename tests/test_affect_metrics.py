"""The ABAW metrics and masked losses against independent computations (scikit-learn, NumPy),
with missing labels and a class absent from the split."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from mtcae_keras.training.affect_losses import ABAW4_LOSS_WEIGHTS
from mtcae_keras.training.affect_losses import MaskedAffectLoss
from mtcae_keras.training.affect_losses import affect_losses
from mtcae_keras.training.affect_metrics import action_unit_f1
from mtcae_keras.training.affect_metrics import affect_metrics
from mtcae_keras.training.affect_metrics import concordance_correlation
from mtcae_keras.training.affect_metrics import expression_f1

RNG = np.random.default_rng(7)


def _frames(n=60):
    """Known per-frame labels and predictions; some labels missing, class 7 never present."""
    valence = RNG.uniform(-1, 1, n)
    valence[[3, 17, 40]] = -5.0
    valence_pred = np.clip(0.6 * np.where(valence == -5, 0, valence) + RNG.normal(0, 0.3, n), -1, 1)
    expression = RNG.integers(0, 7, n)  # class 7 absent from the labels ...
    expression[[5, 6, 50]] = -1
    logits = RNG.standard_normal((n, 8))
    logits[:, 7] = -10.0  # ... and from the predictions
    units = RNG.integers(0, 2, (n, 12))
    units[RNG.random((n, 12)) < 0.1] = -1
    unit_logits = RNG.standard_normal((n, 12)) + (units == 1) * 0.8
    return valence, valence_pred, expression, logits, units, unit_logits


def test_ccc_equals_its_definition_over_labelled_frames():
    valence, prediction, *_ = _frames()
    keep = valence != -5
    x, y = valence[keep], prediction[keep]
    rho = np.corrcoef(x, y)[0, 1]
    reference = 2 * rho * x.std() * y.std() / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert concordance_correlation(valence, prediction) == pytest.approx(reference, abs=1e-12)
    assert concordance_correlation(x, x) == pytest.approx(1.0)
    assert concordance_correlation(x, x + 0.5) < 1.0  # a bias costs CCC, not correlation
    assert np.isnan(concordance_correlation([-5.0, -5.0], [0.1, 0.2]))


def test_expression_macro_f1_equals_scikit_learn_over_every_class():
    _, _, expression, logits, *_ = _frames()
    keep = expression != -1
    reference = f1_score(expression[keep], logits[keep].argmax(-1), labels=list(range(8)),
                         average="macro", zero_division=0)  # fmt: skip
    macro, per_class = expression_f1(expression, logits, 8)
    assert macro == pytest.approx(reference, abs=1e-12)
    assert per_class[7] == 0.0 and len(per_class) == 8  # the absent class counts as 0
    # scikit-learn's default macro F1 (present classes only) is a different, larger number.
    present = f1_score(expression[keep], logits[keep].argmax(-1), average="macro")
    assert present > macro


def test_action_unit_f1_equals_scikit_learn_per_unit():
    *_, units, unit_logits = _frames()
    probabilities = 1 / (1 + np.exp(-unit_logits))
    mean, per_unit = action_unit_f1(units, probabilities)
    for u in range(12):
        keep = units[:, u] != -1
        expected = f1_score(units[keep, u], probabilities[keep, u] >= 0.5, zero_division=0)
        assert per_unit[u] == pytest.approx(expected, abs=1e-12), u
    assert mean == pytest.approx(per_unit.mean())


def test_p_mtl_adds_the_three_task_measures():
    valence, prediction, expression, logits, units, unit_logits = _frames()
    arousal = np.where(valence == -5, -5, -valence)
    labels = {"valence": valence, "arousal": arousal, "expression": expression,
              "action_units": units}  # fmt: skip
    outputs = {"valence": prediction, "arousal": -prediction, "expression": logits,
               "action_units": unit_logits}  # fmt: skip
    metrics = affect_metrics(labels, outputs)
    expected = (metrics["ccc_valence"] + metrics["ccc_arousal"]) / 2
    expected += metrics["expression_f1"] + metrics["action_unit_f1"]
    assert metrics["p_mtl"] == pytest.approx(expected)
    assert metrics["ccc_arousal"] == pytest.approx(metrics["ccc_valence"])
    assert "p_mtl" not in affect_metrics({"valence": valence}, {"valence": prediction})


def test_masked_losses_equal_numpy_over_labelled_entries():
    valence, prediction, expression, logits, units, unit_logits = _frames()
    keep = valence != -5
    regression = MaskedAffectLoss("regression")(valence[None], prediction[None])
    assert float(regression) == pytest.approx(np.mean((valence - prediction)[keep] ** 2), rel=1e-5)
    keep = expression != -1
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    reference = -log_probabilities[keep, expression[keep]].mean()
    classification = MaskedAffectLoss("classification")(expression[None], logits[None])
    assert float(classification) == pytest.approx(reference, rel=1e-5)
    keep = units != -1
    p = 1 / (1 + np.exp(-unit_logits))
    reference = -(units * np.log(p) + (1 - units) * np.log(1 - p))[keep].mean()
    multilabel = MaskedAffectLoss("multilabel")(units[None], unit_logits[None])
    assert float(multilabel) == pytest.approx(reference, rel=1e-5)
    assert float(MaskedAffectLoss("regression")(np.full((1, 4), -5.0), np.ones((1, 4)))) == 0.0


def test_a_temporal_model_trains_on_labels_with_gaps():
    """Compiled with the masked losses and the code's loss weights, a model fits labels with
    a clip lacking valence, missing expressions and units: finite, falling losses."""
    import keras

    from mtcae_keras import build_temporal_multitask_model

    keras.utils.set_random_seed(0)
    model = build_temporal_multitask_model(
        16, 8, "share_bottom", "gru", hidden_dim=64, num_layers=2, head_dims=(8,), dropout_rate=0.0
    )
    model.compile(keras.optimizers.Adam(3e-3, clipnorm=5.0), loss=affect_losses(model.output),
                  loss_weights=ABAW4_LOSS_WEIGHTS)  # fmt: skip
    x = RNG.standard_normal((4, 8, 16)).astype(np.float32)
    valence = RNG.uniform(-1, 1, (4, 8))
    valence[0] = -5.0  # a clip without valence labels
    y = {"valence": valence, "arousal": RNG.uniform(-1, 1, (4, 8)),
         "expression": np.where(RNG.random((4, 8)) < 0.3, -1, RNG.integers(0, 8, (4, 8))),
         "action_units": np.where(RNG.random((4, 8, 12)) < 0.2, -1,
                                  RNG.integers(0, 2, (4, 8, 12)))}  # fmt: skip
    history = model.fit(x, y, epochs=10, batch_size=4, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]


def _reference_smoothing(sequence, window):
    """AIM3-RUC/ABAW4's `smooth_predictions` (mean), loop for loop."""
    out = []
    for t in range(len(sequence)):
        left, right = max(0, t - window), min(len(sequence), t + window)
        out.append(np.mean(sequence[left : right + 1]))
    return np.array(out)


def test_smoothing_equals_the_codes_and_its_window_is_chosen_on_validation():
    from mtcae_keras.training.affect_postprocessing import choose_smoothing_window
    from mtcae_keras.training.affect_postprocessing import smooth_predictions

    lengths = (37, 52, 8)
    truth = [np.sin(np.linspace(0, 3, n)) for n in lengths]
    noisy = [x + RNG.normal(0, 0.4, len(x)) for x in truth]
    for window in (0, 1, 5, 15):
        for smoothed, sequence in zip(smooth_predictions(noisy, window), noisy, strict=True):
            np.testing.assert_allclose(smoothed, _reference_smoothing(sequence, window), atol=1e-12)
    window, scores = choose_smoothing_window(noisy, truth)
    assert sorted(scores) == [0, 5, 10, 15] and scores[window] == max(scores.values())
    assert window > 0 and scores[window] > scores[0]  # smoothing noise helps


def test_an_ensemble_averages_probabilities_and_regressions():
    from mtcae_keras.training.affect_postprocessing import ensemble_outputs

    runs = [{"valence": RNG.uniform(-1, 1, (2, 5)), "expression": RNG.standard_normal((2, 5, 8)),
             "action_units": RNG.standard_normal((2, 5, 12))} for _ in range(3)]  # fmt: skip
    mean = ensemble_outputs(runs)
    np.testing.assert_allclose(mean["valence"], np.mean([r["valence"] for r in runs], 0))
    softmax = [np.exp(r["expression"]) / np.exp(r["expression"]).sum(-1, keepdims=True)
               for r in runs]  # fmt: skip
    np.testing.assert_allclose(mean["expression_probabilities"], np.mean(softmax, 0), atol=1e-12)
    sigmoid = np.mean([1 / (1 + np.exp(-r["action_units"])) for r in runs], 0)
    np.testing.assert_allclose(mean["action_units_probabilities"], sigmoid, atol=1e-12)
    labels = {
        "expression": RNG.integers(0, 8, (2, 5)),
        "action_units": RNG.integers(0, 2, (2, 5, 12)),
    }
    metrics = affect_metrics(labels, mean)
    assert metrics["expression_f1"] == expression_f1(labels["expression"],
                                                     np.mean(softmax, 0), 8)[0]  # fmt: skip
    with pytest.raises(ValueError, match="different tasks"):
        ensemble_outputs([runs[0], {"valence": runs[1]["valence"]}])
