"""Time to quality: training seconds until the hierarchical model reaches fidelity >= 0.95 and KL <= 0.02,
for taxodiff's defaults and for the seed's reference configuration (configs/seed_reference.yaml), on the
same machine, data, trainer and evaluation, in one process.

    python benchmarks/bench_time_to_quality.py [--out runs/bench_ttq] [--budgets 200 400 600] [--factor 10]

1. Defaults: one run per step budget (the cosine schedule is sized to its budget, as a user would choose
   it), shortest first, each evaluated; our time is the training time of the first run that meets the bar.
2. Reference: one run at a constant learning rate, trained for ``factor`` times our time and evaluated at
   ``--checkpoints`` evenly spaced points; its time is the training time at the first evaluation that meets
   the bar. If none does, the ratio is reported as a lower bound (the budget over our time).

Quality is scored the same way on both: ``--n-per-category`` samples per category, the run's own sampler
(DDPM-25 for the defaults; DDPM-100 for the reference, whose DDIM-50 drew noise), the same domain classifier.
The reference trains on, past the last mark, until its training time reaches the budget. Training time
is wall-clock seconds of the training loop (the trainer's record), CPU seconds of the process beside it.
Sampling and scoring are not counted. Results: <out>/results.json.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
from pathlib import Path
from typing import Any

BAR = {"fidelity": 0.95, "kl": 0.02}
REFERENCE = Path(__file__).resolve().parents[1] / "configs" / "seed_reference.yaml"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def train_and_score(cfg: Any, run_dir: Path, n: int, cpu_so_far: float) -> dict[str, Any]:
    from taxodiff import api

    c0 = cpu_seconds()
    summary = api.train(cfg, run_dir, progress=False)
    cpu = cpu_so_far + cpu_seconds() - c0
    ev = api.evaluate(run_dir, {"n_per_category": n}, progress=False)
    row = {
        "run_dir": str(run_dir),
        "steps": summary["steps"],
        "parameters": summary["parameters"],
        "train_seconds": summary["seconds"],
        "train_cpu_seconds": round(cpu, 1),
        "sampler": f"{cfg.sample.sampler}-{cfg.sample.steps}",
        "kl": ev["images"]["overall"]["kl"],
        "kl_ci": ev["images"]["overall"]["ci"]["kl"],
        "fidelity": ev["fidelity"]["value"],
        "fidelity_ci": ev["fidelity"]["ci"],
    }
    row["meets_bar"] = row["fidelity"] >= BAR["fidelity"] and row["kl"] <= BAR["kl"]
    print(
        f"  {run_dir.name:>14} step {row['steps']:5d}  train {row['train_seconds']:7.1f} s "
        f"(CPU {row['train_cpu_seconds']:7.1f} s)  fidelity {row['fidelity']:.3f}  KL {row['kl']:.4f}"
        f"  {'meets the bar' if row['meets_bar'] else 'below the bar'}",
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("runs/bench_ttq"))
    ap.add_argument("--budgets", type=int, nargs="+", default=[200, 400, 600])
    ap.add_argument("--factor", type=float, default=10.0, help="reference budget, in multiples of our time")
    ap.add_argument("--checkpoints", type=int, default=3, help="evaluations of the reference run")
    ap.add_argument("--n-per-category", type=int, default=64)
    args = ap.parse_args()

    from taxodiff import api, config

    results: dict[str, Any] = {"bar": BAR, "ours": [], "reference": []}
    print("taxodiff defaults, one run per budget:", flush=True)
    ours = None
    for steps in sorted(args.budgets):
        cfg = config.load(None, {"train.steps": steps})
        row = train_and_score(cfg, args.out / f"ours_{steps}", args.n_per_category, 0.0)
        results["ours"].append(row)
        if row["meets_bar"]:
            ours = row
            break
    if ours is None:
        print("the defaults did not reach the bar within the budgets given: nothing to compare")
        _write(args.out, results)
        return

    ref_cfg = config.load(REFERENCE)
    budget = args.factor * ours["train_seconds"]
    run_dir = args.out / "reference"
    c0 = cpu_seconds()
    probe = api.train(config.with_overrides(ref_cfg, {"train.steps": 10}), run_dir, progress=False)
    per_step = probe["seconds"] / probe["steps"]
    total = max(10, math.ceil(1.02 * budget / per_step))  # a little over, so one evaluation ends the budget
    marks = [round(total * (i + 1) / args.checkpoints) for i in range(args.checkpoints)]
    print(f"reference: {per_step:.2f} s/step, budget {budget:.0f} s = {total} steps, evaluated at {marks}", flush=True)
    reached, cpu = None, cpu_seconds() - c0
    while reached is None:
        steps = marks.pop(0) if marks else None
        if steps is None:  # the marks are spent: train on until the budget in seconds is used up
            last = results["reference"][-1]
            if last["train_seconds"] >= budget:
                break
            rate = last["train_seconds"] / last["steps"]
            steps = last["steps"] + max(1, math.ceil((budget - last["train_seconds"]) / rate))
        if steps <= probe["steps"]:
            continue  # already trained past this mark in an earlier call: that checkpoint is gone
        row = train_and_score(config.with_overrides(ref_cfg, {"train.steps": steps}), run_dir, args.n_per_category, cpu)
        cpu = row["train_cpu_seconds"]
        results["reference"].append(row)
        if row["meets_bar"]:
            reached = row
    last = results["reference"][-1]
    if reached is not None:
        ratio, bound = reached["train_seconds"] / ours["train_seconds"], "="
    else:
        ratio, bound = last["train_seconds"] / ours["train_seconds"], ">="
    results["ratio"] = {"value": round(ratio, 2), "relation": bound, "goal": 10.0}
    print(
        f"time to quality: ours {ours['train_seconds']:.0f} s ({ours['steps']} steps); reference "
        + (f"{reached['train_seconds']:.0f} s" if reached else f"not reached in {last['train_seconds']:.0f} s")
        + f" ({last['steps']} steps): ratio {bound} {ratio:.1f}x (goal >= 10x)",
        flush=True,
    )
    _write(args.out, results)


def _write(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
