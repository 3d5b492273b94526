"""Predict the expression (and per-frame face box and landmarks) of one video file.

    python predict.py VIDEO --run RUN_DIR_OR_SAVEDMODEL_OR_PRESET [--json] [--annotate OUT.png]
                      [--attention OUT.png]

Uses the run's exported SavedModel (RUN_DIR/saved_model, or a SavedModel folder given
directly), else the task model of the run's best checkpoint or of an `MTCAEDFER` preset
directory (`hf://OWNER/REPO` too): 16 frames sampled uniformly over the clip, resized to the
model's input size.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mtcae_keras.data.video_reader import VideoDecodeError  # noqa: E402
from mtcae_keras.data.video_reader import read_video  # noqa: E402


def saved_model_folder(path):
    """The SavedModel folder `path` is or holds (`RUN_DIR/saved_model`), or None."""
    for folder in (os.path.join(path, "saved_model"), path):
        if os.path.exists(os.path.join(folder, "saved_model.pb")):
            return folder
    return None


def serving_predictor(folder):
    """`(predict, (frames, height, width), class names)` of a SavedModel; `predict` maps a
    uint8 clip batch to the serving signature's outputs (NumPy)."""
    loaded = tf.saved_model.load(folder)
    serve = loaded.signatures["serving_default"]
    spec = serve.structured_input_signature[1]["video"]
    names = None
    if hasattr(loaded, "class_names"):
        names = [n.decode() for n in loaded.class_names[0].numpy()]

    def predict(video):
        return {k: v.numpy() for k, v in serve(video=tf.constant(video)).items()}

    return predict, tuple(spec.shape[1:4]), names


def task_predictor(task):
    """`serving_predictor`'s triple for an `MTCAEDFER`, with the serving signature's names."""

    def predict(video):
        outputs = task.predict_video(video)
        outputs["expression_logits"] = outputs.pop("expression")
        return outputs

    return predict, tuple(task.input.shape[1:4]), task.class_names


def load_task(path, needed="a SavedModel, a run dir or an MTCAEDFER preset"):
    """The `MTCAEDFER` of a run's best checkpoint or a preset, or a clear exit saying what
    was `needed`."""
    from mtcae_keras import MTCAEDFER

    try:
        return MTCAEDFER.from_preset(path)
    except (ValueError, OSError) as error:
        sys.exit(f"{path}: not {needed} ({error}).")


def load_serving(path):
    """The SavedModel's predictor when `path` is or holds one, else the task model's."""
    folder = saved_model_folder(path)
    return serving_predictor(folder) if folder else task_predictor(load_task(path))


def ranked(probabilities, names):
    """`(probabilities by name, best first, caption "A 90%, B 7%, C 2%")` of one clip."""
    names = names or [str(i) for i in range(len(probabilities))]
    ranking = np.argsort(-probabilities)
    caption = ", ".join(f"{names[i]} {100 * probabilities[i]:.0f}%" for i in ranking[:3])
    return {names[i]: float(probabilities[i]) for i in ranking}, caption


def frame_affect(outputs, names):
    """The per-frame predictions of a model of the `affect` tasks, as JSON lists: valence,
    arousal, expression and the probability of each action unit (empty for others)."""
    if "valence" not in outputs:
        return {}
    from mtcae_keras.data.synthetic_face_renderer import ACTION_UNITS

    expression = outputs["expression_probabilities"][0].argmax(-1)
    names = names or [str(i) for i in range(outputs["expression_probabilities"].shape[-1])]
    units = outputs.get("action_unit_probabilities")
    if units is None:  # the Keras model's logits
        units = 1 / (1 + np.exp(-np.asarray(outputs["action_units"], np.float64)))
    return {"frames": {
        "valence": np.round(outputs["valence"][0], 4).tolist(),
        "arousal": np.round(outputs["arousal"][0], 4).tolist(),
        "expression": [names[i] for i in expression],
        "action_unit_probabilities": {unit: np.round(units[0][:, u], 4).tolist()
                                      for u, unit in enumerate(ACTION_UNITS)},
    }}  # fmt: skip


