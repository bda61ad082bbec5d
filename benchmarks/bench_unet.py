"""Training and inference throughput of taxodiff's UNet against diffusers' UNet2DModel, side by side.

    python benchmarks/bench_unet.py [--size 32] [--batch 64] [--steps 15]

Networks timed in one process, float32 and bf16 autocast, on the same batches: taxodiff's U-Net at its
default (patch 1: the same layout as diffusers'), taxodiff's U-Net on 2x2 pixel blocks (patch 2: faster,
grainier samples; see bench_networks.py for speed at equal quality), and diffusers' UNet2DModel with the same
widths (32/64/64, one layer per block, no attention).
"""

from __future__ import annotations

import argparse
import time

import torch

from taxodiff._malloc import tune_malloc
from taxodiff.nets.unet import UNet, UNetConfig


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def diffusers_unet(size: int) -> torch.nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=size,
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D",) * 3,
        up_block_types=("UpBlock2D",) * 3,
        norm_num_groups=8,
        num_class_embeds=None,
        class_embed_type=None,
    )


def timed(step, n: int) -> float:
    step()
    step()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - t0


def bench(name: str, net: torch.nn.Module, call, size: int, batch: int, steps: int) -> dict[str, float]:
    x = torch.randn(batch, 3, size, size)
    t = torch.randint(0, 1000, (batch,))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    out = {}
    for amp in (False, True):

        def train_step(amp: bool = amp) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = call(net, x, t).float().pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        @torch.no_grad()
        def infer_step(amp: bool = amp) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                call(net, x, t)

        tag = "bf16" if amp else "fp32"
        out[f"train_{tag}"] = batch * steps / timed(train_step, steps)
        out[f"infer_{tag}"] = batch * steps / timed(infer_step, steps)
    print(f"{name:>24} {n_params(net) / 1e6:6.2f}M  " + "  ".join(f"{k} {v:7.1f} img/s" for k, v in out.items()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--channels", default="32,64,64")
    args = ap.parse_args()
    tune_malloc()
    torch.manual_seed(0)
    ch = tuple(int(c) for c in args.channels.split(","))
    ours = UNet(UNetConfig(channels=ch, cond_dim=2, patch=1))  # the default
    patched = UNet(UNetConfig(channels=ch, cond_dim=2, patch=2))
    cond = torch.randn(args.batch, 2)
    theirs = diffusers_unet(args.size)
    print(f"{args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} threads")
    a = bench("taxodiff UNet (default)", ours, lambda n, x, t: n(x, t, cond), args.size, args.batch, args.steps)
    c = bench("taxodiff UNet, patch 2", patched, lambda n, x, t: n(x, t, cond), args.size, args.batch, args.steps)
    b = bench("diffusers UNet2DModel", theirs, lambda n, x, t: n(x, t).sample, args.size, args.batch, args.steps)
    best_theirs = max(b["train_fp32"], b["train_bf16"])
    best_ours = max(a["train_fp32"], a["train_bf16"])
    best_patched = max(c["train_fp32"], c["train_bf16"])
    print(f"training ratio, taxodiff default (same layout) / diffusers: {best_ours / best_theirs:.2f}x")
    print(f"training ratio, taxodiff patch 2 / diffusers: {best_patched / best_theirs:.2f}x")


if __name__ == "__main__":
    main()
