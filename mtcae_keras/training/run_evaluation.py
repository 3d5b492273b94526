"""Evaluates a run dir's best checkpoint on its test fold; pools several runs."""

import json
import os

import numpy as np
from scipy.special import softmax

from mtcae_keras.training.affect_evaluation import add_smoothed
from mtcae_keras.training.affect_evaluation import affect_prediction_metrics
from mtcae_keras.training.affect_evaluation import choose_smoothing
from mtcae_keras.training.affect_evaluation import is_affect_prediction
from mtcae_keras.training.evaluation import classification_metrics
from mtcae_keras.training.evaluation import localisation_metrics
from mtcae_keras.visualization.figures import pyplot
from mtcae_keras.visualization.figures import save_figure
from mtcae_keras.visualization.training_plots import plot_per_class_recall
from mtcae_keras.visualization.training_plots import plot_training_curves
from mtcae_keras.visualization.training_plots import read_log


def run_file(run_dir, name, missing="is this a train.py run dir?"):
    """The path of `name` in `run_dir`, or a FileNotFoundError that says what to do."""
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir}: no {name}; {missing}")
    return path


def load_run_config(run_dir):
    with open(run_file(run_dir, "config.json")) as file:
        return json.load(file)


def run_protocol(config, builder):
    """The `fold_protocol` a run trained under (runs from before `--validation`: `fold`)."""
    from mtcae_keras.data.input_pipeline import fold_protocol

    validation = config.get("validation", "fold")
    share = config.get("validation_share") or 0.1
    return fold_protocol(builder, config["fold"], validation, share, config.get("seed", 0))


def is_optimistic(config):
    """Whether a run selected its checkpoint on its test fold (`--validation test`)."""
    return config.get("validation") == "test"


def predict_test_fold(run_dir, data_dir=None, views=1):
    """Predictions of `checkpoints/best.keras` on the run's test fold, as numpy arrays.

    With `views` > 1 (a dataset that stores more frames per clip than the model takes),
    each clip is predicted on `views` evenly spaced samples of its frames (`view_offsets`,
    by the run's `temporal_sampling`) and the softmax probabilities are averaged
    (MAE-DFER's multi-view test): `logits` are the log of the averaged probabilities,
    `view_logits` `(clips, views, classes)` each view's, and the box and landmark arrays
    hold every view's frames one after another `(clips, views * frames, ...)`. One view is
    the middle sample: for a clip stored with the model's frame count, today's prediction.
    Runs of the `affect` tasks score every frame of one view: more views are refused.
    """
    import keras

    from mtcae_keras.data.input_pipeline import SplitSelection
    from mtcae_keras.data.input_pipeline import builder_fold_splits
    from mtcae_keras.data.input_pipeline import view_offsets

    config = load_run_config(run_dir)
    if views > 1 and config.get("task_set") == "affect":
        raise ValueError(
            f"{run_dir}: --views {views}: a run of the affect tasks is scored on every frame of"
            " one view (several views would score some frames twice); leave --views out."
        )
    checkpoint = run_file(run_dir, "checkpoints/best.keras", "training not finished?")
    model = keras.saving.load_model(checkpoint, compile=False)
    builder = run_builder(config, data_dir)
    frames = model.input.shape[1]
    stored = builder.info.features["video"].shape[0]
    sampling = config.get("temporal_sampling", "segment")
    offsets = view_offsets(views, stored, frames, sampling)  # refuses more than there are
    test_fold = SplitSelection.of(builder_fold_splits(builder, config["fold"])["test"])
    per_view = [predict_selection(model, builder, config, test_fold, offset)
                for offset in offsets]  # fmt: skip
    if views == 1:
        return per_view[0], model, config
    return _combine_views(per_view), model, config


def run_builder(config, data_dir=None):
    """The TFDS builder a run trained on (`data_dir` overrides the recorded one)."""
    from mtcae_keras.data.input_pipeline import load_builder

    return load_builder(config["dataset_name"], data_dir=data_dir or config["data_dir"],
                        config=config["dataset_config"])  # fmt: skip


def predict_selection(model, builder, config, selection, offset=0.5):
    """`_predict` of `model` on the clips of `selection` (a `SplitSelection`), one view at
    `offset`, with the run's tasks, normalisation and sampling."""
    from mtcae_keras.data.input_pipeline import make_fold_datasets

    dataset = make_fold_datasets(
        builder, config["fold"], config["batch_size"], config["normalization"],
        tuple(config["tasks"]), with_metadata=True, image_size=model.input.shape[2:4],
        protocol={"test": selection}, num_frames=model.input.shape[1], eval_offset=offset,
        temporal_sampling=config.get("temporal_sampling", "segment"),
        frame_expression=config.get("task_set") == "affect",
    )["test"]  # fmt: skip
    return _predict(model, dataset)


