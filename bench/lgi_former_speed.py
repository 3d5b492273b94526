"""LGI-Former speed and memory: our LGIFormerBackbone against MAE-DFER's own PyTorch code,
and its GFLOPs against a VideoMAE ViT-B at the same 16x160x160 clip.

    python bench/lgi_former_speed.py --mae-dfer DIR [--batch-sizes 1 4] [--modes infer train]
        [--repeats 3] [--memory-saving off full] [--rounds 1] [--skip-gflops]
        [--output bench/results/lgi_former_speed_cpu.json]

DIR is a checkout of github sunlicai/MAE-DFER (read, never copied). Both sides run the
`lgi_former_base` config (16 blocks, width 512, 8 heads, 8 regions of 2x5x10 tokens) with the
same weights: the reference's seeded random ones, ported through our converter. Each
measurement runs in its own subprocess, so its peak resident memory (ru_maxrss) is its own.
PyTorch uses all cores; ours is measured in graph mode and under XLA (`jit_compile=True`),
float32. Inference = the encoder's forward; training step = forward + MSE on every output
token (local and representative) + backward + AdamW. Ours trains with the blocks' default
`memory_saving=True`; `--memory-saving off full` adds training rows with those settings.
Ratios = ours / torch (speed: higher is faster; memory: lower is smaller); compare ratios,
not clips/s, across machines.

GFLOPs: PyTorch's `FlopCounterMode` (2 x multiply-adds of matmuls, convolutions and
attention) on MAE-DFER's two encoders of the same code base, the LGI-Former and the plain
ViT-B (`vit_base_patch16_160`), one 16x160x160 clip.
"""

import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.encoder_speed import _time  # noqa: E402
from bench.encoder_speed import add_rounds_argument  # noqa: E402
from bench.encoder_speed import in_rounds  # noqa: E402
from bench.encoder_speed import print_measurement  # noqa: E402
from bench.encoder_speed import run_measurements  # noqa: E402
from bench.machine import cpu_description  # noqa: E402

FRAMES, IMAGE = 16, 160


def _config():
    from mtcae_keras.models.presets import LGI_FORMER_PRESETS

    return dict(LGI_FORMER_PRESETS["lgi_former_base"])


def _reference(mae_dfer, weights=None):
    """MAE-DFER's fine-tuning model of the base config: seeded random, or `weights` loaded."""
    from tools import lgi_former_reference as ref

    modeling_finetune, _ = ref.import_mae_dfer(mae_dfer)
    model = ref.finetune_model(modeling_finetune, _config(), seed=0)
    if weights:
        import torch

        model.load_state_dict(torch.load(weights, weights_only=True)["model"])
    return ref, model


def _pixels(batch):
    import numpy as np

    shape = (batch, FRAMES, IMAGE, IMAGE, 3)
    return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)


def measure_torch(spec):
    import torch

    torch.set_num_threads(spec["threads"])
    ref, model = _reference(spec["mae_dfer"], spec["weights"])
    pixels = ref.to_torch(_pixels(spec["batch"]))
    if spec["mode"] == "infer":
        model.eval()

        def step():
            with torch.no_grad():
                model.forward_features(pixels)
    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        captured = []
        model.blocks[-1].register_forward_hook(lambda m, a, out: captured.append(out))

        def step():
            captured.clear()
            optimizer.zero_grad()
            model.forward_features(pixels)
            loss = captured[-1].pow(2).mean()  # every token of the last block
            loss.backward()
            optimizer.step()

    return _time(step, spec["repeats"])


def measure_keras(spec):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from mtcae_keras import LGIFormerBackbone  # before TensorFlow: it sets TF's CPU defaults

    # isort: split
    import keras
    import tensorflow as tf

    # The checkpoint is read without torch: this process's memory is the Keras model's alone.
    backbone = LGIFormerBackbone.from_preset(
        spec["weights"], return_region_tokens=True, memory_saving=spec["memory_saving"]
    )
    pixels = tf.constant(_pixels(spec["batch"]))
    if spec["mode"] == "infer":
        forward = tf.function(lambda x: backbone(x, training=False), jit_compile=spec["jit"])

        def step():
            forward(pixels)["tokens"].numpy()
    else:
        optimizer = keras.optimizers.AdamW(1e-4)
        optimizer.build(backbone.trainable_variables)

        @tf.function(jit_compile=spec["jit"])
        def train_step(x):
            with tf.GradientTape() as tape:
                out = backbone(x, training=True)
                squares = [tf.reduce_sum(tf.square(out[k])) for k in ("tokens", "region_tokens")]
                count = tf.cast(tf.size(out["tokens"]) + tf.size(out["region_tokens"]), "float32")
                loss = tf.add_n(squares) / count
            grads = tape.gradient(loss, backbone.trainable_variables)
            optimizer.apply(grads, backbone.trainable_variables)
            return loss

        def step():
            train_step(pixels).numpy()

    return _time(step, spec["repeats"])


