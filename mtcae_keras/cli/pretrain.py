"""Pre-train a video encoder by masked video modelling (VideoMAE; MAE-DFER's joint target).

    python pretrain.py --dataset synthetic_faces --fold 0 | --videos DIR
                       [--encoder PRESET|CHECKPOINT]
                       [--mask-ratio 0.9] [--mask-type tube|part_window]
                       [--target appearance|appearance_motion] [--motion-weight W]
                       [--epochs N] [--batch-size N] [--output RUN_DIR]

Labels are never read. On a cross-validated dataset only the videos of fold K's training
folds are used (`--fold K`, default 0), so that the encoder has not seen the test or the
validation actors of the fine-tuning run it is meant for (`train.py --fold K`); `--all-splits`
uses every clip (a dataset that is only for pre-training). `--videos DIR` takes any folder of
videos instead (VoxCeleb2's layout, archives included): it is built once into the
`video_folder` dataset (16 sampled frames per clip, MTCNN run so that clips without a face
are counted), and corrupt, empty, too-short, truncated and no-face videos are listed in its
report, not silently dropped.

The run dir holds config.json, log.csv (loss and learning rate per epoch), tensorboard/,
checkpoints/pretrainer.keras (encoder + decoder, after every epoch), encoder.weights.h5
(+ .config.json: what `train.py --encoder` takes) and reconstruction.png (clip, mask,
reconstruction and target of a training clip, as MAE-DFER's Fig. 4). Re-running the same
command resumes an interrupted run from its last completed epoch.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mtcae_keras import MaskedVideoPretrainer  # noqa: E402
from mtcae_keras.cli.train import GENERATED_DATASETS  # noqa: E402
from mtcae_keras.cli.train import build_backbone  # noqa: E402
from mtcae_keras.cli.train import completed_epochs  # noqa: E402
from mtcae_keras.cli.train import multi_worker_refusals  # noqa: E402
from mtcae_keras.cli.train import resolve_distribution  # noqa: E402
from mtcae_keras.cli.train import resolve_jit  # noqa: E402
from mtcae_keras.cli.train import resolve_precision  # noqa: E402
from mtcae_keras.cli.train import resume_conflicts  # noqa: E402
from mtcae_keras.data.input_pipeline import NORMALIZATIONS  # noqa: E402
from mtcae_keras.data.input_pipeline import build_command  # noqa: E402
from mtcae_keras.data.input_pipeline import builder_fold_splits  # noqa: E402
from mtcae_keras.data.input_pipeline import load_builder  # noqa: E402
from mtcae_keras.data.input_pipeline import make_pretraining_dataset  # noqa: E402
from mtcae_keras.data.input_pipeline import repeat_for_fit  # noqa: E402
from mtcae_keras.models.encoders import file_digest  # noqa: E402
from mtcae_keras.models.hub import resolve_hub_name  # noqa: E402
from mtcae_keras.pretraining import PretrainingTrainer  # noqa: E402
from mtcae_keras.pretraining.reconstruction_targets import TARGETS  # noqa: E402
from mtcae_keras.training import CachedRateAdamW  # noqa: E402
from mtcae_keras.training import warmup_cosine_decay  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="synthetic_faces, crema_d, ravdess, mead")
    source.add_argument(
        "--videos",
        metavar="DIR",
        help="a folder of unlabelled videos (any layout, e.g. VoxCeleb2's): built "
        "once into the video_folder dataset, with its bad-input report",
    )
    parser.add_argument("--dataset-config", help="TFDS builder config (builder default if unset)")
    parser.add_argument("--fold", type=int, default=0,
                        help="use the videos of this fold's training folds only")  # fmt: skip
    parser.add_argument("--all-splits", action="store_true", help="use every clip of the dataset")
    parser.add_argument(
        "--encoder",
        help="encoder preset, checkpoint or converted .weights.h5 to start from; a pre-training"
        " checkpoint with its decoder (Hugging Face VideoMAEForPreTraining, MCG-NJU or MAE-DFER"
        " .pth) continues with that decoder (default: the dataset's train.py default)",
    )
    parser.add_argument("--encoder-image-size", type=int, help="as train.py")
    parser.add_argument("--mask-ratio", type=float, default=0.9)
    parser.add_argument("--mask-type", choices=["tube", "part_window"],
                        help="default: tube (VideoMAE); part_window for LGI-Former")  # fmt: skip
    parser.add_argument(
        "--window-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="part_window: tokens per window (LGI-Former: its region's)",
    )
    parser.add_argument("--target", choices=TARGETS, default="appearance")
    parser.add_argument(
        "--motion-weight",
        type=float,
        help="appearance_motion: weight of the frame differences (MAE-DFER's"
        " target_diff_weight; default: one mean over the whole target)",
    )
    parser.add_argument("--norm-pix-loss", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--decoder-hidden-dim", type=int, help="default 384 (VideoMAE's)")
    parser.add_argument("--decoder-num-layers", type=int, help="default 4")
    parser.add_argument("--decoder-num-heads", type=int,
                        help="default 6; give it for a .pth, which does not store it")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--warmup-epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="global")
    parser.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (MAE-DFER)")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--normalization", default="imagenet", choices=sorted(NORMALIZATIONS))
    parser.add_argument("--mixed-precision", default="auto",
                        choices=["auto", "off", "bfloat16", "float16"])  # fmt: skip
    parser.add_argument("--jit-compile", default="auto", choices=["auto", "on", "off"])
    parser.add_argument(
        "--distribute",
        default="auto",
        choices=["auto", "none", "mirrored", "multi_worker"],
        help="multi_worker: MultiWorkerMirroredStrategy from TF_CONFIG, trained by"
        " PretrainingTrainer's strategy.run loop (Keras fit cannot drive it); each worker"
        " gives its own --output, the chief (worker 0) writes the outputs",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", help="TFDS data dir (default: TFDS's)")
    parser.add_argument("--output", help="run dir (default: runs/pretrain_<dataset>_fold<k>)")
    parser.add_argument("--force-resume", action="store_true",
                        help="resume an unfinished run whose settings differ")  # fmt: skip
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    args = parser.parse_args(argv)
    if args.videos:
        args.dataset = "video_folder"
    return args


def load_source(args):
    """The builder of `--dataset`, or of `--videos DIR` built (once) into its own data dir
    (`<data dir>/video_folders/<folder name>_<hash of its path>`), and its report's path."""
    dataset_name = args.dataset.split("/")[0]
    if not args.videos:
        builder = load_builder(args.dataset, data_dir=args.data_dir, config=args.dataset_config,
                               prepare=dataset_name in GENERATED_DATASETS)  # fmt: skip
        return builder, None
    import hashlib

    import tensorflow_datasets as tfds

    root = os.path.abspath(args.videos)
    if not os.path.isdir(root):
        sys.exit(f"--videos {args.videos}: no such folder.")
    tag = f"{os.path.basename(root)}_{hashlib.sha256(root.encode()).hexdigest()[:8]}"
    data_dir = os.path.join(args.data_dir or os.path.expanduser("~/tensorflow_datasets"),
                            "video_folders", tag)  # fmt: skip
    builder = load_builder(
        "video_folder",
        data_dir=data_dir,
        config=args.dataset_config,
        prepare=True,
        download_config=tfds.download.DownloadConfig(manual_dir=root),
    )
    return builder, builder._report_path()


