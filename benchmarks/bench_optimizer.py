"""The optimizer and EMA updates of one training step, side by side in one process: AdamW foreach against fused,
diffusers' EMA one tensor at a time against one call for all.

    python benchmarks/bench_optimizer.py [--heads 13] [--repeats 15]

The network is the branched U-Net of configs/digits.yaml (32/64/64, 2x2 patches, 13 heads: 473 tensors), the one
whose many small tensors made its update cost more than its baseline's; ``--heads 0`` times a plain U-Net. Each
variant updates its own copy with fixed random gradients, ten updates per timing, the variants alternating; the
medians are printed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from statistics import median

import torch
from diffusers.training_utils import EMAModel
from torch import nn

from taxodiff.families.branched.net import BranchedUNet
from taxodiff.nets.unet import UNet, UNetConfig


def network(heads: int) -> nn.Module:
    cfg = UNetConfig(in_channels=1, channels=(32, 64, 64), emb_dim=128, patch=2)
    net = BranchedUNet(cfg, heads=heads) if heads else UNet(cfg)
    for p in net.parameters():
        p.grad = torch.randn_like(p)
    return net


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", type=int, default=13)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    nets = [network(args.heads) for _ in range(4)]
    variants: dict[str, Callable[[], object]] = {
        "AdamW, foreach": torch.optim.AdamW(nets[0].parameters(), foreach=True).step,
        "AdamW, fused": torch.optim.AdamW(nets[1].parameters(), fused=True).step,
    }
    for name, net, foreach in (("EMA, a tensor at a time", nets[2], False), ("EMA, foreach", nets[3], True)):
        ema = EMAModel(list(net.parameters()), foreach=foreach)
        variants[name] = lambda ema=ema, net=net: ema.step(net.parameters())
    ms: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, step in variants.items():
            t0 = time.perf_counter()
            for _ in range(10):
                step()
            ms[name].append((time.perf_counter() - t0) / 10 * 1e3)
    n = sum(1 for _ in nets[0].parameters())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.heads} heads: {n} tensors")
    for name, values in ms.items():
        print(f"{name:24s} {median(values):6.2f} ms")
    print(f"fused / foreach AdamW: {median(ms['AdamW, fused']) / median(ms['AdamW, foreach']):.2f}")
    print(f"foreach / loop EMA:    {median(ms['EMA, foreach']) / median(ms['EMA, a tensor at a time']):.2f}")


if __name__ == "__main__":
    main()