def annotate(frames, outputs, path, caption=None):
    """Writes the sampled frames in a 4x4 grid with predicted boxes and landmarks, under a
    strip with `caption` (the predicted class and top probabilities)."""
    import cv2

    tiles = []
    for t, frame in enumerate(frames):
        tile = cv2.resize(frame, (224, 224)).copy()
        if "boxes" in outputs:
            x, y, w, h = (outputs["boxes"][0, t] * 224).tolist()
            cv2.rectangle(tile, (int(x), int(y)), (int(x + w), int(y + h)), (255, 0, 0), 2)
            for px, py in (outputs["landmarks"][0, t].reshape(5, 2) * 224).tolist():
                cv2.circle(tile, (int(px), int(py)), 3, (0, 255, 0), -1)
        tiles.append(tile)
    rows = [np.concatenate(tiles[i : i + 4], axis=1) for i in range(0, len(tiles), 4)]
    grid = np.concatenate(rows, axis=0)
    if caption:
        strip = np.full((40, grid.shape[1], 3), 255, np.uint8)
        cv2.putText(strip, caption, (8, 27), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2)
        grid = np.concatenate([strip, grid], axis=0)
    cv2.imwrite(path, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))


def attention_figure(task, frames, path, caption):
    """Writes each ViT decoder's last-layer attention (mean over heads and queries) over the
    frames of one clip: one row per decoder (`mtcae_keras.visualization`).

    Raises:
        ValueError: the model has no ViT decoder (stl, MLP strategies).
    """
    from mtcae_keras.visualization import attention_maps
    from mtcae_keras.visualization import plot_attention

    maps = attention_maps(task, np.asarray(task.preprocessor(frames[None])))
    return plot_attention(frames, {name: volume[0] for name, volume in maps.items()}, path,
                          caption)  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video")
    parser.add_argument("--run", required=True,
                        help="train.py run dir, SavedModel folder or MTCAEDFER preset")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--annotate", help="write the frames with boxes/landmarks to this PNG")
    parser.add_argument("--attention", help="write each decoder's attention on the frames to"
                        " this PNG (a run dir or preset: needs the Keras model)")  # fmt: skip
    args = parser.parse_args(argv)

    folder = saved_model_folder(args.run)
    task = None  # the Keras model, loaded once: for the attention, or without a SavedModel
    if args.attention:
        task = load_task(args.run, "a run dir or an MTCAEDFER preset (--attention needs the"
                         " Keras model)")  # fmt: skip
    elif folder is None:
        task = load_task(args.run)
    predict, (frames_needed, height, width), names = (
        serving_predictor(folder) if folder else task_predictor(task)
    )
    try:
        frames, info = read_video(args.video, frames_needed, (height, width))
    except VideoDecodeError as error:
        sys.exit(f"cannot read video: {error}")
    outputs = predict(frames[None])
    clip_probabilities = outputs["expression_probabilities"][0]
    if clip_probabilities.ndim == 2:  # the affect tasks: per frame; the clip's is their mean
        clip_probabilities = clip_probabilities.mean(0)
    probabilities, top = ranked(clip_probabilities, names)
    result = {
        "video": args.video,
        "expression": next(iter(probabilities)),
        "probabilities": probabilities,
        "source_frames": info["frame_count"],
    }
    result.update(frame_affect(outputs, names))
    if args.annotate:
        annotate(frames, outputs, args.annotate, caption=top)
        result["annotated"] = args.annotate
    if args.attention:
        try:
            result["attention"] = attention_figure(task, frames, args.attention, top)
        except ValueError as error:
            sys.exit(f"--attention: {error}")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.video}: {result['expression']}")
        for name, p in result["probabilities"].items():
            print(f"  {name:>8} {100 * p:5.1f}%")
        if "frames" in result:
            valence, arousal = (np.mean(result["frames"][k]) for k in ("valence", "arousal"))
            print(f"  mean over the frames: valence {valence:+.2f}, arousal {arousal:+.2f}"
                  " (--json: every frame)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
