"""Per-frame features of a dataset's clips from a Keras encoder, for the ABAW4 temporal models.

    python tools/extract_frame_features.py --dataset synthetic_faces [--dataset-config small]
        [--encoder PRESET|CHECKPOINT|RUN_DIR] [--batch-size 8] [--data-dir DIR]
        --output features.h5

As the ABAW4 system trains on pre-extracted per-frame features: every clip of every split
goes through the encoder (a preset, a VideoMAE / MAE-DFER checkpoint, a converted
`.weights.h5`, or the fine-tuned encoder of a `train.py` run dir), its tokens are averaged per
time step and repeated over each tubelet's frames (`FrameFeaturePooling`, as the temporal
strategies do inside the model). A clip storing a multiple of the encoder's frames is cut into
consecutive windows, so every stored frame gets a feature.

The HDF5 file holds one group per split with `features` `(clips, frames, width)` float32, the
clip's `label`, `actor`, `clip_id`, and its per-frame labels when the dataset has them
(`boxes`, `landmarks`, `face_found`; `synthetic_faces` >= 1.3.0 also `valence`, `arousal`,
`action_units`); the attributes name the dataset, encoder and class names.
`load_frame_features(path, split)` reads one split back as NumPy arrays.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PER_FRAME_LABELS = ("boxes", "landmarks", "face_found", "valence", "arousal", "action_units")


def load_encoder_for(name, info):
    """The encoder of `name`: a train.py run dir's fine-tuned one, or as `train.py --encoder`."""
    if os.path.isdir(name) and os.path.exists(os.path.join(name, "config.json")):
        from mtcae_keras import MTCAEDFER

        task = MTCAEDFER.from_run(name)
        return task.backbone, task.preprocessor.normalization
    from mtcae_keras.cli.train import build_backbone

    args = argparse.Namespace(encoder=name, dataset="", clip_frames=None,
                              encoder_image_size=None, temporal_sampling="segment")  # fmt: skip
    _, backbone = build_backbone(args, info)  # refuses an encoder of more frames than stored
    return backbone, "imagenet"


def frame_feature_model(backbone):
    """`clip (B, T, H, W, 3) normalised -> (B, T, width)` per-frame features."""
    import keras

    from mtcae_keras.models.frame_feature_pooling import FrameFeaturePooling

    video = keras.Input(tuple(backbone.input.shape[1:]), name="video")
    tokens = backbone(video)
    if isinstance(tokens, dict):
        tokens = tokens["tokens"]
    frames = FrameFeaturePooling(backbone.token_grid, backbone.tubelet_size)(tokens)
    return keras.Model(video, frames, name="frame_features")


def extract_split(builder, split, model, preprocessor, batch_size):
    """Features and labels of one split (NumPy), with a progress bar."""
    import keras
    import tensorflow_datasets as tfds

    frames = model.input.shape[1]
    count = builder.info.splits[split].num_examples
    progress = keras.utils.Progbar(count, unit_name="clip")
    columns = {"features": [], "label": [], "actor": [], "clip_id": []}
    data = tfds.as_numpy(builder.as_dataset(split=split).batch(batch_size))
    for batch in data:
        video = batch["video"]
        stored = video.shape[1]
        if stored % frames:
            sys.exit(f"{split}: clips store {stored} frames, not a multiple of the encoder's "
                     f"{frames}.")  # fmt: skip
        windows = [video[:, i : i + frames] for i in range(0, stored, frames)]
        parts = [model.predict(np.asarray(preprocessor(w)), verbose=0) for w in windows]
        columns["features"].append(np.concatenate(parts, axis=1).astype(np.float32))
        for key in ("label", "actor", "clip_id", *PER_FRAME_LABELS):
            if key in batch:
                columns.setdefault(key, []).append(batch[key])
        progress.add(len(video))
    return {key: np.concatenate(values) for key, values in columns.items() if values}


def write_features(path, splits, attributes):
    import h5py

    with h5py.File(path, "w") as file:
        for key, value in attributes.items():
            file.attrs[key] = json.dumps(value)
        for split, columns in splits.items():
            group = file.create_group(split)
            for key, value in columns.items():
                if value.dtype.kind in "OSU":
                    value = value.astype("S")
                group.create_dataset(key, data=value, compression="gzip")


def load_frame_features(path, split):
    """One split of an `extract_frame_features.py` file: dict of NumPy arrays (strings
    decoded), plus `attributes` (dataset, encoder, class names)."""
    import h5py

    with h5py.File(path, "r") as file:
        columns = {key: file[split][key][()] for key in file[split]}
        attributes = {key: json.loads(value) for key, value in file.attrs.items()}
    for key in ("actor", "clip_id"):
        columns[key] = np.array([value.decode() for value in columns[key]])
    columns["attributes"] = attributes
    return columns


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--dataset-config")
    parser.add_argument("--encoder", help="preset, checkpoint or train.py run dir (default: the "
                        "dataset's train.py default)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--data-dir")
    parser.add_argument("--splits", nargs="+", help="default: every split")
    parser.add_argument("--output", required=True, help="HDF5 file to write")
    args = parser.parse_args(argv)

    from mtcae_keras.cli.train import DEFAULT_ENCODERS
    from mtcae_keras.cli.train import GENERATED_DATASETS
    from mtcae_keras.data.input_pipeline import build_command
    from mtcae_keras.data.input_pipeline import load_builder
    from mtcae_keras.models.video_preprocessor import VideoPreprocessor

    name = args.dataset.split("/")[0]
    builder = load_builder(args.dataset, data_dir=args.data_dir, config=args.dataset_config,
                           prepare=name in GENERATED_DATASETS)  # fmt: skip
    if not builder.is_prepared():
        sys.exit(f"{args.dataset} is not built: {build_command(builder)}")
    encoder = args.encoder or DEFAULT_ENCODERS.get(name, "videomae_base")
    backbone, normalization = load_encoder_for(encoder, builder.info)
    model = frame_feature_model(backbone)
    preprocessor = VideoPreprocessor(image_size=tuple(backbone.input.shape[2:4]),
                                     normalization=normalization)  # fmt: skip
    splits = {}
    for split in args.splits or sorted(builder.info.splits):
        print(f"{split}:")
        splits[split] = extract_split(builder, split, model, preprocessor, args.batch_size)
    label = builder.info.features["label"]
    write_features(args.output, splits, {
        "dataset": args.dataset, "dataset_version": str(builder.info.version),
        "encoder": encoder, "normalization": normalization, "class_names": list(label.names),
        "width": int(model.output.shape[-1]),
    })  # fmt: skip
    shapes = {split: columns["features"].shape for split, columns in splits.items()}
    print(f"wrote {args.output}: {shapes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
