"""Where a branched training step's time goes, against its equal-size label-conditioned baseline, by operator.

    python benchmarks/bench_branched_ops.py [--heads 13] [--image 8] [--patch 2] [--steps 20]

The networks alone (forward and backward of a squared-output loss, batch 64, float32; no data, optimizer or EMA):
the branched U-Net with ``--heads`` heads, half the rows sent to one head and the rest spread over the others (as
a training batch of the digits' tree falls), and the plain U-Net with its widths matched to the same parameter
count. Prints, for each, the arithmetic (``torch.utils.flop_counter``), the milliseconds a step, and the
profiler's convolution calls and their time, so a reader sees whether the branched network costs arithmetic or
calls.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from taxodiff.families.branched.net import BranchedUNet
from taxodiff.nets.unet import UNet, UNetConfig, matched_config

CONV = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_slow_conv2d_")  # key prefixes


def measure(name: str, step: Callable[[], torch.Tensor], steps: int) -> None:
    with FlopCounterMode(display=False) as fc:
        step().square().mean().backward()
    for _ in range(5):
        step().square().mean().backward()
    start = time.perf_counter()
    for _ in range(steps):
        step().square().mean().backward()
    ms = (time.perf_counter() - start) / steps * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step().square().mean().backward()
    conv = [e for e in prof.key_averages() if e.key.startswith(CONV)]
    calls = sum(e.count for e in conv) / steps
    conv_ms = sum(e.self_cpu_time_total for e in conv) / steps / 1e3
    print(
        f"{name:>9}: {fc.get_total_flops() / 1e9:5.2f} GFLOP a step, {ms:6.1f} ms a step; "
        f"convolutions {calls:4.0f} calls, {conv_ms:5.1f} ms (profiled)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", type=int, default=13)
    ap.add_argument("--image", type=int, default=8)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = UNetConfig(in_channels=1, channels=(32, 64, 64), patch=args.patch, cond_dim=10)
    branched = BranchedUNet(cfg, args.heads)
    count = sum(p.numel() for p in branched.parameters())
    labelled = UNet(matched_config(cfg, count))
    x, t = torch.randn(64, 1, args.image, args.image), torch.randint(0, 1000, (64,))
    rest = torch.randint(1, args.heads, (32,))
    head = torch.cat([torch.zeros(32, dtype=torch.long), rest])[torch.randperm(64)]
    c = torch.randn(64, 10)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {count:,} parameters each")
    measure("branched", lambda: branched(x, t, head), args.steps)
    measure("labelled", lambda: labelled(x, t, c), args.steps)


if __name__ == "__main__":
    main()
