"""Time to the seed's validity on the Random Hierarchy Model: train the default RHM model on the seed's
example (v = n = 8, m = 3, s = 2, L = 3, P = 1,024, batch 64) and score it at intervals until the share of
fully valid generated sequences reaches the seed's published value (0.69 after 10k epochs).

    python benchmarks/bench_rhm_validity.py [--out runs/bench_rhm] [--every 2000] [--max-steps 40000]
                                            [--target 0.69] [--config FILE] [--n 1024]

Training resumes between evaluations (constant learning rate after warm-up, so the evaluations lie on one
run). Prints, at each evaluation, the training wall time, the process's CPU time (all threads; sampling
and scoring excluded), validity per level, and copies. Results: <out>/results.json.
"""

from __future__ import annotations

import argparse
import json
import resource
from pathlib import Path


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("runs/bench_rhm"))
    ap.add_argument("--config", type=Path)
    ap.add_argument("--every", type=int, default=2000)
    ap.add_argument("--max-steps", type=int, default=40_000)
    ap.add_argument("--target", type=float, default=0.69)
    ap.add_argument("--n", type=int, default=1024, help="samples per evaluation")
    args = ap.parse_args()

    from taxodiff import api, config

    base = config.load(args.config, under={"data.source": "rhm"})
    rows, cpu = [], 0.0
    for step in range(args.every, args.max_steps + 1, args.every):
        cfg = config.with_overrides(base, {"train.steps": step, "sample.n_samples": args.n})
        c0 = cpu_seconds()
        summary = api.train(cfg, args.out, progress=False)
        cpu += cpu_seconds() - c0
        ev = api.evaluate(args.out, progress=False)
        row = {
            "step": step,
            "epochs": step * cfg.train.batch_size / cfg.data.n_train,
            "train_seconds": summary["seconds"],
            "train_cpu_seconds": round(cpu, 1),
            "validity": ev["validity"]["sequences"],
            "copies": ev["memorisation"]["copies"],
            "parameters": summary["parameters"],
        }
        rows.append(row)
        print(
            f"step {step:6d} ({row['epochs']:6.0f} epochs)  train {row['train_seconds']:7.1f} s  "
            f"CPU {row['train_cpu_seconds'] / 60:6.2f} min  valid "
            + " ".join(f"{v:.3f}" for v in row["validity"])
            + f"  copies {row['copies']:.3f}",
            flush=True,
        )
        if row["validity"][-1] >= args.target:
            print(
                f"reached full-sequence validity {row['validity'][-1]:.3f} >= {args.target} after {step} steps: "
                f"{row['train_seconds'] / 60:.1f} min of training wall time, "
                f"{row['train_cpu_seconds'] / 60:.1f} CPU minutes ({summary['parameters']:,} parameters)"
            )
            break
    else:
        print(f"did not reach {args.target} within {args.max_steps} steps")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"target": args.target, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
