"""The demo network's training step in float32, one speed lever per row, side by side in one process.

    python benchmarks/bench_levers.py [--size 32] [--batch 64] [--steps 10] [--channels 32,64,64]

Rows: eager (the default), channels-last memory format, ``torch.compile`` (inductor; its compile time printed
apart), both, and other widths (``--widths 16,64,64 32,32,64``: a cheaper first level; their samples must be
judged by a demo run, not here). A step is forward, backward and AdamW on the same batch, float32. Images per
second are best of two rounds; the ratio to eager is what one run measures side by side.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from taxodiff._malloc import tune_malloc
from taxodiff.nets.unet import UNet, UNetConfig


def step_fn(net: torch.nn.Module, size: int, batch: int, channels_last: bool, compiled: bool) -> Callable[[], None]:
    x = torch.randn(batch, 3, size, size)
    t = torch.randint(0, 1000, (batch,))
    cond = torch.randn(batch, 2)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(net) if compiled else net
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def step() -> None:
        loss = forward(x, t, cond).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def rate(step: Callable[[], None], batch: int, steps: int) -> float:
    best = 0.0
    for _ in range(2):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = max(best, batch * steps / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--channels", default="32,64,64")
    ap.add_argument("--widths", nargs="*", default=["16,64,64", "32,32,64", "16,32,64"])
    args = ap.parse_args()
    tune_malloc()
    print(f"{args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} threads, float32")
    ch = tuple(int(c) for c in args.channels.split(","))
    rows = [("eager", ch, False, False), ("channels-last", ch, True, False), ("torch.compile", ch, False, True)]
    rows += [("torch.compile + channels-last", ch, True, True)]
    rows += [(f"eager, widths {w}", tuple(int(c) for c in w.split(",")), False, False) for w in args.widths]
    base = None
    for name, widths, last, compiled in rows:
        torch.manual_seed(0)
        net = UNet(UNetConfig(channels=widths, cond_dim=2, patch=1))
        step = step_fn(net, args.size, args.batch, last, compiled)
        t0 = time.perf_counter()
        step()  # warm-up (and the compilation)
        first = time.perf_counter() - t0
        r = rate(step, args.batch, args.steps)
        base = base or r
        params = sum(p.numel() for p in net.parameters())
        print(f"{name:>32}: {r:7.1f} img/s  {r / base:5.2f}x  first step {first:6.1f} s  {params / 1e6:.2f}M params")


if __name__ == "__main__":
    main()
