"""Speed at equal quality: taxodiff's U-Net against diffusers' UNet2DModel, both trained by the same trainer on
the same data, scored by the same metrics, in one process.

    python benchmarks/bench_networks.py [--budgets 300 600 1200] [--model hierarchical] [--out runs/bench_nets]

For each network (taxodiff's U-Net at its default, the same on 2x2 pixel blocks, and ``net.arch: diffusers``
at the same widths) and each step budget, one run of the demo's config (its cosine schedule sized to the
budget, as a user would choose it) is trained and evaluated at the config's sampler. Quality is the pixel
metric (patch sliced Wasserstein distance, beside the data's own value) and the mode metrics (KL, and
fidelity for the hierarchical model). Each taxodiff network is compared with diffusers': the target is the
worse of the two networks' best pixel scores (a level both reach); each network's time to quality is the
training time of its first budget that reaches the target with KL <= 0.02 (and fidelity >= 0.95). Their
ratio is the speed-up at equal quality; budgets are discrete, so the ratio is as coarse as the budgets.
Training seconds only: sampling and scoring are not counted. Results: <out>/results.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DEMO = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
NETWORKS = {
    "taxodiff": {"net.patch": 1},  # the default
    "taxodiff-patch2": {"net.patch": 2},  # the U-Net on 2x2 pixel blocks: 3x the images per second
    "diffusers": {"net.arch": "diffusers", "net.patch": 1},
}
BASELINE = "diffusers"
BAR = {"kl": 0.02, "fidelity": 0.95}


def train_and_score(name: str, overrides: dict[str, Any], steps: int, args: argparse.Namespace) -> dict[str, Any]:
    from taxodiff import api, config

    cfg = config.load(args.config, {"model": args.model, "train.steps": steps, "seed": args.seed, **overrides})
    run_dir = Path(args.out) / name / f"steps{steps}"
    summary = api.train(cfg, run_dir, progress=False)
    ev = api.evaluate(run_dir, {"n_per_category": args.n_per_category}, progress=False)
    pixels = ev["features"]["pixels"]
    row = {
        "network": name,
        "steps": steps,
        "parameters": summary["parameters"],
        "train_seconds": summary["seconds"],
        "swd": pixels["swd"],
        "swd_data": pixels["swd_data"],
        "kl": ev["images"]["overall"]["kl"],
        "off_category": ev["images"]["overall"]["off_category"],
        "fidelity": ev["fidelity"]["value"] if "fidelity" in ev else None,
        "grid": str(run_dir / "figures" / f"samples_{ev['tag']}.png"),
    }
    fid = "" if row["fidelity"] is None else f"  fidelity {row['fidelity']:.3f}"
    print(
        f"{name:>10} {steps:5d} steps  train {row['train_seconds']:7.1f} s  pixel SWD {row['swd']:6.1f} "
        f"(data {row['swd_data']:.1f})  KL {row['kl']:.4f}{fid}",
        flush=True,
    )
    return row


def meets(row: dict[str, Any], target: float) -> bool:
    ok = row["swd"] <= target and row["kl"] <= BAR["kl"]
    return ok and (row["fidelity"] is None or row["fidelity"] >= BAR["fidelity"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(DEMO))
    ap.add_argument("--model", default="hierarchical")
    ap.add_argument("--budgets", type=int, nargs="+", default=[300, 600, 1200])
    ap.add_argument("--n-per-category", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench_nets")
    args = ap.parse_args()
    rows = [train_and_score(n, o, b, args) for n, o in NETWORKS.items() for b in sorted(args.budgets)]
    best = {n: min(r["swd"] for r in rows if r["network"] == n) for n in NETWORKS}
    pairs = {}
    for n in NETWORKS:
        if n == BASELINE:
            continue
        target = max(best[n], best[BASELINE])  # a level both reach at their best
        reach = {}
        for m in (n, BASELINE):
            hit = [r for r in rows if r["network"] == m and meets(r, target)]
            reach[m] = min((r["train_seconds"] for r in hit), default=None)
        ratio = reach[BASELINE] / reach[n] if all(t is not None for t in reach.values()) else None
        pairs[n] = {"target_swd": target, "time_to_quality_s": reach, "ratio": ratio}
        print(f"\n{n} vs {BASELINE}: target pixel SWD {target:.1f} (the worse of their best), KL <= {BAR['kl']}")
        for m, t in reach.items():
            print(f"  {m:>16}: " + (f"{t:.1f} s of training" if t is not None else "not reached within the budgets"))
        if ratio is not None:
            print(f"  time to equal quality, {BASELINE} / {n}: {ratio:.2f}x (budgets {sorted(args.budgets)})")
    result = {"rows": rows, "best_swd": best, "pairs": pairs, "bar": BAR}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
