"""GPU speed: our encoder and full MTCAE training step against Hugging Face VideoMAE (PyTorch).

    python bench/gpu_speed.py [--sizes small base] [--batch-sizes 1 32]
        [--modes infer train] [--mtcae paper:full notebook:frozen] [--torch-compile]
        [--backends jax tensorflow] [--mirrored] [--output results.json]

For a lent GPU machine (see bench/README.md). Such a machine has PyTorch and JAX but no
TensorFlow (it cannot download it: carry its wheels, bench/README.md), so by default our side
runs the same layer code on Keras 3's JAX backend (always XLA-compiled;
`keras.ops.dot_product_attention` takes cuDNN flash attention there in bf16). With
`--backends tensorflow` (or `jax tensorflow`) it also runs on the TensorFlow backend, the
mission's own path: `jit_compile=True` (XLA), the same dtype policy, `train_on_batch` /
`predict_on_batch`, TensorFlow's own peak of GPU memory; `--mirrored` adds TensorFlow
training rows under `tf.distribute.MirroredStrategy` over every GPU present (the batch is
the global one, split across them). PyTorch runs `transformers.VideoMAEModel` with SDPA
(flash attention), in float32 and under `torch.autocast(bfloat16)`; `--torch-compile` adds
`torch.compile` rows. Float32 rows let matmuls use TF32 on both sides (JAX's default; set
explicitly for torch).

Each measurement runs in its own subprocess; memory is the framework's own peak of device
memory in that process. Training step = forward + MSE on the tokens + backward + AdamW (the
encoder rows) or `compile_mtcae_model`'s losses through `train_on_batch` (the MTCAE rows:
`cascaded_vit` with a decoder preset, the encoder trained too (`full`) or frozen (`frozen`,
the notebook's setting: no encoder backward).
MFU = model FLOPs (XLA's count of the float32 forward, x3 for a training step) x clips/s /
the dense bf16 peak given by `--peak-tflops` (989 for an H100 SXM).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.encoder_speed import SIZES  # noqa: E402
from bench.encoder_speed import _config  # noqa: E402


def _median_seconds(step, sync, warmup, repeats):
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _pixels(batch, frames, image_size, channels_last):
    import numpy as np

    shape = (batch, frames, image_size, image_size, 3)
    if not channels_last:
        shape = (batch, frames, 3, image_size, image_size)
    return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)


def measure_torch(spec):
    import torch
    from transformers import VideoMAEModel

    from tools.videomae_reference import hf_config
    from tools.videomae_reference import randomize_

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    config = hf_config(_config(spec["size"], spec["frames"], spec["image_size"]))
    config._attn_implementation = "sdpa"
    model = randomize_(VideoMAEModel(config), 0).cuda()
    pixels = torch.from_numpy(
        _pixels(spec["batch"], spec["frames"], spec["image_size"], False)
    ).cuda()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=spec["dtype"] == "bfloat16")
    forward = torch.compile(model) if spec["compile"] else model
    if spec["mode"] == "infer":
        model.eval()

        def step():
            with torch.no_grad(), autocast:
                forward(pixel_values=pixels)
    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                tokens = forward(pixel_values=pixels).last_hidden_state
            tokens.float().pow(2).mean().backward()
            optimizer.step()

    torch.cuda.reset_peak_memory_stats()
    seconds = _median_seconds(step, torch.cuda.synchronize, spec["warmup"], spec["repeats"])
    return seconds, torch.cuda.max_memory_allocated() / 2**20


def _keras_model(spec):
    import keras

    from mtcae_keras import VideoMAEBackbone
    from mtcae_keras import build_mtcae_model
    from mtcae_keras.training import compile_mtcae_model

    policy = "mixed_bfloat16" if spec["dtype"] == "bfloat16" else "float32"
    keras.config.set_dtype_policy(policy)
    backbone = VideoMAEBackbone(**_config(spec["size"], spec["frames"], spec["image_size"]))
    if spec["model"] == "encoder":
        model = backbone
        model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss="mse", jit_compile=True)
        return model
    model = build_mtcae_model(
        backbone, "cascaded_vit", num_classes=6, num_frames=spec["frames"],
        decoder=spec["decoder"], freeze_encoder=spec["frozen"],
    )  # fmt: skip
    return compile_mtcae_model(model, num_classes=6, jit_compile=True)


def _keras_targets(spec, model):
    """The training targets as NumPy arrays (the JAX rows put them on the device once)."""
    import numpy as np

    batch, frames = spec["batch"], spec["frames"]
    rng = np.random.default_rng(1)
    if spec["model"] == "encoder":
        return np.zeros((batch,) + tuple(model.output.shape[1:]), "float32")
    return {
        "boxes": rng.uniform(size=(batch, frames, 4)).astype("float32"),
        "landmarks": rng.uniform(size=(batch, frames, 10)).astype("float32"),
        "expression": rng.integers(0, 6, size=(batch,)).astype("int32"),
    }


def _check_loss(loss):
    """A training step that did no work would show here."""
    loss = loss[0] if isinstance(loss, list) else loss
    if not math.isfinite(float(loss)):
        raise FloatingPointError(f"training loss is {loss}")


def measure_keras(spec):
    import jax
    import jax.numpy as jnp

    model = _keras_model(spec)
    pixels = jnp.asarray(_pixels(spec["batch"], spec["frames"], spec["image_size"], True))
    if spec["mode"] == "infer":
        variables = [v.value for v in model.trainable_variables]
        others = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def forward(trainable, non_trainable, x):
            return model.stateless_call(trainable, non_trainable, x, training=False)[0]

        holder = []

        def step():
            holder[:] = [forward(variables, others, pixels)]

        def sync():
            jax.block_until_ready(holder)
    else:
        targets, holder = jax.tree.map(jnp.asarray, _keras_targets(spec, model)), []

        def step():
            holder[:] = [model.train_on_batch(pixels, targets)]

        def sync():  # dispatch is asynchronous: wait for the updated weights
            jax.block_until_ready([v.value for v in model.trainable_variables])

    seconds = _median_seconds(step, sync, spec["warmup"], spec["repeats"])
    if spec["mode"] == "train":
        _check_loss(holder[0])
    stats = jax.devices()[0].memory_stats() or {}
    return seconds, stats.get("peak_bytes_in_use", float("nan")) / 2**20


def measure_keras_tensorflow(spec):
    """Our model on Keras' TensorFlow backend, XLA-compiled (`jit_compile=True`), on one GPU
    or, with `spec["mirrored"]`, under `MirroredStrategy` over all of them. Both calls
    return NumPy values, so each step is timed to its end. Memory: TensorFlow's peak on the
    first GPU (NaN on a machine without one)."""
    import contextlib

    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy() if spec.get("mirrored") else None
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = _keras_model(spec)
    pixels = _pixels(spec["batch"], spec["frames"], spec["image_size"], True)
    holder = []
    if spec["mode"] == "infer":

        def step():
            holder[:] = [model.predict_on_batch(pixels)]
    else:
        targets = _keras_targets(spec, model)

        def step():
            holder[:] = [model.train_on_batch(pixels, targets)]

    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        tf.config.experimental.reset_memory_stats("GPU:0")
    seconds = _median_seconds(step, lambda: None, spec["warmup"], spec["repeats"])
    if spec["mode"] == "train":
        _check_loss(holder[0])
    peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] if gpus else float("nan")
    return seconds, peak / 2**20


def keras_flash_attention(spec):
    """Whether Keras' JAX backend takes the cuDNN flash kernel for this encoder's attention."""
    import jax.numpy as jnp
    from keras.src.backend.jax.nn import _can_use_flash_attention

    config = _config(spec["size"], spec["frames"], spec["image_size"])
    tokens = (spec["frames"] // 2) * (spec["image_size"] // 16) ** 2
    heads = config["num_heads"]
    shape = (spec["batch"], tokens, heads, config["hidden_dim"] // heads)
    dtype = "bfloat16" if spec["dtype"] == "bfloat16" else "float32"
    query = jnp.ones(shape, dtype)
    return bool(_can_use_flash_attention(query, query, query, None))


def forward_gflops(spec):
    """XLA's FLOP count of one clip's float32 forward (on the CPU backend: no device needed)."""
    import jax
    import jax.numpy as jnp

    spec = {**spec, "dtype": "float32", "batch": 1}
    model = _keras_model(spec)
    variables = [v.value for v in model.trainable_variables]
    others = [v.value for v in model.non_trainable_variables]
    pixels = jnp.zeros((1, spec["frames"], spec["image_size"], spec["image_size"], 3))

    def forward(trainable, non_trainable, x):
        return model.stateless_call(trainable, non_trainable, x, training=False)[0]

    cost = jax.jit(forward).lower(variables, others, pixels).cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return cost["flops"] / 1e9


def run_one(spec):
    if spec["framework"] == "flops":
        print(json.dumps({**spec, "gflops": forward_gflops(spec)}))
        return
    backend = spec.get("backend", "jax")
    measure = {("torch", "jax"): measure_torch, ("keras", "jax"): measure_keras,
               ("keras", "tensorflow"): measure_keras_tensorflow}  # fmt: skip
    measure = measure[spec["framework"], backend]
    seconds, peak_mb = measure(spec)
    flash = keras_flash_attention(spec) if measure is measure_keras else None
    print(json.dumps({**spec, "seconds": seconds, "clips_per_s": spec["batch"] / seconds,
                      "peak_mb": peak_mb, "keras_flash_attention": flash}))  # fmt: skip


def _subprocess(spec, cpu=False):
    env = dict(os.environ, KERAS_BACKEND=spec.get("backend", "jax"),
               XLA_PYTHON_CLIENT_PREALLOCATE="false", TF_FORCE_GPU_ALLOW_GROWTH="true",
               TF_CPP_MIN_LOG_LEVEL="2")  # fmt: skip
    if cpu:
        env.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(spec)],
        capture_output=True, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    if result.returncode or not lines:
        print(f"failed: {spec}\n{result.stderr[-3000:]}", file=sys.stderr, flush=True)
        return None
    return json.loads(lines[-1])


def _step_gflops(row, flops):
    """Model FLOPs of one clip's step: forward, plus 2x forward for the backward when training."""
    encoder = flops[row["size"], "encoder"]
    if row["mode"] == "infer":
        return encoder
    if row["model"] == "encoder":
        return 3 * encoder
    decoders = flops[row["size"], row["decoder"]] - encoder
    return 3 * decoders + (1 if row["frozen"] else 3) * encoder