def gflops(mae_dfer):
    """GFLOPs of one 16x160x160 clip: MAE-DFER's LGI-Former and its plain ViT-B encoder."""
    from functools import partial

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    ref, lgi = _reference(mae_dfer)
    modeling_finetune, _ = ref.import_mae_dfer(mae_dfer)
    vit_b = modeling_finetune.VisionTransformer(
        img_size=IMAGE, patch_size=16, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4,
        qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), all_frames=FRAMES,
        tubelet_size=2, num_classes=7,
    )  # fmt: skip
    pixels = ref.to_torch(_pixels(1))
    result = {}
    for name, model in (("lgi_former_base", lgi), ("vit_b_160", vit_b)):
        model.eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model.forward_features(pixels)
        params = sum(p.numel() for n, p in model.named_parameters()
                     if not n.startswith(("head.", "fc_norm.")))  # fmt: skip
        result[name] = {"gflops": counter.get_total_flops() / 1e9, "encoder_params": params}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mae-dfer", help="checkout of sunlicai/MAE-DFER (required)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--modes", nargs="+", default=["infer", "train"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--memory-saving",
        nargs="*",
        default=[],
        choices=["off", "full"],
        help="train mode: also measure ours with these LGIFormerBackbone(memory_saving=...)"
        " settings beside the default (off: keep everything; full: also recompute fc1)",
    )
    add_rounds_argument(parser)
    parser.add_argument("--skip-gflops", action="store_true", help="do not count GFLOPs")
    parser.add_argument("--output", help="write the rows and GFLOPs as JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    measure = {"torch": measure_torch, "keras": measure_keras}
    if args.one:
        spec = json.loads(args.one)
        return print_measurement(spec, measure[spec["framework"]](spec))
    if not args.mae_dfer:
        parser.error("--mae-dfer DIR (a checkout of github sunlicai/MAE-DFER) is required")
    mae_dfer = os.path.abspath(args.mae_dfer)

    threads = os.cpu_count()
    # The same weights on both sides: the reference's seeded random ones, as a checkpoint.
    weights = os.path.join(tempfile.mkdtemp(), "lgi_former_base.pth")
    ref, model = _reference(mae_dfer)
    ref.save_torch({"model": ref.state_dict_numpy(model)}, weights)
    del model
    variants = [("torch", None, True), ("keras", False, True), ("keras", True, True)]
    for name in args.memory_saving:
        saving = {"off": False, "full": "full"}[name]
        variants += [("keras", False, saving), ("keras", True, saving)]
    specs = [
        {"framework": framework, "jit": jit, "mode": mode, "batch": batch,
         "repeats": args.repeats, "threads": threads, "mae_dfer": mae_dfer, "weights": weights,
         "memory_saving": saving}
        for mode in args.modes for batch in args.batch_sizes
        for framework, jit, saving in variants
        if saving is True or mode == "train"  # inference keeps nothing for a backward pass
    ]  # fmt: skip
    rows = run_measurements(in_rounds(specs, args.rounds), __file__)
    flops = None if args.skip_gflops else gflops(mae_dfer)

    print(f"\nLGI-Former base, {FRAMES}x{IMAGE}x{IMAGE}, {threads} CPU threads on "
          f"{cpu_description()}, float32; ratio = ours / MAE-DFER's PyTorch (speed: higher is "
          "faster; memory: lower is smaller)")  # fmt: skip
    header = "| mode | batch | implementation | clips/s | ratio | peak MB | memory ratio |"
    print(header + "\n|" + "---|" * 7)
    for mode in args.modes:
        for batch in args.batch_sizes:
            group = [r for r in rows if (r["mode"], r["batch"]) == (mode, batch)]
            for r in group:
                torch_row = next((t for t in group if t["framework"] == "torch"
                                  and t["round"] == r["round"]), None)  # fmt: skip
                name = "MAE-DFER (torch)" if r["framework"] == "torch" else (
                    f"keras {'XLA' if r['jit'] else 'graph'}")  # fmt: skip
                saving = r.get("memory_saving", True)
                if r["framework"] == "keras" and mode == "train" and saving is not True:
                    name += f", memory saving {saving or 'off'}"
                if args.rounds > 1:
                    name += f", round {r['round'] + 1}"
                nan = float("nan")
                ratio = r["clips_per_s"] / torch_row["clips_per_s"] if torch_row else nan
                memory = r["peak_mb"] / torch_row["peak_mb"] if torch_row else nan
                print(f"| {mode} | {batch} | {name} | {r['clips_per_s']:.3f} | {ratio:.2f} | "
                      f"{r['peak_mb']:.0f} | {memory:.2f} |")  # fmt: skip
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as file:
            json.dump({"cpu": cpu_description(), "command": " ".join(sys.argv), "rows": rows,
                       "gflops": flops}, file, indent=2)  # fmt: skip
    if flops is None:
        return 0
    lgi, vit = flops["lgi_former_base"], flops["vit_b_160"]
    print(f"\nGFLOPs per clip (torch FlopCounterMode): LGI-Former {lgi['gflops']:.1f} "
          f"({lgi['encoder_params']:,} parameters), ViT-B {vit['gflops']:.1f} "
          f"({vit['encoder_params']:,}); LGI-Former is "
          f"{100 * (1 - lgi['gflops'] / vit['gflops']):.1f}% fewer")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
