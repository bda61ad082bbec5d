"""What per-sample random streams cost: sampling with one generator per sample (samples independent of the
batch size) against one generator for the whole batch, side by side in one process.

    python benchmarks/bench_streams.py --batch 256

Two workloads of the hierarchical model at its defaults, with untrained networks (the cost does not depend
on the weights): the z1 prior (an MLP on 2 numbers, 1,000 ancestral steps: the most draws per network
evaluation) and the image decoder (U-Net, 32x32, DDPM-25). Prints the time of each and the ratio.
"""

from __future__ import annotations

import argparse
import time

import torch

from taxodiff import api, config
from taxodiff.families import get_family
from taxodiff.families.images import guided_sample
from taxodiff.noise import Noise


def best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = config.load(None)
    fam = get_family(cfg.model)(cfg)
    module = api.build(fam).eval()
    sc, b = cfg.sample, args.batch
    cat = fam.condition(torch.arange(b) % fam.hierarchy.num_categories)
    z1 = torch.randn(b, fam.hierarchy.embed_dim)
    keys = [("sample", i) for i in range(b)]
    work = {
        "prior (MLP, 1,000 steps)": lambda noise: guided_sample(
            module.prior, cat, sc, 0.0, fam.prior_process, (b, 2), noise, "ddpm", sc.prior_steps
        ),
        "decoder (U-Net 32x32, 25 steps)": lambda noise: guided_sample(
            module.decoder, z1, sc, 0.0, fam.process, (b, 3, 32, 32), noise, "ddpm", sc.steps
        ),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {b}")
    with torch.no_grad():
        for name, fn in work.items():
            shared = best_of(lambda fn=fn: fn(Noise(torch.Generator().manual_seed(0))), args.repeats)
            per = best_of(lambda fn=fn: fn(Noise.per_sample(0, keys)), args.repeats)
            print(f"{name}: one generator {shared:.2f} s, one per sample {per:.2f} s, ratio {per / shared:.2f}x")


if __name__ == "__main__":
    main()