def _name(row):
    if row["framework"] == "torch":
        return f"torch SDPA{' compile' if row['compile'] else ''} {row['dtype']}"
    keras = {"jax": "keras-jax XLA", "tensorflow": "keras-tf XLA"}[row.get("backend", "jax")]
    if row.get("mirrored"):
        keras += " MirroredStrategy"
    if row["model"] == "mtcae":
        encoder = "frozen" if row["frozen"] else "full"
        return f"{keras} MTCAE {row['decoder']} decoders, {encoder} encoder, {row['dtype']}"
    return f"{keras} encoder {row['dtype']}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "base"], choices=sorted(SIZES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--modes", nargs="+", default=["infer", "train"])
    parser.add_argument(
        "--float32-batch",
        type=int,
        default=32,
        help="float32 rows only at this batch size (bf16 at every size)",
    )
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--mtcae",
        nargs="*",
        default=[],
        metavar="DECODER:full|frozen",
        help="also full-model (cascaded_vit) training steps, e.g. paper:full notebook:frozen",
    )
    parser.add_argument("--torch-compile", action="store_true")
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["jax"],
        choices=["jax", "tensorflow"],
        help="Keras backends of our rows (TensorFlow must be installed)",
    )
    parser.add_argument(
        "--mirrored",
        action="store_true",
        help="also TensorFlow training rows under MirroredStrategy (all GPUs)",
    )
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument(
        "--budget-s",
        type=float,
        default=1e9,
        help="stop starting new measurements after this many seconds",
    )
    parser.add_argument("--output", help="write the rows as JSON here (after every row)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)  # fmt: skip
    if args.one:
        run_one(json.loads(args.one))
        return 0
    if args.mirrored and ("tensorflow" not in args.backends or "train" not in args.modes):
        parser.error("--mirrored adds TensorFlow training rows: it needs --backends ... "
                     "tensorflow and --modes ... train")  # fmt: skip

    common = {"frames": args.frames, "image_size": args.image_size, "warmup": args.warmup,
              "repeats": args.repeats, "decoder": "paper", "frozen": False,
              "compile": False}  # fmt: skip
    specs = []
    for size in args.sizes:
        for mode in args.modes:
            for batch in args.batch_sizes:
                dtypes = ["bfloat16"] + (["float32"] if batch == args.float32_batch else [])
                for dtype in dtypes:
                    row = {**common, "model": "encoder", "size": size, "mode": mode,
                           "batch": batch, "dtype": dtype}  # fmt: skip
                    specs.append({**row, "framework": "torch"})
                    specs += [{**row, "framework": "keras", "backend": backend}
                              for backend in args.backends]  # fmt: skip
                    if args.mirrored and "tensorflow" in args.backends and mode == "train":
                        specs.append({**row, "framework": "keras", "backend": "tensorflow",
                                      "mirrored": True})  # fmt: skip
                if args.torch_compile and batch == max(args.batch_sizes):
                    specs.append({**common, "framework": "torch", "model": "encoder",
                                  "size": size, "mode": mode, "batch": batch,
                                  "dtype": "bfloat16", "compile": True})  # fmt: skip
        for variant in args.mtcae if "train" in args.modes else []:
            decoder, _, encoder = variant.partition(":")
            specs += [{**common, "framework": "keras", "backend": backend, "model": "mtcae",
                       "size": size, "mode": "train", "batch": max(args.batch_sizes),
                       "dtype": "bfloat16", "decoder": decoder, "frozen": encoder == "frozen"}
                      for backend in args.backends]  # fmt: skip

    flops = {}  # forward GFLOP per clip of (size, "encoder") and (size, decoder preset)
    for size in args.sizes:
        models = [("encoder", "paper")] + [
            ("mtcae", d) for d in {v.split(":")[0] for v in args.mtcae}
        ]
        for model, decoder in models:
            row = _subprocess({**common, "framework": "flops", "model": model, "size": size,
                               "mode": "infer", "decoder": decoder}, cpu=True)  # fmt: skip
            key = (size, "encoder" if model == "encoder" else decoder)
            flops[key] = row["gflops"] if row else float("nan")
            print(f"  {size} {key[1]}: {flops[key]:.1f} GFLOP per clip forward",
                  file=sys.stderr, flush=True)  # fmt: skip

    start, rows = time.perf_counter(), []
    for spec in specs:
        if time.perf_counter() - start > args.budget_s:
            print(f"budget spent; skipped {spec}", file=sys.stderr, flush=True)
            continue
        row = _subprocess(spec)
        if row is None:
            continue
        row["tflops"] = _step_gflops(row, flops) * row["clips_per_s"] / 1e3
        row["mfu"] = row["tflops"] / args.peak_tflops
        rows.append(row)
        print(f"  {_name(row)} {row['size']} {row['mode']} b{row['batch']}: "
              f"{row['clips_per_s']:.1f} clips/s, {row['peak_mb']:.0f} MB, "
              f"MFU {row['mfu']:.1%}, flash {row['keras_flash_attention']}",
              file=sys.stderr, flush=True)  # fmt: skip
        if args.output:
            with open(args.output, "w") as file:
                json.dump({"gflop_per_clip": {f"{s}/{m}": v for (s, m), v in flops.items()},
                           "rows": rows}, file, indent=2)  # fmt: skip

    print(f"\nVideoMAE on GPU, {args.frames}x{args.image_size}x{args.image_size}; ratio = "
          f"ours / torch SDPA at the same dtype (higher is faster; MTCAE rows against the torch "
          f"encoder's own training step); MFU against "
          f"{args.peak_tflops:.0f} TFLOP/s")  # fmt: skip
    print("| size | mode | batch | implementation | clips/s | ratio | peak MB | MFU |")
    print("|" + "---|" * 8)
    for row in rows:

        def key(r):
            return r["size"], r["mode"], r["batch"], r["dtype"], r["framework"], r["compile"]

        reference = next((r for r in rows if key(r) == key(row)[:4] + ("torch", False)), None)
        ratio = row["clips_per_s"] / reference["clips_per_s"] if reference else float("nan")
        print(f"| {row['size']} | {row['mode']} | {row['batch']} | {_name(row)} | "
              f"{row['clips_per_s']:.1f} | {ratio:.2f} | {row['peak_mb']:.0f} | "
              f"{row['mfu']:.1%} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
