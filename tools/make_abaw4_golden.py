"""Writes the ABAW4 temporal-model fixture from AIM3-RUC/ABAW4's own PyTorch code.

    python tools/make_abaw4_golden.py --abaw4 DIR [--output tests/fixtures/abaw4/golden.npz]

DIR is a checkout of github AIM3-RUC/ABAW4 (read, never copied; it needs torch and
transformers). Seeded random modules of that code, in eval mode, on seeded random inputs:

- `transformer/`: `models.networks.transformer.TransformerEncoder` (input 24, affine to 32,
  2 layers, 4 heads, feed-forward 48, `use_pe`): its last layer's hidden states, as
  `MTLTransformerModel.forward_step` reads them.
- `gru/`: `models.networks.grus.GrusModel` (2 layers of 16) over 3 segments of 4 steps, the
  last hidden state carried (and detached) into the next, as `GruModel.run`.
- `lstm/`: `models.networks.lstm_encoder.LSTMEncoder` (16), the same loop with (h, c), as
  `LstmModel.run`.
- `mtl_<case>/`: `models.mtl_transformer_model.MTLTransformerModel.forward_step` on one
  segment of 10 steps of 24-wide features (hidden 64, 2 layers, feed-forward 32, heads
  16-8): `basic` (structure and strategy `original`), `share_bottom_feature_feedback` (the
  example script's structure and strategy, sources v + au, target a, 1 top layer) and
  `feedback` (prediction embeddings of au + expr fed to v, width 8; in eval the predictions
  alone).

Each case stores its state dict (`<case>/state/<key>`; the fixed position tables only once),
its input `x` and outputs.
"""

import argparse
import os
import sys

import numpy as np

SEED = 20261201
CASES = {
    "basic": {"structure": "original", "strategy": "original"},
    "share_bottom_feature_feedback": {"structure": "share_bottom", "strategy": "feature_feedback",
                                      "feed_source": ["v", "au"], "feed_target": ["a"]},
    "feedback": {"structure": "original", "strategy": "feedback",
                 "feed_source": ["au", "expr"], "feed_target": ["v"]},
}  # fmt: skip


def _state(prefix, module):
    """The module's state dict; the fixed position tables (512 rows each) are kept only for
    the `transformer` case, whose test checks them against ours."""
    return {f"{prefix}/state/{k}": v.detach().numpy() for k, v in module.state_dict().items()
            if prefix == "transformer" or not k.endswith("position_embeddings.weight")}  # fmt: skip


def mtl_options(case):
    """The `opt` namespace MTLTransformerModel reads: its parser's defaults and ours."""
    from models.mtl_transformer_model import MTLTransformerModel

    parser = MTLTransformerModel.modify_commandline_options(argparse.ArgumentParser())
    opt = parser.parse_args([])
    opt.__dict__.update(
        gpu_ids=[], isTrain=False, checkpoints_dir="/tmp", name="golden", cuda_benchmark=False,
        input_dim=24, hidden_size=64, num_layers=2, ffn_dim=32, nhead=4,
        regress_layers="16,8", feed_dim=8, share_layers=1, use_pe=True, lr=1e-4, beta1=0.9,
        dropout_rate=0.3, **CASES[case],
    )  # fmt: skip
    return opt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--abaw4", required=True, help="a checkout of AIM3-RUC/ABAW4")
    parser.add_argument("--output", default="tests/fixtures/abaw4/golden.npz")
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.abaw4))
    import torch

    torch.Tensor.cuda = lambda self, *a, **k: self  # the code moves its ground truth to CUDA
    from models.mtl_transformer_model import MTLTransformerModel
    from models.networks.grus import GrusModel
    from models.networks.lstm_encoder import LSTMEncoder
    from models.networks.transformer import TransformerEncoder

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    out = {}

    encoder = TransformerEncoder(24, 2, 4, dim_feedforward=48, affine=True, affine_dim=32,
                                 use_pe=True, dropout=0.3).eval()  # fmt: skip
    x = rng.standard_normal((2, 10, 24)).astype(np.float32)
    with torch.no_grad():
        _, hidden_states = encoder(torch.from_numpy(x))
    out.update(_state("transformer", encoder))
    out["transformer/x"], out["transformer/y"] = x, hidden_states[-1].transpose(0, 1).numpy()

    x = rng.standard_normal((2, 12, 24)).astype(np.float32)
    gru = GrusModel(1, [24], [16], num_layers=2, dropout=0.3).eval()
    lstm = LSTMEncoder(24, 16).eval()
    gru_out, lstm_out = [], []
    h = torch.zeros(2, 2, 16)
    state = (torch.zeros(1, 2, 16), torch.zeros(1, 2, 16))
    with torch.no_grad():
        for segment in range(3):
            step = torch.from_numpy(x[:, segment * 4 : (segment + 1) * 4])
            y, hs = gru([step], [h])
            h = hs[0].detach()
            gru_out.append(y.numpy())
            y, state = lstm(step, state)
            lstm_out.append(y.numpy())
    out.update(_state("gru", gru))
    out.update(_state("lstm", lstm))
    out["gru/x"] = out["lstm/x"] = x
    out["gru/y"], out["lstm/y"] = np.concatenate(gru_out, 1), np.concatenate(lstm_out, 1)

    for case in CASES:
        model = MTLTransformerModel(mtl_options(case))
        for name in model.model_names:
            getattr(model, "net" + name).eval()
            out.update(_state(f"mtl_{case}", getattr(model, "net" + name)))
            for key in list(out):  # the nets' own names prefix their keys
                if key.startswith(f"mtl_{case}/state/") and not key.startswith(
                    f"mtl_{case}/state/net"
                ):
                    out[key.replace("/state/", f"/state/net{name}.", 1)] = out.pop(key)
        x = rng.standard_normal((2, 10, 24)).astype(np.float32)
        target = {
            "v": torch.from_numpy(rng.uniform(-1, 1, (2, 10, 1)).astype(np.float32)),
            "a": torch.from_numpy(rng.uniform(-1, 1, (2, 10, 1)).astype(np.float32)),
            "expr": torch.from_numpy(rng.integers(0, 8, (2, 10))),
            "au": torch.from_numpy(rng.integers(0, 2, (2, 10, 12))),
        }
        with torch.no_grad():
            logits = model.forward_step(torch.from_numpy(x), torch.ones(2, 10), target=target)
        out[f"mtl_{case}/x"] = x
        for task, value in logits.items():
            out[f"mtl_{case}/{task}"] = value.numpy()
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    np.savez_compressed(args.output, **out)
    print(f"wrote {args.output}: {len(out)} arrays")


if __name__ == "__main__":
    main()
