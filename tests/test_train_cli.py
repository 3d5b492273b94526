"""train.py / evaluate.py / predict.py end to end on the tiny synthetic_faces config."""

import csv
import json
import os

import numpy as np
import pytest

import evaluate
import predict
import train
from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
from mtcae_keras.data.video_reader import read_video
from mtcae_keras.data.video_reader import write_video
from mtcae_keras.models.encoders import file_digest
from mtcae_keras.models.mtcae import decoder_config
from tests.test_case import Interrupt
from tests.test_case import interrupt_after_epoch


def _args(tmp_path, epochs):
    return ["--dataset", "synthetic_faces", "--dataset-config", "tiny", "--fold", "1",
            "--epochs", str(epochs), "--batch-size", "4", "--verbose", "0",
            "--jit-compile", "off",  # XLA's CPU compile time was half of the resume test
            "--data-dir", str(tmp_path / "tfds"), "--output", str(tmp_path / "run")]  # fmt: skip


@pytest.mark.slow
def test_interrupted_run_resumes_and_the_run_dir_is_complete(tmp_path, monkeypatch, capsys):
    interrupt_after_epoch(monkeypatch, 1)
    with pytest.raises(Interrupt):
        train.main(_args(tmp_path, 3))
    monkeypatch.undo()
    best = tmp_path / "run" / "checkpoints" / "best.keras"
    best_before = file_digest(str(best))
    assert train.completed_epochs(str(tmp_path / "run" / "backup")) == 2  # what is replayed
    # Resuming with another learning rate would train the old weights under new settings.
    with pytest.raises(SystemExit, match=r"other settings.*\n  lr: 0.001 -> 0.002"):
        train.main(_args(tmp_path, 3) + ["--lr", "0.002"])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr"] == 0.001
    assert train.main(_args(tmp_path, 3) + ["--export"]) == 0
    run = tmp_path / "run"
    with open(run / "log.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]  # resumed at epoch 2, not restarted
    # The earlier epochs' best checkpoint survives the resume unless epoch 2 beats it.
    uar = [float(row["val_expression_uar"]) for row in rows]
    assert (file_digest(str(best)) != best_before) == (uar[2] > max(uar[:2])), uar
    for name in ("config.json", "metrics.json", "predictions.npz", "confusion_matrix.png",
                 "per_class_recall.png", "curves.png", "checkpoints/best.keras",
                 "saved_model/saved_model.pb"):  # fmt: skip
        assert os.path.exists(run / name), name
    config = json.loads((run / "config.json").read_text())
    assert config["fold"] == 1 and config["class_names"][0] == "ANG"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["count"] == 6 and metrics["checkpoint"] == "best"
    assert sum(metrics["support"].values()) == 6

    capsys.readouterr()
    assert evaluate.main([str(run), str(run), "--output", str(tmp_path / "pooled")]) == 0
    pooled = json.loads((tmp_path / "pooled" / "pooled_metrics.json").read_text())["pooled"]
    assert pooled["count"] == 12 and pooled["uar"] == pytest.approx(metrics["uar"])

    clip = SyntheticFaceRenderer(image_size=48, num_frames=20).render(9, "FEA", 0)
    video = write_video(str(tmp_path / "clip.mp4"), clip["video"])
    capsys.readouterr()
    figures = ["--annotate", str(tmp_path / "a.png"), "--attention", str(tmp_path / "att.png")]
    assert predict.main([video, "--run", str(run), "--json", *figures]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["probabilities"]) == set(config["class_names"])
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert os.path.exists(tmp_path / "a.png") and result["attention"] == str(tmp_path / "att.png")
    assert os.path.getsize(tmp_path / "att.png") > 1000
    # Without the SavedModel, the best checkpoint's task model predicts the same.
    served, shape, names = predict.load_serving(str(run))
    task, task_shape, task_names = predict.task_predictor(predict.load_task(str(run)))
    assert task_shape == shape and task_names == names == config["class_names"]
    frames = read_video(video, shape[0], shape[1:])[0][None].repeat(2, axis=0)
    for key in ("expression_probabilities", "expression_logits", "boxes", "landmarks"):
        np.testing.assert_allclose(task(frames)[key], served(frames)[key], atol=1e-5)
    # The run finished (no backup/ left): the same command again is a new run, not a resume.
    assert not os.path.exists(run / "backup")
    assert train.main(_args(tmp_path, 1)) == 0
    with open(run / "log.csv") as file:
        assert [int(row["epoch"]) for row in csv.DictReader(file)] == [0]


@pytest.mark.slow
def test_train_multi_worker_on_two_local_workers(tmp_path):
    """`train.py --distribute multi_worker` with two worker processes on 127.0.0.1: the chief
    writes the log, the best checkpoint and the test metrics; the other worker writes none."""
    from mtcae_keras.data.input_pipeline import load_builder
    from tests.test_case import run_local_workers

    load_builder("synthetic_faces", data_dir=str(tmp_path / "tfds"), config="tiny", prepare=True)

    def argv(index):
        args = _args(tmp_path, 2)
        args[args.index("--output") + 1] = str(tmp_path / f"run{index}")
        return ["train.py", *args, "--distribute", "multi_worker", "--lr-schedule", "plateau"]

    assert run_local_workers(argv) == [0, 0]
    chief, other = tmp_path / "run0", tmp_path / "run1"
    with open(chief / "log.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert float(rows[0]["learning_rate"]) == pytest.approx(1e-3)  # the plateau callback's
    assert os.listdir(chief / "tensorboard" / "validation")  # scalars, as fit writes them
    assert not (other / "tensorboard").exists()
    config = json.loads((chief / "config.json").read_text())
    assert config["replicas"] == 2 and config["jit_compile"] is False
    metrics = json.loads((chief / "metrics.json").read_text())
    assert metrics["count"] == 6 and metrics["checkpoint"] == "best"
    assert not (other / "log.csv").exists() and not (other / "metrics.json").exists()
    assert not (chief / "backup").exists() and not (other / "backup").exists()  # finished


def test_training_defaults_depend_on_the_dataset_and_flags_override_them():
    synthetic = train.parse_args(["--dataset", "synthetic_faces"])
    assert (synthetic.epochs, synthetic.batch_size, synthetic.lr_schedule, synthetic.augment,
            synthetic.standardize_targets, synthetic.jit_compile) == (
        20, 32, "cosine", ["flip"], True, "off")  # fmt: skip
    real = train.parse_args(["--dataset", "crema_d"])
    assert (real.epochs, real.batch_size, real.lr_schedule, real.augment,
            real.standardize_targets, real.jit_compile) == (
        100, 16, "plateau", [], False, "auto")  # fmt: skip
    assert (
        train.parse_args(["--dataset", "synthetic_faces", "--jit-compile", "on"]).jit_compile
        == "on"
    )
    assert train.parse_args(["--dataset", "crema_d", "--standardize-targets"]).standardize_targets
    assert not train.parse_args(
        ["--dataset", "synthetic_faces", "--no-standardize-targets"]
    ).standardize_targets
    assert train.parse_args(["--dataset", "crema_d", "--augment"]).augment == ["flip", "translate"]
    assert train.parse_args(["--dataset", "crema_d", "--augment", "translate"]).augment == [
        "translate"
    ]
    overridden = train.parse_args(
        ["--dataset", "synthetic_faces", "--augment", "none", "--epochs", "3",
         "--lr-schedule", "plateau"]
    )  # fmt: skip
    assert (overridden.augment, overridden.epochs, overridden.lr_schedule) == ([], 3, "plateau")


def test_the_shuffled_label_control_repeats_every_setting_of_the_demo_run():
    """bench/synthetic_demo.py: only the labels, the run dir and the verbosity differ."""
    import importlib.util

    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "synthetic_demo.py"
    )
    spec = importlib.util.spec_from_file_location("synthetic_demo", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # Every training setting away from its default, so that a setting the control does not
    # pass on shows up as a difference instead of being re-derived from the same default.
    argv = ["--dataset", "synthetic_faces", "--fold", "2",
            "--strategy", "nfs_vit", "--encoder", "videomae_tiny", "--encoder-image-size", "48",
            "--decoder", "paper", "--decoder-memory-saving", "full",
            "--freeze-encoder", "--epochs", "7", "--batch-size", "8", "--lr", "0.002",
            "--lr-schedule", "plateau", "--weight-decay", "0.01", "--normalization", "notebook",
            "--augment", "translate", "--no-standardize-targets", "--decay-exclusions",
            "--mixed-precision", "off", "--cache-clips", "off",
            "--jit-compile", "on", "--monitor", "loss", "--lr-patience", "3",
            "--stop-patience", "4", "--seed", "5", "--data-dir", "runs/tfds",
            "--train-fraction", "0.5", "--validation", "test", "--validation-share", "0.2",
            "--clip-frames", "8", "--temporal-sampling", "phase", "--temporal-encoder", "gru",
            "--tasks", "affect", "--loss-weights", "valence=2", "arousal=3",
            "--dataset-config", "tiny"]  # fmt: skip
    demo = vars(train.parse_args(argv))
    defaults = vars(train.parse_args(["--dataset", "synthetic_faces"]))
    # How a run is placed and reported, not how it learns: not copied, left at defaults.
    not_training = {"dataset", "output", "verbose", "export", "distribute", "shuffle_labels",
                    "force_resume", "backup_every_steps"}  # fmt: skip
    assert {k for k in demo if demo[k] == defaults[k]} == not_training
    # As train.py writes config.json: the resolved XLA choice, and the decoder's settings
    # with the flags' overrides applied (a dict: --decoder-memory-saving, --temporal-encoder).
    config = {
        **demo,
        "arguments": dict(demo),
        "jit_compile": False,
        "decoder": train.resolve_decoder(train.parse_args(argv), "synthetic_faces"),
    }
    assert isinstance(config["decoder"], dict)
    control = vars(train.parse_args(bench.control_arguments(config, "runs/control", 3)))
    assert control.pop("shuffle_labels") == 3 and control.pop("output") == "runs/control"
    assert control.pop("jit_compile") == "off"
    differing = {key for key in control if control[key] != demo[key]}
    assert differing == {"verbose"}, {key: (control[key], demo[key]) for key in differing}


def test_resume_conflicts_name_every_changed_training_setting():
    before = {"lr": 0.001, "epochs": 3, "verbose": 0, "encoder_sha256": "ab", "export": False}
    now = {"lr": 0.001, "epochs": 5, "verbose": 2, "encoder_sha256": "cd", "export": True,
           "force_resume": True}  # fmt: skip
    assert train.resume_conflicts(before, now) == ["encoder_sha256: 'ab' -> 'cd'",
                                                   "epochs: 3 -> 5"]  # fmt: skip
    assert train.resume_conflicts(before, dict(before, verbose=1)) == []


def test_flags_the_multi_worker_loop_cannot_honour_are_refused():
    args = ["--dataset", "synthetic_faces", "--distribute", "multi_worker", "--jit-compile", "on",
            "--mixed-precision", "float16"]  # fmt: skip
    problems = train.refused_flags(train.parse_args(args))
    assert len(problems) == 2 and "XLA" in problems[0] and "loss scaling" in problems[1]
    with pytest.raises(SystemExit, match="Refused, not silently dropped"):
        train.main(args)
    assert train.refused_flags(train.parse_args(args[:4])) == []
    # fit's BackupAndRestore restarts an interrupted epoch at its first batch: refused there.
    single = train.refused_flags(train.parse_args(args[:2] + ["--backup-every-steps", "50"]))
    assert len(single) == 1 and "only --distribute multi_worker" in single[0]
    assert train.refused_flags(train.parse_args(args[:4] + ["--backup-every-steps", "50"])) == []


def test_decoder_memory_saving_reaches_the_decoders_or_is_refused():
    """The flag overrides the preset's `memory_saving` (and keeps --temporal-encoder's
    override); a strategy without ViT decoders refuses it."""
    flags = ["--decoder", "paper", "--decoder-memory-saving", "full", "--temporal-encoder", "gru"]
    args = train.parse_args(["--dataset", "crema_d", *flags])
    decoder = train.resolve_decoder(args, "crema_d")
    assert decoder["memory_saving"] == "full" and decoder["temporal_encoder"] == "gru"
    assert decoder["hidden_dim"] == 512 and train.refused_flags(args) == [
        "--temporal-encoder: --strategy cascaded_vit has no temporal encoder (the temporal"
        " strategies: temporal_basic, temporal_share_bottom, temporal_feedback)"
    ]
    on = train.parse_args(["--dataset", "crema_d", "--decoder-memory-saving", "on"])
    assert train.resolve_decoder(on, "crema_d")["memory_saving"] is True
    plain = train.parse_args(["--dataset", "crema_d"])
    assert train.resolve_decoder(plain, "crema_d") == "paper"
    assert decoder_config("paper")["memory_saving"] is False  # the measured default
    stl = train.parse_args(["--dataset", "crema_d", "--strategy", "stl",
                            "--decoder-memory-saving", "off"])  # fmt: skip
    assert train.refused_flags(stl) == [
        "--decoder-memory-saving: --strategy stl has no ViT decoder"
    ]