def build_pretrainer(args, info):
    """The `MaskedVideoPretrainer` and its encoder's name: a new decoder around `--encoder`,
    or the checkpoint's own decoder when `--encoder` is a pre-training checkpoint."""
    settings = {
        "mask_ratio": args.mask_ratio, "target": args.target, "motion_weight": args.motion_weight,
        "norm_pix_loss": args.norm_pix_loss, "normalization": args.normalization,
    }  # fmt: skip
    if args.mask_type:
        settings["mask_type"] = args.mask_type
    if args.window_size:
        settings["window_size"] = tuple(args.window_size)
    if args.encoder and has_pretraining_decoder(args.encoder):
        if args.decoder_hidden_dim or args.decoder_num_layers:
            raise ValueError(
                f"{args.encoder} holds a decoder, whose width and depth it continues with: "
                "drop --decoder-hidden-dim / --decoder-num-layers."
            )
        overrides = {"num_frames": info.features["video"].shape[0]}
        if args.decoder_num_heads:
            overrides["decoder_num_heads"] = args.decoder_num_heads
        if args.encoder_image_size:
            overrides["image_size"] = args.encoder_image_size
        print(f"continuing pre-training with the decoder of {args.encoder}")
        return args.encoder, MaskedVideoPretrainer.from_preset(
            args.encoder, **overrides, **settings
        )
    no_sampling = {"clip_frames": None, "temporal_sampling": "segment"}  # train.py's flags
    name, encoder = build_backbone(argparse.Namespace(**{**vars(args), **no_sampling}), info)
    stored = info.features["video"].shape[0]
    if encoder.num_frames != stored:  # no temporal sampling here: every stored frame is used
        sys.exit(
            f"--encoder {name} takes {encoder.num_frames}-frame clips; {args.dataset} stores "
            f"{stored} frames per clip, and pre-training takes every stored frame. Use an "
            f"encoder of {stored} frames."
        )
    decoder = {"decoder_hidden_dim": args.decoder_hidden_dim or 384,
               "decoder_num_layers": args.decoder_num_layers or 4,
               "decoder_num_heads": args.decoder_num_heads or 6}  # fmt: skip
    return name, MaskedVideoPretrainer(encoder, **decoder, **settings)