def predict_validation(run_dir, model, config, data_dir=None):
    """`model`'s predictions on the clips that selected the run's checkpoint (its
    validation part; the test fold itself under `--validation test`)."""
    builder = run_builder(config, data_dir)
    return predict_selection(model, builder, config, run_protocol(config, builder)["validation"])


def _predict(model, dataset):
    import tensorflow as tf

    # One traced graph for every batch (the last, smaller one included), not the model run
    # eagerly op by op: the demo's evaluation took 7.5 s instead of 16.7 (README, Speed).
    forward = tf.function(lambda video: model(video, training=False), reduce_retracing=True)
    collected = {}
    for video, targets, weights, meta in dataset:
        outputs = forward(video)
        outputs = outputs if isinstance(outputs, dict) else {"expression": outputs}
        logits = np.asarray(outputs["expression"], np.float32)
        batch = {
            "clip_id": meta["clip_id"].numpy().astype(str),
            "actor": meta["actor"].numpy().astype(str),
            "label": targets["expression"].numpy(),
            "logits": logits,
        }
        if logits.ndim == 3:  # a per-frame expression: the clip's is the mean probability
            batch["frame_label"], batch["pred_frame_expression"] = batch["label"], logits
            batch["label"] = meta["label"].numpy()
            batch["logits"] = np.log(np.maximum(softmax(logits, axis=-1).mean(1), 1e-30))
        if "boxes" in outputs:
            batch["face_found"] = weights["boxes"].numpy() > 0
        for name in ("boxes", "landmarks", "valence", "arousal", "action_units"):
            if name in outputs:
                batch[f"pred_{name}"] = np.asarray(outputs[name], np.float32)
                batch[name] = targets[name].numpy()
        for key, value in batch.items():
            collected.setdefault(key, []).append(value)
    return {key: np.concatenate(values) for key, values in collected.items()}


def _combine_views(per_view):
    """One prediction set from several views of the same clips (in the same order)."""
    first = per_view[0]
    for view in per_view[1:]:
        if not np.array_equal(view["clip_id"], first["clip_id"]):
            raise RuntimeError("The test views came out in different clip orders.")
    view_logits = np.stack([view["logits"] for view in per_view], axis=1)
    probabilities = softmax(view_logits, axis=-1).mean(1)
    combined = {key: first[key] for key in ("clip_id", "actor", "label")}
    combined["logits"] = np.log(np.maximum(probabilities, 1e-30)).astype(np.float32)
    combined["view_logits"] = view_logits
    for key in ("face_found", "boxes", "landmarks", "pred_boxes", "pred_landmarks"):
        if key in first:  # every view's frames, one view after another
            combined[key] = np.concatenate([view[key] for view in per_view], axis=1)
    return combined


def training_mean_localisation(run_dir, data_dir=None):
    """The trivial localisation baseline of a run: the training folds' mean boxes and
    landmarks per frame index (over frames with a face), `(frames, 4)` and `(frames, 10)`."""
    from mtcae_keras.data.input_pipeline import localisation_statistics

    config = load_run_config(run_dir)
    builder = run_builder(config, data_dir)
    statistics = localisation_statistics(
        builder,
        run_protocol(config, builder)["train"],
        num_frames=config.get("model_frames"),
        temporal_sampling=config.get("temporal_sampling", "segment"),
    )
    return statistics["boxes"][0], statistics["landmarks"][0]


def metrics_from_predictions(predictions, class_names):
    """All test metrics of one prediction set (or a pooled concatenation of several): the
    clip expression's, the localisation's, and the affect tasks' per frame
    (`affect_prediction_metrics`) where the predictions have them."""
    metrics = classification_metrics(
        predictions["label"], predictions["logits"].argmax(-1), class_names
    )
    if is_affect_prediction(predictions):
        metrics.update(affect_prediction_metrics(predictions, len(class_names)))
    if "pred_boxes" in predictions:
        metrics.update(
            localisation_metrics(
                predictions["pred_boxes"], predictions["boxes"],
                predictions["pred_landmarks"], predictions["landmarks"],
                predictions["face_found"],
            )
        )  # fmt: skip
    return metrics


def pool_predictions(prediction_sets):
    """Concatenates the predictions of several runs (MAE-DFER pools folds this way)."""
    keys = set.intersection(*(set(p) for p in prediction_sets))
    return {key: np.concatenate([p[key] for p in prediction_sets]) for key in sorted(keys)}


