"""The pre-training step at 90% masking against the fine-tuning step of the same encoder.

    python bench/pretraining_speed.py [--encoders videomae_small lgi_former_base]
        [--batch-size 2] [--repeats 3] [--output bench/results/pretraining_speed_cpu.json]

MAE's asymmetric design is why pre-training is affordable: the encoder sees only the visible
tenth of the tokens and a light decoder (4 blocks, width 384, 6 heads) fills in the rest.
For each encoder preset at its full clip size this times one optimizer step (forward,
backward, AdamW update; Keras `train_on_batch`, compiled as `train.py` compiles: XLA on) of

- `pretrain`: `MaskedVideoPretrainer` at mask ratio 0.9 (tube masks for VideoMAE,
  part-window masks for the LGI-Former), the joint appearance-motion target;
- `finetune`: the same encoder on every token, mean-pooled into a 6-class linear head (the
  smallest fine-tuning model; MTCAE's decoders only add to it);

after two warm-up steps, median of `--repeats`, in one process, so that the ratio is
measured on the same machine at the same moment.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from mtcae_keras import MaskedVideoPretrainer  # noqa: E402
from mtcae_keras.models.encoders import load_encoder  # noqa: E402


def timed_steps(model, x, y, repeats):
    for _ in range(2):
        model.train_on_batch(x, y)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(name, batch_size, repeats):
    keras.utils.set_random_seed(0)
    encoder = load_encoder(name)
    frames, height, width, channels = encoder.input.shape[1:]
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((batch_size, frames, height, width, channels)).astype("float32")

    pretrainer = MaskedVideoPretrainer(encoder, mask_ratio=0.9, target="appearance_motion")
    masks = np.stack([pretrainer.mask_generator(np.array([0, i])).numpy()
                      for i in range(batch_size)])  # fmt: skip
    pretrainer.compile(keras.optimizers.AdamW(1e-4), jit_compile=True)
    pretrain = timed_steps(pretrainer, {"pixel_values": pixels, "mask": masks}, None, repeats)

    inputs = keras.Input(encoder.input.shape[1:])
    pooled = keras.layers.GlobalAveragePooling1D()(encoder(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(6)(pooled))
    classifier.compile(keras.optimizers.AdamW(1e-4), keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), jit_compile=True)  # fmt: skip
    finetune = timed_steps(classifier, pixels, np.zeros(batch_size, "int32"), repeats)
    return {"encoder": name, "clip": [frames, height, width], "batch_size": batch_size,
            "visible_tokens": pretrainer.num_visible, "tokens": encoder.num_tokens,
            "pretrain_step_s": pretrain, "finetune_step_s": finetune,
            "finetune_over_pretrain": finetune / pretrain}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoders", nargs="+", default=["videomae_small", "lgi_former_base"])
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", help="also write the measurements as JSON")
    args = parser.parse_args()
    rows = [measure(name, args.batch_size, args.repeats) for name in args.encoders]
    print("| encoder | clip | visible / all tokens | pre-training step (s) | "
          "fine-tuning step (s) | fine-tuning / pre-training |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['encoder']} | {'x'.join(map(str, r['clip']))} | "
              f"{r['visible_tokens']} / {r['tokens']} | {r['pretrain_step_s']:.2f} | "
              f"{r['finetune_step_s']:.2f} | {r['finetune_over_pretrain']:.2f}x |")  # fmt: skip
    if args.output:
        with open(args.output, "w") as file:
            json.dump({"batch_size": args.batch_size, "repeats": args.repeats, "rows": rows},
                      file, indent=2)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
