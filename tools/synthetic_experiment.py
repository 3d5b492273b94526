"""One learning experiment on synthetic_faces: a model variant trained on one fold, per epoch.

    python tools/synthetic_experiment.py '{"epochs": 10, "cosine": true, "lr": 3e-3,
        "batch_size": 32, "encoder": {"drop_path_rate": 0.0},
        "decoder_overrides": {"dropout_rate": 0.0}}' [--data-dir runs/tfds]

The JSON settings (all optional): `epochs` (8), `batch_size` (16), `lr` (1e-3), `wd` (1e-3),
`cosine` (warmup over 10% of the steps, then cosine decay), `strategy` (`cascaded_vit`),
`decoder` (`tiny`), `decoder_overrides` (e.g. dropout rates), `encoder` (overrides of the
`videomae_synthetic` preset, e.g. `patch_size`, `tubelet_size`), `loss_weights`, `augment`,
`dataset_config` (`small`), `standardize_targets` (box and landmark heads predict
standardised targets, `localisation_statistics`), `fold` (0), `validation` (`actors`:
train.py's `--validation`), `seed` (0), `stop_after` (epochs run of the `epochs`-long
schedule; all by default). Prints train / validation expression accuracy per epoch; the last
line is `RESULT <settings> best val V ep E time S`.

A tuning tool: it reports validation accuracy only and never reads the test fold, so that a
recipe chosen with it can be reported on the test folds once (`cross_validate.py`). (Until
session 7 it also printed the test accuracy; the issue-4 notes' tables come from that version.)
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("settings", nargs="?", default="{}", help="JSON settings")
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "runs", "tfds"))
    args = parser.parse_args(argv)
    cfg = json.loads(args.settings)
    sys.path.insert(0, ROOT)
    import keras

    from mtcae_keras import VideoMAEBackbone
    from mtcae_keras import build_mtcae_model
    from mtcae_keras.data.input_pipeline import fold_protocol
    from mtcae_keras.data.input_pipeline import load_builder
    from mtcae_keras.data.input_pipeline import localisation_statistics
    from mtcae_keras.data.input_pipeline import make_fold_datasets
    from mtcae_keras.models.presets import BACKBONE_PRESETS
    from mtcae_keras.training import compile_mtcae_model
    from mtcae_keras.training import warmup_cosine_decay

    keras.utils.set_random_seed(cfg.get("seed", 0))  # the same seed as the data order
    builder = load_builder("synthetic_faces", data_dir=args.data_dir,
                           config=cfg.get("dataset_config"), prepare=True)  # fmt: skip
    strategy = cfg.get("strategy", "cascaded_vit")
    tasks = ("expression",) if strategy == "stl" else ("boxes", "landmarks", "expression")
    seed = cfg.get("seed", 0)
    protocol = fold_protocol(builder, cfg.get("fold", 0), cfg.get("validation", "actors"),
                             seed=seed)  # fmt: skip
    protocol = {part: protocol[part] for part in ("train", "validation")}  # never the test fold
    data = make_fold_datasets(builder, cfg.get("fold", 0), cfg.get("batch_size", 16), "imagenet",
                              tasks, seed=seed, augment=cfg.get("augment", False),
                              protocol=protocol)  # fmt: skip
    encoder = {**BACKBONE_PRESETS["videomae_synthetic"], **cfg.get("encoder", {})}
    statistics = None
    if cfg.get("standardize_targets"):
        statistics = localisation_statistics(builder, protocol["train"], augment=cfg.get("augment"))
    model = build_mtcae_model(VideoMAEBackbone(**encoder), strategy, 6, num_frames=16,
                              decoder=cfg.get("decoder", "tiny"), freeze_encoder=False,
                              target_statistics=statistics,
                              **cfg.get("decoder_overrides", {}))  # fmt: skip
    epochs = cfg.get("epochs", 8)
    steps = sum(1 for _ in data["train"]) * epochs
    lr = cfg.get("lr", 1e-3)
    if cfg.get("cosine"):
        lr = warmup_cosine_decay(lr, steps)  # train.py's --lr-schedule cosine
    compile_mtcae_model(model, 6, lr, cfg.get("wd", 1e-3), loss_weights=cfg.get("loss_weights"),
                        jit_compile=True)  # fmt: skip
    print(f"{model.count_params():,} parameters, {steps} steps", flush=True)
    accuracy = "expression_accuracy" if strategy != "stl" else "accuracy"
    best, start = (-1.0, -1), time.time()
    for epoch in range(cfg.get("stop_after", epochs)):
        history = model.fit(data["train"], validation_data=data["validation"],
                            epochs=epoch + 1, initial_epoch=epoch, verbose=0).history  # fmt: skip
        val = history[f"val_{accuracy}"][-1]
        line = f"ep {epoch} train {history[accuracy][-1]:.3f} val {val:.3f} t {time.time() - start:.0f}s"  # noqa: E501
        if "val_boxes_loss" in history:
            line += f" val box/landmark mse {history['val_boxes_loss'][-1]:.4f}"
            line += f"/{history['val_landmarks_loss'][-1]:.4f}"
        if val > best[0]:
            best = (val, epoch)
        print(line, flush=True)
    print(f"RESULT {json.dumps(cfg)} best val {best[0]:.3f} ep {best[1]} "
          f"time {time.time() - start:.0f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
