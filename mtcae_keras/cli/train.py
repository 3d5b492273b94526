"""Train MTCAE-DFER on one cross-validation fold.

    python train.py --dataset crema_d --fold 0 [--strategy cascaded_vit] [--encoder PRESET|PATH]
                    [--tasks mtcae|affect] [--loss-weights TASK=W ...]
                    [--validation actors|fold|test] [--epochs N] [--batch-size N]
                    [--lr-schedule plateau|cosine] [--augment [flip translate]]
                    [--standardize-targets] [--data-dir DIR] [--output RUN_DIR] [--export]

The run dir holds config.json (everything resolved, the clips of each part included),
checkpoints/best.keras (selected on validation actors outside the test fold, unless
--validation test says otherwise), log.csv, tensorboard/, metrics.json (test fold) and,
with --export, saved_model/. Re-running the same command resumes an interrupted run from its
last completed epoch.
"""

import argparse
import csv
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from mtcae_keras import STRATEGIES  # noqa: E402
from mtcae_keras import VideoMAEBackbone  # noqa: E402
from mtcae_keras import build_mtcae_model  # noqa: E402
from mtcae_keras.data.input_pipeline import NORMALIZATIONS  # noqa: E402
from mtcae_keras.data.input_pipeline import TEMPORAL_SAMPLINGS  # noqa: E402
from mtcae_keras.data.input_pipeline import VALIDATION_PROTOCOLS  # noqa: E402
from mtcae_keras.data.input_pipeline import build_command  # noqa: E402
from mtcae_keras.data.input_pipeline import decoded_bytes  # noqa: E402
from mtcae_keras.data.input_pipeline import fold_protocol  # noqa: E402
from mtcae_keras.data.input_pipeline import load_builder  # noqa: E402
from mtcae_keras.data.input_pipeline import localisation_statistics  # noqa: E402
from mtcae_keras.data.input_pipeline import make_fold_datasets  # noqa: E402
from mtcae_keras.data.input_pipeline import repeat_for_fit  # noqa: E402
from mtcae_keras.data.input_pipeline import temporal_choices  # noqa: E402
from mtcae_keras.models.encoders import file_digest  # noqa: E402
from mtcae_keras.models.encoders import is_encoder_preset  # noqa: E402
from mtcae_keras.models.encoders import load_encoder  # noqa: E402
from mtcae_keras.models.hub import resolve_hub_name  # noqa: E402
from mtcae_keras.models.mtcae import TASK_SETS  # noqa: E402
from mtcae_keras.models.mtcae import TEMPORAL_STRATEGIES  # noqa: E402
from mtcae_keras.models.mtcae import decoder_config  # noqa: E402
from mtcae_keras.models.presets import DECODER_PRESETS  # noqa: E402
from mtcae_keras.models.temporal_encoder import TEMPORAL_ENCODERS  # noqa: E402
from mtcae_keras.training import build_training_variables  # noqa: E402
from mtcae_keras.training import compile_mtcae_model  # noqa: E402
from mtcae_keras.training import mtcae_optimizer  # noqa: E402
from mtcae_keras.training import warmup_cosine_decay  # noqa: E402
from mtcae_keras.training.distributed_trainer import DistributedTrainer  # noqa: E402
from mtcae_keras.training.run_evaluation import checkpoint_monitor  # noqa: E402
from mtcae_keras.training.run_evaluation import evaluate_run  # noqa: E402

# Datasets that need no download are built on first use; the others need `tfds build`.
GENERATED_DATASETS = ("synthetic_faces",)
DEFAULT_ENCODERS = {"synthetic_faces": "videomae_synthetic"}
DEFAULT_DECODERS = {"synthetic_faces": "tiny"}
DEFAULT_CLIP_FRAMES = 16  # the papers' clips
# Training defaults: the paper's for the real datasets; for synthetic_faces, the best recipe
# measured within the demo's 10-minute budget on a 2-core CPU (README, issue 4 notes). Its
# 24 epochs of 72 batches became 20 of 87 when --validation actors let 58 of the 64 non-test
# actors train instead of 48: the same number of steps (1,740 vs 1,728), the same time.
# The demo's model runs a step in the same time with and without XLA on the 2 cores (130 ms,
# measured 4x alternating, issue 19), and XLA's compile would add ~10 s to its first epoch.
TRAINING_DEFAULTS = {"epochs": 100, "batch_size": 16, "lr_schedule": "plateau", "augment": [],
                     "standardize_targets": False, "jit_compile": "auto"}  # fmt: skip
