"""The ABAW4 frameworks on synthetic_faces' per-frame affect tasks, from pre-extracted features.

    python bench/temporal_frameworks.py --features runs/abaw4/features.h5
        [--test-fold 0] [--validation-fold 1] [--seeds 0 1 2] [--epochs 20]
        [--output bench/results/temporal_frameworks_cpu.json]

The features come from `tools/extract_frame_features.py` (an encoder pre-trained without
labels on the training folds' videos, e.g. `bench/label_efficiency.py`'s
`runs/label_efficiency/pretrain_fold0/encoder.weights.h5`). For every framework (basic,
share-bottom, feedback: action-unit features fed into the expression branch) and temporal
encoder (GRU, LSTM, Transformer) and seed: train on the other folds, keep the epoch of the
lowest validation loss, and score the held-out fold once: CCC of valence and arousal, macro
F1 of the per-frame expression (the clip's class at every frame; 6 classes), mean F1 of the
12 action units, and P_MTL. Post-processing as the paper: the smoothing window of each of
V and A chosen on the validation fold (`choose_smoothing_window`), and the 3-seed ensemble
(`ensemble_outputs`, probabilities and regressions averaged). The recipe (widths, epochs,
learning rate) was fixed before any result was seen.

Prints one table row per framework x encoder: P_MTL mean ± std over the seeds, smoothed, and
of the ensemble.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TASKS = {"valence": 1, "arousal": 1, "expression": 6, "action_units": 12}
FRAMEWORKS = ("basic", "share_bottom", "feedback")
KINDS = ("gru", "lstm", "transformer")
MODEL = {"hidden_dim": 64, "num_layers": 2, "num_heads": 4, "intermediate_dim": 128,
         "dropout_rate": 0.1, "head_dims": (32,), "share_layers": 1,
         "feed_sources": ("action_units",), "feed_targets": ("expression",)}  # fmt: skip


def split_data(path, folds):
    """Features and per-frame labels of the given folds, concatenated."""
    from tools.extract_frame_features import load_frame_features

    parts = [load_frame_features(path, f"fold{k}") for k in folds]
    frames = parts[0]["features"].shape[1]
    data = {"features": np.concatenate([p["features"] for p in parts])}
    for task in ("valence", "arousal", "action_units"):
        data[task] = np.concatenate([p[task] for p in parts])
    data["expression"] = np.repeat(np.concatenate([p["label"] for p in parts])[:, None],
                                   frames, axis=1)  # fmt: skip
    return data


def train(framework, kind, seed, data, epochs, folder):
    import keras

    from mtcae_keras import build_temporal_multitask_model
    from mtcae_keras.training.affect_losses import ABAW4_LOSS_WEIGHTS
    from mtcae_keras.training.affect_losses import affect_losses

    keras.utils.set_random_seed(seed)
    train_data, validation = data["train"], data["validation"]
    model = build_temporal_multitask_model(
        train_data["features"].shape[-1], train_data["features"].shape[1], framework, kind,
        tasks=TASKS, **MODEL,
    )  # fmt: skip
    model.compile(keras.optimizers.Adam(1e-3, clipnorm=5.0), loss=affect_losses(TASKS),
                  loss_weights=ABAW4_LOSS_WEIGHTS)  # fmt: skip
    path = os.path.join(folder, f"{framework}_{kind}_seed{seed}.weights.h5")
    best = keras.callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True,
                                           save_weights_only=True)  # fmt: skip
    labels = {task: train_data[task] for task in TASKS}
    val_labels = {task: validation[task] for task in TASKS}
    model.fit(train_data["features"], labels, validation_data=(validation["features"], val_labels),
              epochs=epochs, batch_size=32, callbacks=[best], verbose=0)  # fmt: skip
    model.load_weights(path)
    return {split: model.predict(data[split]["features"], batch_size=128, verbose=0)
            for split in ("validation", "test")}  # fmt: skip


def scores(labels, outputs, windows=None):
    """affect_metrics on the test fold, V and A smoothed with `windows` if given."""
    from mtcae_keras.training.affect_metrics import affect_metrics
    from mtcae_keras.training.affect_postprocessing import smooth_predictions

    outputs = dict(outputs)
    for task, window in (windows or {}).items():
        outputs[task] = np.stack(smooth_predictions(list(outputs[task]), window))
    metrics = affect_metrics({t: labels[t] for t in TASKS}, outputs, num_classes=6)
    return {k: metrics[k] for k in ("ccc_valence", "ccc_arousal", "expression_f1",
                                    "action_unit_f1", "p_mtl")}  # fmt: skip


def windows_on_validation(labels, outputs):
    """The smoothing window of V and of A, chosen by validation CCC."""
    from mtcae_keras.training.affect_postprocessing import choose_smoothing_window

    return {task: choose_smoothing_window(list(outputs[task]), list(labels[task]))[0]
            for task in ("valence", "arousal")}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", required=True)
    parser.add_argument("--test-fold", type=int, default=0)
    parser.add_argument("--validation-fold", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "abaw4"))
    parser.add_argument("--output", help="also write the measurements as JSON")
    args = parser.parse_args()
    from mtcae_keras.training.affect_postprocessing import ensemble_outputs

    os.makedirs(args.runs, exist_ok=True)
    others = [k for k in range(5) if k not in (args.test_fold, args.validation_fold)]
    data = {"train": split_data(args.features, others),
            "validation": split_data(args.features, [args.validation_fold]),
            "test": split_data(args.features, [args.test_fold])}  # fmt: skip
    rows = []
    print("| framework | encoder | P_MTL (seeds) | smoothed | 3-run ensemble | ensemble smoothed "
          "| CCC V / A | F1 expr / AU | s per run |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for framework in FRAMEWORKS:
        for kind in KINDS:
            runs, raw, smooth, start = [], [], [], time.time()
            for seed in args.seeds:
                predictions = train(framework, kind, seed, data, args.epochs, args.runs)
                runs.append(predictions)
                windows = windows_on_validation(data["validation"], predictions["validation"])
                raw.append(scores(data["test"], predictions["test"]))
                smooth.append(scores(data["test"], predictions["test"], windows))
            seconds = (time.time() - start) / len(args.seeds)
            ensemble = {s: ensemble_outputs([r[s] for r in runs]) for s in ("validation", "test")}
            windows = windows_on_validation(data["validation"], ensemble["validation"])
            joint, joint_smooth = scores(data["test"], ensemble["test"]), scores(
                data["test"], ensemble["test"], windows)  # fmt: skip
            p = np.array([r["p_mtl"] for r in raw])
            ps = np.array([r["p_mtl"] for r in smooth])

            def mean(key, results=raw):
                return np.mean([r[key] for r in results])

            rows.append({"framework": framework, "encoder": kind, "seeds": args.seeds,
                         "raw": raw, "smoothed": smooth, "ensemble": joint,
                         "ensemble_smoothed": joint_smooth, "ensemble_windows": windows,
                         "seconds_per_run": seconds})  # fmt: skip
            print(f"| {framework} | {kind} | {p.mean():.3f} ± {p.std():.3f} | "
                  f"{ps.mean():.3f} ± {ps.std():.3f} | {joint['p_mtl']:.3f} | "
                  f"{joint_smooth['p_mtl']:.3f} | {mean('ccc_valence'):.3f} / "
                  f"{mean('ccc_arousal'):.3f} | {mean('expression_f1'):.3f} / "
                  f"{mean('action_unit_f1'):.3f} | {seconds:.0f} |", flush=True)  # fmt: skip
    print(f"(test fold {args.test_fold}, validation fold {args.validation_fold}; P_MTL = mean "
          "CCC + expression macro F1 + mean AU F1, at most 3)")  # fmt: skip
    if args.output:
        with open(args.output, "w") as file:
            json.dump({"features": args.features, "test_fold": args.test_fold,
                       "validation_fold": args.validation_fold, "epochs": args.epochs,
                       "model": {k: list(v) if isinstance(v, tuple) else v
                                 for k, v in MODEL.items()}, "rows": rows},
                      file, indent=2, default=float)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