def checkpoint_monitor(strategy, monitor="uar", multi_worker=False):
    """`(log column, mode)` that picks a run's best checkpoint: `train.py --monitor`'s.

    Keras names the expression metrics `val_expression_*` when the model has several outputs
    (not `stl`); `DistributedTrainer` (multi-worker) logs `val_expression_uar` and `val_loss`.
    """
    mode = "max" if monitor == "uar" else "min"
    if multi_worker:
        return ("val_expression_uar" if monitor == "uar" else "val_loss"), mode
    prefix = "" if strategy == "stl" or monitor == "loss" else "expression_"
    return f"val_{prefix}{monitor}", mode


def plot_confusion_matrix(matrix, class_names, path, title):
    """Writes a row-normalised confusion matrix as a PNG."""
    plt = pyplot()
    matrix = np.asarray(matrix, np.float64)
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    figure, axis = plt.subplots(figsize=(1 + 0.8 * len(class_names), 0.8 * len(class_names)))
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            color = "white" if rates[i, j] > 0.5 else "black"
            axis.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", color=color)
    axis.set_xticks(range(len(class_names)), class_names)
    axis.set_yticks(range(len(class_names)), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.colorbar(image, ax=axis, label="recall")
    save_figure(figure, path)


def evaluate_run(run_dir, export=False, data_dir=None, views=1):
    """Writes metrics.json, predictions.npz, confusion_matrix.png, per_class_recall.png and
    curves.png (from log.csv, the best epoch marked) into `run_dir`.

    A run of the `affect` tasks also gets the per-frame CCC, F1 and P_MTL, raw and with
    valence and arousal smoothed by the windows (`metrics["smoothing"]`) that score best on
    its validation clips, never on the test fold (`choose_smoothing`).

    Args:
        run_dir: str. A train.py run dir.
        export: bool. Also write `saved_model/` for TF Serving.
        data_dir: str. Overrides the TFDS data dir recorded in the run's config.
        views: int. Test views per clip, probabilities averaged (`predict_test_fold`).
    """
    predictions, model, config = predict_test_fold(run_dir, data_dir, views)
    class_names = config["class_names"]
    smoothing = None
    if is_affect_prediction(predictions):  # the window of each task, chosen on validation
        smoothing = choose_smoothing(predict_validation(run_dir, model, config, data_dir))
        predictions = add_smoothed(predictions, smoothing)
    metrics = metrics_from_predictions(predictions, class_names)
    if smoothing is not None:
        metrics["smoothing"] = smoothing
    metrics.update({"fold": config["fold"], "strategy": config["strategy"],
                    "dataset": config["dataset_name"], "checkpoint": "best",
                    "validation": config.get("validation", "fold"), "views": views,
                    "optimistic": is_optimistic(config)})  # fmt: skip
    if "pred_boxes" in predictions:  # the bar a localisation head has to clear
        mean_boxes, mean_landmarks = training_mean_localisation(run_dir, data_dir)
        mean_boxes = np.tile(mean_boxes, (views, 1))  # every view's frames
        mean_landmarks = np.tile(mean_landmarks, (views, 1))
        count = len(predictions["boxes"])
        baseline = localisation_metrics(
            np.broadcast_to(mean_boxes, (count, *mean_boxes.shape)), predictions["boxes"],
            np.broadcast_to(mean_landmarks, (count, *mean_landmarks.shape)),
            predictions["landmarks"], predictions["face_found"],
        )  # fmt: skip
        metrics["training_mean_baseline"] = {
            "box_iou": baseline["box_iou"], "landmark_nme": baseline["landmark_nme"]
        }  # fmt: skip
    with open(os.path.join(run_dir, "metrics.json"), "w") as file:
        json.dump(metrics, file, indent=2)
    np.savez(os.path.join(run_dir, "predictions.npz"), **predictions)
    optimistic = " (optimistic)" if metrics["optimistic"] else ""
    title = (f"{config['dataset_name']} fold {config['fold']} {config['strategy']}: "
             f"UAR {100 * metrics['uar']:.1f}{optimistic}")  # fmt: skip
    plot_confusion_matrix(metrics["confusion_matrix"], class_names,
                          os.path.join(run_dir, "confusion_matrix.png"), title)  # fmt: skip
    plot_per_class_recall(metrics, os.path.join(run_dir, "per_class_recall.png"), title)
    log_path = os.path.join(run_dir, "log.csv")
    if os.path.exists(log_path):
        monitor, mode = checkpoint_monitor(config["strategy"], config.get("monitor", "uar"),
                                           config.get("distribute") == "multi_worker")  # fmt: skip
        plot_training_curves(read_log(log_path), os.path.join(run_dir, "curves.png"), monitor,
                             mode, title)  # fmt: skip
    if export:
        from mtcae_keras.export import export_saved_model

        export_saved_model(
            model, os.path.join(run_dir, "saved_model"), config["normalization"], class_names
        )
    return metrics