DATASET_TRAINING_DEFAULTS = {
    "synthetic_faces": {"epochs": 20, "batch_size": 32, "lr_schedule": "cosine",
                        "augment": ["flip"], "standardize_targets": True, "jit_compile": "off"},
}  # fmt: skip


DECODER_MEMORY_SAVING = {"off": False, "on": True, "full": "full"}
# `--cache-clips auto` keeps the decoded training and validation clips in memory up to this
# size: synthetic_faces' 0.6 GB (on the demo's 2 cores a fed step took 120 instead of 154 ms:
# issue 19), not CREMA-D's 16x224x224 clips (about 14 GB: ~5,980 clips of 2.4 MB at fold 0).
CACHE_BUDGET_BYTES = 2 * 1024**3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="synthetic_faces, crema_d, ravdess, mead")
    parser.add_argument("--dataset-config", help="TFDS builder config (builder default if unset)")
    parser.add_argument("--fold", type=int, default=0, help="test fold")
    parser.add_argument(
        "--validation",
        default="actors",
        choices=VALIDATION_PROTOCOLS,
        help="clips that select the checkpoint: actors (default): a seeded share of the"
        " training actors, training uses the other K-1 folds' other actors; fold: the next"
        " fold, training uses K-2 folds; test: the test fold itself (optimistic, as some"
        " papers; every output says so)",
    )
    parser.add_argument(
        "--validation-share",
        type=float,
        help="--validation actors: the share of the training actors held out (default 0.1)",
    )
    parser.add_argument("--strategy", default="cascaded_vit", choices=STRATEGIES)
    parser.add_argument(
        "--tasks",
        dest="task_set",
        default="mtcae",
        choices=sorted(TASK_SETS),
        help="mtcae (default): face boxes and landmarks per frame, expression per clip;"
        " affect: the ABAW4 challenge's per-frame action units, valence, arousal and"
        " expression (datasets with those labels: synthetic_faces); evaluate.py adds CCC, F1"
        " and P_MTL",
    )
    parser.add_argument(
        "--loss-weights",
        nargs="+",
        metavar="TASK=W",
        help="loss weight of each named task (default: mtcae boxes 0.5, landmarks 0.5,"
        " expression 1.5, the paper's; affect V 12, A 12, expression 1, AU 0.35, ABAW4's)",
    )
    parser.add_argument(
        "--encoder",
        help="encoder preset (videomae_*, lgi_former_*), VideoMAE or MAE-DFER checkpoint, or"
        " converted .weights.h5 (default: videomae_base; synthetic_faces: videomae_synthetic)",
    )
    parser.add_argument(
        "--encoder-image-size",
        type=int,
        help="frame size of the encoder, for checkpoints trained at another size than they"
        " assume (VideoMAE: 224, MAE-DFER: 160); the frames are resized to it",
    )
    parser.add_argument(
        "--clip-frames",
        type=int,
        help="frames per clip the model takes (default 16, or all the dataset stores if fewer;"
        " checkpoints: their own); from a dataset that stores more, training takes a random"
        " sample of each clip every epoch (temporal jitter) and testing the middle one"
        " (evaluate.py --views N averages N evenly spaced ones)",
    )
    parser.add_argument(
        "--temporal-sampling",
        default="segment",
        choices=TEMPORAL_SAMPLINGS,
        help="how --clip-frames frames are taken from more stored ones: segment (consecutive"
        " frames from a random start, MAE-DFER's clips; default) or phase (every r-th frame"
        " from a random phase, each sample spanning the clip)",
    )
    parser.add_argument("--decoder", help=f"decoder preset: {sorted(DECODER_PRESETS)}")
    parser.add_argument(
        "--temporal-encoder",
        choices=TEMPORAL_ENCODERS,
        help="temporal_* strategies: the ABAW4 temporal encoder over the per-frame features"
        " (default: the decoder preset's, transformer); sized by the decoder preset",
    )
    parser.add_argument(
        "--decoder-memory-saving",
        choices=sorted(DECODER_MEMORY_SAVING),
        help="the ViT decoders' training memory (ViTDecoder memory_saving; default: the"
        " preset's, off): on recomputes the attention probabilities, full each whole layer"
        " (the paper cascade at batch 16 on ViT-L needs full to fit 24 GB); TensorFlow only",
    )
    parser.add_argument(
        "--freeze-encoder",
        action=argparse.BooleanOptionalAction,
        help="freeze the encoder (default: frozen for pretrained checkpoints, trained for presets)",
    )
    parser.add_argument("--epochs", type=int, help="default 100 (synthetic_faces: 24)")
    parser.add_argument("--batch-size", type=int, help="global; default 16 (synthetic_faces: 32)")
    parser.add_argument("--lr", type=float, default=1e-3, help="(peak) learning rate")
    parser.add_argument(
        "--lr-schedule",
        choices=["plateau", "cosine"],
        help="plateau: constant, x0.1 after --lr-patience epochs without improvement (default);"
        " cosine: 10%% linear warm-up, then cosine decay to 1%% (synthetic_faces default)",
    )
    parser.add_argument("--weight-decay", type=float, default=1e-3)
    parser.add_argument(
        "--decay-exclusions",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="no weight decay on biases, norms and LGI-Former representative tokens"
        " (MAE-DFER's and VideoMAE's recipe; default off: the paper's notebook decays all)",
    )
    parser.add_argument("--normalization", default="imagenet", choices=sorted(NORMALIZATIONS))
    parser.add_argument(
        "--augment",
        nargs="*",
        choices=["flip", "translate", "none"],
        help="training-set augmentation with matching labels: flip (left-right), translate;"
        " bare --augment: both (default: none; synthetic_faces: flip)",
    )
    parser.add_argument(
        "--standardize-targets",
        action=argparse.BooleanOptionalAction,
        help="box and landmark heads predict targets standardised by the training folds' mean"
        " and standard deviation and start at the mean (default: off, as in the paper;"
        " synthetic_faces: on)",
    )
    parser.add_argument(
        "--train-fraction",
        type=float,
        metavar="F",
        help="train on a stratified, seeded (--seed) fraction F of the training clips (label-"
        "efficiency experiments); validation and test stay whole",
    )
    parser.add_argument(
        "--shuffle-labels",
        type=int,
        metavar="SEED",
        help="control experiment: train on a seeded permutation of the training labels",
    )
    parser.add_argument(
        "--mixed-precision",
        default="auto",
        choices=["auto", "off", "bfloat16", "float16"],
        help="auto: mixed_bfloat16 on GPUs of compute capability >= 8.0, else off",
    )
    parser.add_argument("--jit-compile", choices=["auto", "on", "off"],
                        help="auto (default): XLA on one device and on GPUs (resolve_jit); "
                        "synthetic_faces: off")  # fmt: skip
    parser.add_argument("--cache-clips", default="auto", choices=["auto", "on", "off"],
                        help="keep the decoded training and validation clips in memory after "
                        "the first epoch (later epochs skip the read and JPEG decode; the "
                        "training clips are shuffled in memory, a different order). auto: on "
                        "when they take at most 2 GiB (synthetic_faces: 0.6 GB)")  # fmt: skip
    parser.add_argument(
        "--distribute", default="auto", choices=["auto", "none", "mirrored", "multi_worker"]
    )
    parser.add_argument("--monitor", default="uar", choices=["uar", "loss"],
                        help="validation quantity that selects the best checkpoint")  # fmt: skip
    parser.add_argument("--lr-patience", type=int, default=10)
    parser.add_argument("--stop-patience", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", help="TFDS data dir (default: TFDS's)")
    parser.add_argument("--output", help="run dir (default: runs/<dataset>_<strategy>_fold<k>)")
    parser.add_argument("--export", action="store_true", help="also write saved_model/")
    parser.add_argument(
        "--force-resume",
        action="store_true",
        help="resume an unfinished run even though its settings differ from this command's",
    )
    parser.add_argument(
        "--backup-every-steps",
        type=int,
        metavar="N",
        help="multi_worker: also back up every N training steps, and resume at that step"
        " (default: at each epoch's end only)",
    )
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    args = parser.parse_args(argv)
    if args.augment is not None:  # bare --augment: all; "none": none
        args.augment = [a for a in args.augment or ["flip", "translate"] if a != "none"]
    if args.validation == "actors" and args.validation_share is None:
        args.validation_share = 0.1  # other protocols refuse a share (refused_flags)
    defaults = DATASET_TRAINING_DEFAULTS.get(args.dataset.split("/")[0], TRAINING_DEFAULTS)
    if args.task_set == "affect":  # no boxes or landmarks to standardise
        defaults = {**defaults, "standardize_targets": args.standardize_targets or False}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def resolve_distribution(mode):
    """The tf.distribute strategy: Mirrored with >1 GPU, multi-worker from TF_CONFIG."""
    if mode == "multi_worker":
        # Keras 3 fit cannot drive this strategy (keras-team/keras#20585): main() trains it
        # with DistributedTrainer's strategy.run loop instead.
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")  # initialises TF's context: after the above
    if mode == "mirrored" or (mode == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def resolve_precision(mode):
    if mode == "auto":
        gpus = tf.config.list_physical_devices("GPU")
        details = [tf.config.experimental.get_device_details(g) for g in gpus]
        capable = details and all(d.get("compute_capability", (0, 0)) >= (8, 0) for d in details)
        mode = "bfloat16" if capable else "off"
    return {"off": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[mode]


def parse_loss_weights(pairs, tasks):
    """`--loss-weights valence=12 arousal=12` -> `{task: weight}`; a ValueError names what
    is wrong (a pair without `=`, a weight that is no number, a task the model lacks)."""
    weights = {}
    for pair in pairs or ():
        task, _, value = pair.partition("=")
        try:
            weights[task] = float(value)
        except ValueError:
            raise ValueError(f"--loss-weights {pair}: write TASK=WEIGHT, e.g. valence=12") from None
        if task not in tasks:
            raise ValueError(f"--loss-weights {pair}: the model's tasks are {', '.join(tasks)}")
    return weights


def refused_flags(args):
    """Messages for the flags this command's code path cannot honour (empty: none)."""
    problems = []
    if args.task_set == "affect" and args.standardize_targets:
        problems.append("--standardize-targets: the affect tasks have no boxes or landmarks")
    if args.task_set == "affect" and args.distribute == "multi_worker":
        problems.append(
            "--tasks affect: the multi-worker loop (DistributedTrainer) has the mtcae losses only"
        )
    if args.temporal_encoder and args.strategy not in TEMPORAL_STRATEGIES:
        problems.append(
            f"--temporal-encoder: --strategy {args.strategy} has no temporal encoder (the "
            f"temporal strategies: {', '.join(TEMPORAL_STRATEGIES)})"
        )
    if args.decoder_memory_saving and not args.strategy.endswith("_vit"):
        problems.append(f"--decoder-memory-saving: --strategy {args.strategy} has no ViT decoder")
    if args.decoder_memory_saving and keras.backend.backend() != "tensorflow":
        problems.append(
            f"--decoder-memory-saving: needs the TensorFlow backend (its stateless dropout),"
            f" not {keras.backend.backend()}"
        )
    if args.validation_share is not None and args.validation != "actors":
        problems.append(
            f"--validation-share: only --validation actors holds out a share of the training"
            f" actors; --validation {args.validation} validates on a whole fold"
        )
    if args.backup_every_steps is not None and args.distribute != "multi_worker":
        problems.append(
            "--backup-every-steps: Keras fit's BackupAndRestore restarts an interrupted epoch"
            " at its first batch with the weights of a later one; only --distribute"
            " multi_worker resumes at the step"
        )
    if args.backup_every_steps is not None and args.backup_every_steps < 1:
        problems.append(f"--backup-every-steps {args.backup_every_steps}: must be positive")
    return problems + multi_worker_refusals(args)


def multi_worker_refusals(args):
    """`--distribute multi_worker`: the flags its `strategy.run` loop (`StrategyTrainer`, no
    XLA, no loss scaling) cannot honour; train.py and pretrain.py share it."""
    problems = []
    if args.distribute == "multi_worker":
        if args.jit_compile == "on":
            problems.append("--jit-compile on: the multi-worker loop does not compile with XLA")
        if args.mixed_precision == "float16":
            problems.append(
                "--mixed-precision float16: the multi-worker loop has no loss scaling; use bfloat16"
            )
    return problems


def resolve_decoder(args, dataset_name):
    """The decoder preset name, or its settings with the flags that override it."""
    decoder = args.decoder or DEFAULT_DECODERS.get(dataset_name, "paper")
    overrides = {}
    if args.temporal_encoder:
        overrides["temporal_encoder"] = args.temporal_encoder
    if args.decoder_memory_saving:
        overrides["memory_saving"] = DECODER_MEMORY_SAVING[args.decoder_memory_saving]
    return decoder_config(decoder, **overrides) if overrides else decoder


def resolve_jit(mode, strategy):
    """XLA on a single device and on GPUs, off for multi-replica CPU runs; logged by the caller.

    Keras's "auto" silently disables XLA under any distribution strategy and on CPU-only hosts,
    so the choice is made here. Measured on the 2-core CPU (bench/results): XLA speeds up the
    small presets the demo uses (videomae_tiny train step: 3.9x torch with XLA, 1.5x without)
    but is 5-15% slower than plain graph mode at ViT-S/B; pass --jit-compile off there.
    """
    if mode == "on":
        return True
    if mode == "off":
        return False
    distributed = strategy.num_replicas_in_sync > 1
    return not distributed or bool(tf.config.list_physical_devices("GPU"))


def best_logged_value(log_path, monitor, mode):
    """Best value of `monitor` in an earlier attempt's log.csv, or None."""
    if not os.path.exists(log_path):
        return None
    with open(log_path) as file:
        rows = list(csv.DictReader(file))
    values = [float(row[monitor]) for row in rows if row.get(monitor) not in (None, "")]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def build_backbone(args, info):
    """The encoder `--encoder` names (the dataset's default if unset), and that name.

    VideoMAE presets are built at the dataset's clip size and `--clip-frames` frames (16, or
    what the dataset stores if fewer); LGI-Former presets and every checkpoint keep their
    own size and frame count (the input pipeline resizes the frames), unless
    `--encoder-image-size` says otherwise. The dataset must store at least the encoder's
    frame count (more: each clip gives several samples, `temporal_indices`).
    """
    stored, height = info.features["video"].shape[:2]
    name = args.encoder or DEFAULT_ENCODERS.get(args.dataset.split("/")[0], "videomae_base")
    overrides = {}
    if name in VideoMAEBackbone.presets():
        frames = args.clip_frames or min(stored, DEFAULT_CLIP_FRAMES)
        overrides = {"image_size": height, "num_frames": frames}
    if args.encoder_image_size:
        overrides["image_size"] = args.encoder_image_size
    backbone = load_encoder(name, **overrides)
    if args.clip_frames and backbone.num_frames != args.clip_frames:
        sys.exit(
            f"--clip-frames {args.clip_frames}: --encoder {name} takes {backbone.num_frames}-"
            "frame clips; leave --clip-frames out or choose an encoder of that many frames."
        )
    try:
        temporal_choices(stored, backbone.num_frames, args.temporal_sampling)
    except ValueError as error:
        sys.exit(f"--encoder {name} takes {backbone.num_frames}-frame clips; {args.dataset} "
                 f"stores {stored} frames per clip. {error}")  # fmt: skip
    return name, backbone


def random_encoder_warning(dataset_name, encoder_name):
    """The warning for a real dataset trained on a randomly initialised encoder, or None."""
    if dataset_name in GENERATED_DATASETS or not is_encoder_preset(encoder_name):
        return None
    return (
        f"WARNING: --encoder {encoder_name} is a randomly initialised preset. On {dataset_name} "
        "(a few thousand clips) a ViT trained from scratch stays near chance (MAE-DFER). Start "
        "from a pre-trained encoder instead: MAE-DFER's LGI-Former pre-trained on VoxCeleb2 "
        "(--encoder checkpoint-49.pth), one of its DFEW fine-tuned folds, or a VideoMAE "
        "checkpoint (README: MAE-DFER's encoder; checkpoint conversion)."
    )


# Run settings that may change when an unfinished run is resumed: how it reports, not what
# it trains (`arguments` repeats the flags as given: their changes are reported once).
RESUMABLE_CHANGES = ("verbose", "export", "force_resume", "backup_every_steps", "arguments")


def completed_epochs(backup_dir):
    """Epochs an unfinished `fit` run finished, from Keras' `BackupAndRestore` record (0 when
    there is none)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return 0
    with open(path) as file:
        return int(json.load(file)["epoch"])


def resume_conflicts(previous, current):
    """The settings (`key: before -> now`) in which a resumed run's config differs."""
    keys = sorted((set(previous) | set(current)) - set(RESUMABLE_CHANGES))
    return [f"{key}: {previous.get(key)!r} -> {current.get(key)!r}"
            for key in keys if previous.get(key) != current.get(key)]  # fmt: skip


def encoder_record(name, backbone):
    """What the run config says about its encoder: kind, and for a file its path and digest."""
    record = {"encoder": name, "encoder_kind": type(backbone).__name__}
    path = resolve_hub_name(name)  # hf://: the cached copy it was read from
    if os.path.exists(path):
        record["encoder_path"] = os.path.abspath(path)
        record["encoder_sha256"] = file_digest(path)
    return record


def protocol_record(protocol):
    """What the run config says about its clips: each part's splits, actors and size."""
    record = {}
    for part, selection in protocol.items():
        record[f"{part}_splits"] = list(selection.splits)
        record[f"{part}_clips"] = int(selection.num_examples)
        if selection.actors is not None:
            record[f"{part}_actors"] = list(selection.actors)
    return record


def main(argv=None):
    args = parse_args(argv)
    refused = refused_flags(args)
    if refused:
        sys.exit("Refused, not silently dropped:\n  " + "\n  ".join(refused))
    dataset_name = args.dataset.split("/")[0]
    run_dir = args.output or os.path.join("runs", f"{dataset_name}_{args.strategy}_fold{args.fold}")
    os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)

    # 1. Distribution, precision, XLA: resolved explicitly and logged. The strategy comes
    # first: a multi-worker one must configure TF's collectives before anything else runs.
    strategy = resolve_distribution(args.distribute)
    keras.utils.set_random_seed(args.seed)
    precision = resolve_precision(args.mixed_precision)
    keras.mixed_precision.set_global_policy(precision)
    jit_compile = resolve_jit(args.jit_compile, strategy) and args.distribute != "multi_worker"
    print(f"replicas: {strategy.num_replicas_in_sync}, policy: {precision}, XLA: {jit_compile}")

    # 2. Data: the fold's train / validation / test clips (validation: --validation).
    builder = load_builder(
        args.dataset,
        data_dir=args.data_dir,
        config=args.dataset_config,
        prepare=dataset_name in GENERATED_DATASETS,
    )
    if not builder.is_prepared():
        sys.exit(
            f"{args.dataset} is not built in {builder.data_dir_root}. Build it first: "
            f"{build_command(builder)} (see README, Datasets)."
        )
    class_names = builder.info.features["label"].names
    tasks = ("expression",) if args.strategy == "stl" else TASK_SETS[args.task_set]
    try:
        loss_weights = parse_loss_weights(args.loss_weights, tasks)
    except ValueError as error:
        sys.exit(f"Refused: {error}")
    # The encoder first: its clip size decides the frame size the pipeline resizes to.
    with strategy.scope():
        encoder_name, backbone = build_backbone(args, builder.info)
    warning = random_encoder_warning(dataset_name, encoder_name)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    protocol = fold_protocol(
        builder, args.fold, args.validation, args.validation_share or 0.1, args.seed
    )
    if args.validation == "test":
        print("WARNING: --validation test selects the checkpoint on the test fold: every "
              "result of this run is optimistic (marked so in its metrics).",
              file=sys.stderr)  # fmt: skip
    cache_size = decoded_bytes(builder, protocol)
    cache_clips = args.cache_clips
    if cache_clips == "auto":
        cache_clips = "on" if cache_size <= CACHE_BUDGET_BYTES else "off"
    if cache_clips == "on":
        print(f"caching the decoded training and validation clips: {cache_size / 1e9:.2f} GB")
    data = make_fold_datasets(
        builder, args.fold, args.batch_size, args.normalization, tasks, seed=args.seed,
        augment=args.augment, shuffle_labels=args.shuffle_labels,
        image_size=backbone.input.shape[2:4], train_fraction=args.train_fraction,
        protocol=protocol, num_frames=backbone.num_frames,
        temporal_sampling=args.temporal_sampling, frame_expression=args.task_set == "affect",
        cache=cache_clips == "on",
    )  # fmt: skip

    # 3. Model, compiled with the paper's losses and AdamW.
    decoder = resolve_decoder(args, dataset_name)
    statistics = None
    if args.standardize_targets and "boxes" in tasks:
        statistics = localisation_statistics(  # of the targets the heads train on
            builder,
            protocol["train"],
            augment=args.augment,
            num_frames=backbone.num_frames,
            temporal_sampling=args.temporal_sampling,
        )
    learning_rate = args.lr
    if args.lr_schedule == "cosine":
        steps_per_epoch = int(data["train"].cardinality())
        if steps_per_epoch < 0:  # unknown cardinality: count the batches once
            steps_per_epoch = sum(1 for _ in data["train"])
        learning_rate = warmup_cosine_decay(args.lr, steps_per_epoch * args.epochs)
    with strategy.scope():
        pretrained = not is_encoder_preset(encoder_name)
        freeze = args.freeze_encoder if args.freeze_encoder is not None else pretrained
        model = build_mtcae_model(
            backbone,
            args.strategy,
            len(class_names),
            num_frames=backbone.num_frames,
            decoder=decoder,
            freeze_encoder=freeze,
            target_statistics=statistics,
            tasks=args.task_set,
        )
        compile_mtcae_model(
            model, len(class_names), learning_rate, args.weight_decay, jit_compile=jit_compile,
            decay_exclusions=args.decay_exclusions, loss_weights=loss_weights,
        )  # fmt: skip
        if args.distribute != "multi_worker":  # its own loop and optimizer
            build_training_variables(model, data["train"].element_spec)  # one trace, not two

    config = {
        **vars(args),
        "arguments": dict(vars(args)),  # the flags as given (the keys above get resolved)
        **protocol_record(protocol),
        "run_dir": run_dir,
        "dataset_name": dataset_name,
        "dataset_config": builder.builder_config.name if builder.builder_config else None,
        "data_dir": builder.data_dir_root,
        **encoder_record(encoder_name, backbone),
        "encoder_config": backbone.get_config(),
        "decoder": decoder,
        "stored_frames": int(builder.info.features["video"].shape[0]),
        "model_frames": int(backbone.num_frames),
        "freeze_encoder": freeze,
        "class_names": list(class_names),
        "tasks": list(tasks),
        "precision": precision,
        "jit_compile": jit_compile,
        "cache_clips": cache_clips,
        "replicas": strategy.num_replicas_in_sync,
        "trainable_params": int(sum(w.numpy().size for w in model.trainable_weights)),
        "total_params": int(model.count_params()),
    }
    config = json.loads(json.dumps(config, default=str))  # as config.json holds it
    config_path = os.path.join(run_dir, "config.json")
    backup_dir = os.path.join(run_dir, "backup")
    resuming = os.path.isdir(backup_dir)
    if resuming and os.path.exists(config_path) and not args.force_resume:
        with open(config_path) as file:
            conflicts = resume_conflicts(json.load(file), config)
        if conflicts:
            sys.exit(
                f"{run_dir} holds an unfinished run with other settings; resuming it would "
                "train its weights under the new ones:\n  "
                + "\n  ".join(conflicts)
                + "\nRun the same command as before, choose another --output, or pass "
                "--force-resume to continue with the new settings."
            )
    with open(config_path, "w") as file:
        json.dump(config, file, indent=2)
    print(f"run dir: {run_dir} ({config['trainable_params']:,} trainable parameters)")

    # 4. Callbacks: best checkpoint on validation, LR plateau, early stop, NaN stop, resume.
    multi_worker = args.distribute == "multi_worker"
    monitor, mode = checkpoint_monitor(args.strategy, args.monitor, multi_worker)
    plateau = "val_loss" if args.strategy == "stl" else "val_expression_loss"
    best_checkpoint = keras.callbacks.ModelCheckpoint(
        os.path.join(run_dir, "checkpoints", "best.keras"),
        monitor=monitor,
        mode=mode,
        save_best_only=True,
    )
    # BackupAndRestore keeps backup/ only while a run is unfinished: without it, this is a
    # new run, whose log and best checkpoint must not mix with a finished earlier one.
    previous_best = best_logged_value(os.path.join(run_dir, "log.csv"), monitor, mode)
    if resuming and previous_best is not None:  # keep the earlier epochs' best checkpoint
        best_checkpoint.best = previous_best
        print(f"resuming; best {monitor} so far: {previous_best:.4f}")
    elif not resuming and os.path.exists(os.path.join(run_dir, "log.csv")):
        print(f"{run_dir} holds a finished run: starting a new one (its log.csv is replaced)")
        os.remove(os.path.join(run_dir, "log.csv"))
    # Callbacks that act on epoch logs: fit and DistributedTrainer both run them.
    epoch_callbacks = [
        keras.callbacks.EarlyStopping(monitor, mode=mode, patience=args.stop_patience),
        keras.callbacks.TerminateOnNaN(),
    ]
    if args.lr_schedule == "plateau":  # a cosine schedule sets the rate itself
        epoch_callbacks.append(keras.callbacks.ReduceLROnPlateau(
            plateau, factor=0.1, patience=args.lr_patience, mode="min"
        ))  # fmt: skip
    callbacks = [
        keras.callbacks.BackupAndRestore(backup_dir),
        best_checkpoint,
        *epoch_callbacks,
        keras.callbacks.CSVLogger(os.path.join(run_dir, "log.csv"), append=True),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")),
    ]

    # 5. Train. Multi-worker runs use our strategy.run loop: Keras 3 fit fails there.
    start = time.time()
    if multi_worker:
        with strategy.scope():
            optimizer = mtcae_optimizer(
                model, learning_rate, args.weight_decay, args.decay_exclusions
            )
        trainer = DistributedTrainer(model, optimizer, strategy, loss_weights=loss_weights)
        trainer.fit(
            data["train"],
            args.epochs,
            validation_data=data["validation"],
            log_path=os.path.join(run_dir, "log.csv"),
            checkpoint_path=os.path.join(run_dir, "checkpoints", "best.keras"),
            monitor=monitor,
            mode=mode,
            verbose=args.verbose,
            callbacks=epoch_callbacks,
            tensorboard_dir=os.path.join(run_dir, "tensorboard"),
            backup_dir=backup_dir,
            backup_every_steps=args.backup_every_steps,
        )
        if not trainer.is_chief:
            return 0
    else:
        # One iterator for the whole fit (no stall at each epoch's start); the epochs done
        # draw their shuffled orders again: epoch k must not see epoch 0's.
        train_data, steps = repeat_for_fit(data["train"], completed_epochs(backup_dir))
        model.fit(
            train_data,
            steps_per_epoch=steps,
            validation_data=data["validation"],
            epochs=args.epochs,
            callbacks=callbacks,
            verbose=args.verbose,
        )
    print(f"trained in {time.time() - start:.0f} s")

    # 6. Test the best checkpoint (not the last epoch) and optionally export it.
    metrics = evaluate_run(run_dir, export=args.export)
    print(f"test fold {args.fold}: WAR {100 * metrics['war']:.2f}  UAR {100 * metrics['uar']:.2f}")
    if "p_mtl" in metrics:
        print(f"P_MTL {metrics['p_mtl']:.3f} (smoothed on validation: "
              f"{metrics['p_mtl_smoothed']:.3f})  CCC V {metrics['ccc_valence']:.3f}  "
              f"A {metrics['ccc_arousal']:.3f}  expression F1 {metrics['expression_f1']:.3f}  "
              f"AU F1 {metrics['action_unit_f1']:.3f}")  # fmt: skip
    if "training_mean_baseline" in metrics:
        baseline = metrics["training_mean_baseline"]
        print(f"box IoU {metrics['box_iou']:.3f} (training mean: {baseline['box_iou']:.3f})  "
              f"landmark NME {metrics['landmark_nme']:.3f} "
              f"(training mean: {baseline['landmark_nme']:.3f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