def has_pretraining_decoder(path):
    """Whether a checkpoint file or folder (or `hf://` repository) holds a pre-training
    decoder."""
    path = resolve_hub_name(path)
    if not os.path.exists(path) or path.endswith(".weights.h5"):
        return False
    from mtcae_keras.conversion import load_videomae_checkpoint
    from mtcae_keras.conversion.pretrainer_port import split_pretraining_state_dict

    _, state_dict = load_videomae_checkpoint(path)
    return bool(split_pretraining_state_dict(state_dict)[1])


def save_reconstruction_figure(pretrainer, batch, path, frames=4):
    """Rows: clip, masked clip, reconstruction, each at `frames` evenly spaced frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pixels, hidden, rebuilt = pretrainer.reconstruct(batch["pixel_values"][:1], batch["mask"][:1])
    picks = np.linspace(0, pixels.shape[1] - 1, frames).round().astype(int)
    figure, axes = plt.subplots(3, frames, figsize=(2.2 * frames, 6.9))
    for row, (title, clip) in enumerate(
        (("clip (target)", pixels), ("visible tokens", hidden), ("reconstruction", rebuilt))
    ):
        for column, index in enumerate(picks):
            axis = axes[row, column]
            axis.imshow(clip[0, index])
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                axis.set_ylabel(title)
            if row == 0:
                axis.set_title(f"frame {index}")
    figure.suptitle(f"mask ratio {pretrainer.mask_ratio}, {pretrainer.mask_type} masking, "
                    f"{pretrainer.target} target")  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    refused = multi_worker_refusals(args)
    if refused:
        sys.exit("Refused, not silently dropped:\n  " + "\n  ".join(refused))
    dataset_name = args.dataset.split("/")[0]
    run_dir = args.output or os.path.join(
        "runs",
        f"pretrain_{os.path.basename(os.path.abspath(args.videos))}"
        if args.videos
        else f"pretrain_{dataset_name}_fold{args.fold}",
    )
    os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)

    # 1. Distribution, precision, XLA: as train.py resolves them.
    strategy = resolve_distribution(args.distribute)
    keras.utils.set_random_seed(args.seed)
    precision = resolve_precision(args.mixed_precision)
    keras.mixed_precision.set_global_policy(precision)
    multi_worker = args.distribute == "multi_worker"
    jit_compile = resolve_jit(args.jit_compile, strategy) and not multi_worker
    print(f"replicas: {strategy.num_replicas_in_sync}, policy: {precision}, XLA: {jit_compile}")

    # 2. Unlabelled videos: fold K's training folds (or every split).
    builder, report = load_source(args)
    if not builder.is_prepared():
        sys.exit(f"{args.dataset} is not built in {builder.data_dir_root}: build it first "
                 f"({build_command(builder)}).")  # fmt: skip
    if report:
        with open(report) as file:
            built = json.load(file)["train"]
        print(f"{args.videos}: {built['kept']} of {built['found']} videos kept; skipped "
              f"{len(built['skipped'])}, no face {len(built['no_face_clips'])}, fewer than 16 "
              f"frames {len(built['repeated_frames'])}, truncated "
              f"{len(built['short_decodes'])} (report: {report})")  # fmt: skip
    whole = args.all_splits or builder.num_folds is None  # a folder of videos: no folds
    if whole:
        splits = sorted(builder.info.splits)
    else:
        splits = builder_fold_splits(builder, args.fold)["train"]

    # 3. Encoder and decoder; a setting the encoder cannot pre-train with is refused.
    with strategy.scope():
        try:
            encoder_name, pretrainer = build_pretrainer(args, builder.info)
        except ValueError as error:
            sys.exit(f"Refused: {error}")
        pretrainer.build()
    data = make_pretraining_dataset(
        builder, splits, pretrainer.mask_generator, args.batch_size,
        image_size=pretrainer.encoder.input.shape[2:4], normalization=args.normalization,
        seed=args.seed,
    )  # fmt: skip
    steps_per_epoch = int(data.cardinality())
    encoder_path = resolve_hub_name(encoder_name) if encoder_name else None  # hf://: the cache
    config = {**vars(args), "splits": splits, "encoder": encoder_name,
              "replicas": strategy.num_replicas_in_sync,
              "encoder_kind": type(pretrainer.encoder).__name__,
              "encoder_sha256": file_digest(encoder_path) if encoder_path and
              os.path.exists(encoder_path) else None,
              "mask_type": pretrainer.mask_type, "visible_tokens": pretrainer.num_visible,
              "masked_tokens": pretrainer.num_masked, "steps_per_epoch": steps_per_epoch,
              "policy": precision, "jit_compile": jit_compile}  # fmt: skip
    config = json.loads(json.dumps(config, default=str))
    config_path, backup_dir = os.path.join(run_dir, "config.json"), os.path.join(run_dir, "backup")
    resuming = os.path.isdir(backup_dir)
    if resuming and os.path.exists(config_path) and not args.force_resume:
        with open(config_path) as file:
            conflicts = resume_conflicts(json.load(file), config)
        if conflicts:
            sys.exit(f"{run_dir} holds an unfinished run with other settings:\n  "
                     + "\n  ".join(conflicts) + "\nRun the same command, choose another "
                     "--output, or pass --force-resume.")  # fmt: skip
    with open(config_path, "w") as file:
        json.dump(config, file, indent=2)
    print(f"run dir: {run_dir}; {len(splits)} splits, {steps_per_epoch} batches per epoch, "
          f"{pretrainer.num_visible} visible / {pretrainer.num_masked} masked tokens")  # fmt: skip

    # 4. AdamW (betas 0.9 / 0.95, as VideoMAE and MAE-DFER) with warm-up and cosine decay.
    schedule = warmup_cosine_decay(
        args.lr,
        steps_per_epoch * args.epochs,
        warmup_fraction=args.warmup_epochs / max(args.epochs, 1),
    )
    with strategy.scope():
        optimizer = CachedRateAdamW(schedule, weight_decay=args.weight_decay, beta_2=0.95)
        if not multi_worker:
            pretrainer.compile(optimizer, jit_compile=jit_compile)
            pretrainer.optimizer.build(pretrainer.trainable_variables)  # not in the traced step
    pretrainer_path = os.path.join(run_dir, "checkpoints", "pretrainer.keras")
    log_path = os.path.join(run_dir, "log.csv")
    if not resuming and os.path.exists(log_path):
        os.remove(log_path)  # a finished earlier run: a new one

    # 5. Pre-train; a resumed run first replays the finished epochs' shuffled orders.
    start = time.time()
    if multi_worker:  # our strategy.run loop: Keras 3 fit fails under this strategy
        trainer = PretrainingTrainer(pretrainer, optimizer, strategy)
        trainer.fit(data, args.epochs, log_path=log_path, checkpoint_path=pretrainer_path,
                    monitor="loss", mode="min", save_best_only=False, verbose=args.verbose,
                    callbacks=[keras.callbacks.TerminateOnNaN()],
                    tensorboard_dir=os.path.join(run_dir, "tensorboard"),
                    backup_dir=backup_dir)  # fmt: skip
        if not trainer.is_chief:
            return 0
    else:
        callbacks = [
            keras.callbacks.BackupAndRestore(backup_dir),
            keras.callbacks.ModelCheckpoint(pretrainer_path),
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.CSVLogger(log_path, append=True),
            keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
        ]
        train_data, steps = repeat_for_fit(data, completed_epochs(backup_dir))
        pretrainer.fit(train_data, steps_per_epoch=steps, epochs=args.epochs,
                       callbacks=callbacks, verbose=args.verbose)  # fmt: skip
    print(f"pre-trained in {time.time() - start:.0f} s")

    # 6. The encoder, as train.py --encoder takes it, and a reconstruction figure.
    encoder_path = os.path.join(run_dir, "encoder.weights.h5")
    pretrainer.encoder.save_converted(encoder_path)
    save_reconstruction_figure(pretrainer, next(iter(data)),
                               os.path.join(run_dir, "reconstruction.png"))  # fmt: skip
    print(f"encoder: {encoder_path} (train.py --encoder {encoder_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
