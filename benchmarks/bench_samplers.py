"""Samplers at equal metrics: network evaluations and wall time per sample for DDPM-1000, DDIM-50, DPM-Solver++
and the default (ancestral DDPM, 25 steps), on one trained run, in one process.

    python benchmarks/bench_samplers.py --run-dir runs/demo/reference/seed0/hierarchical \
        [--n-per-category 128] [--guidance 0]

Every sampler draws the same number of samples per category from the same checkpoint; each is scored by the
same domain classifier. Prints one row per sampler and the default's distance to DDPM-1000 (goal: within 0.01
KL and 0.01 fidelity at >= 40x fewer evaluations). Results also go to <run-dir>/eval.json under each tag.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

SAMPLERS = (("ddpm", 1000), ("ddim", 50), ("dpmsolver++", 25), ("dpmsolver++", 15), ("dpmsolver++", 10))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--n-per-category", type=int, default=128)
    ap.add_argument("--guidance", type=float, default=0.0)
    args = ap.parse_args()

    from taxodiff import api

    _, cfg, _ = api.stored_config(args.run_dir)
    default = (cfg.sample.sampler, cfg.sample.steps)
    rows = []
    for sampler, steps in (*SAMPLERS, default):
        ov = {"sampler": sampler, "steps": steps, "guidance": args.guidance, "n_per_category": args.n_per_category}
        t0 = time.perf_counter()
        _, samples = api.sample(args.run_dir, ov, progress=False)
        seconds = time.perf_counter() - t0
        ev = api.evaluate(args.run_dir, ov, progress=False)
        n = len(samples["z2"])
        passes = 1 if args.guidance == 0 else 2
        row = {
            "sampler": f"{sampler}-{steps}" + (" (default)" if (sampler, steps) == default else ""),
            "evals": steps * passes,
            "ms_per_sample": 1000 * seconds / n,
            "kl": ev["images"]["overall"]["kl"],
            "off_category": ev["images"]["overall"]["off_category"],
            "fidelity": ev["fidelity"]["value"] if "fidelity" in ev else float("nan"),
        }
        rows.append(row)
        print(
            f"{row['sampler']:>24}  {row['evals']:5d} evals/sample  {row['ms_per_sample']:8.2f} ms/sample  "
            f"KL {row['kl']:.4f}  off-category {row['off_category']:.3f}  fidelity {row['fidelity']:.3f}",
            flush=True,
        )
    ref, dflt = rows[0], rows[-1]
    print(
        f"default vs DDPM-1000: {ref['evals'] / dflt['evals']:.0f}x fewer evaluations, "
        f"{ref['ms_per_sample'] / dflt['ms_per_sample']:.1f}x less time; "
        f"|dKL| {abs(dflt['kl'] - ref['kl']):.4f}, |dfidelity| {abs(dflt['fidelity'] - ref['fidelity']):.4f}"
    )


if __name__ == "__main__":
    main()
