"""Training runs one after another on every thread against several at once on a share of the threads each, in
one process tree: what ``taxodiff study ... --workers N`` gains on this machine.

    python benchmarks/bench_workers.py [--config configs/digits.yaml] [--model flat] [--runs 2] [--steps 300]
        [--workers 2] [--repeats 2] [--set KEY=VALUE ...]

Each arm trains the same ``--runs`` runs (seeds 0, 1, ...) from scratch in spawned processes: one at a time on
all the threads, or ``--workers`` at a time on threads / workers each. The arms alternate ``--repeats`` times;
printed are the median wall-clock seconds of each arm and their ratio. A run's set-up (data, imports) is inside
both arms' clocks, as in a study.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from taxodiff.cli.flags import key_value
from taxodiff.studies.pool import usable_cpus


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _train(cfg_path: str, overrides: dict[str, Any], out: str) -> float:
    from taxodiff import api, config, runs

    model = {"model": overrides["model"]}
    cfg = config.with_overrides(config.load(cfg_path, model), overrides)
    api.train(cfg, out, resume=False, progress=False)
    return float(runs.read_json(Path(out) / "train.json")["seconds"])


def arm(args: argparse.Namespace, overrides: dict[str, Any], workers: int, tmp: Path) -> tuple[float, list[float]]:
    """Wall-clock seconds of all runs with ``workers`` at once, and each run's training-loop seconds."""
    threads = max(1, usable_cpus() // workers)  # as the study's workers get them
    context = multiprocessing.get_context("spawn")
    jobs = [
        (args.config, overrides | {"seed": k}, str(tmp / f"{workers}-{k}-{len(list(tmp.iterdir()))}"))
        for k in range(args.runs)
    ]
    t0 = time.perf_counter()
    with context.Pool(workers, _threads, (threads,)) as pool:
        seconds = pool.starmap(_train, jobs)
    return time.perf_counter() - t0, seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/digits.yaml")
    ap.add_argument("--model", default="flat")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", type=key_value, default=[])
    args = ap.parse_args()
    overrides = {"model": args.model, "train.steps": args.steps, **dict(args.sets)}
    walls: dict[int, list[float]] = {1: [], args.workers: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for workers in walls:
                wall, seconds = arm(args, overrides, workers, Path(tmp))
                walls[workers].append(wall)
                loops = ", ".join(f"{s:.1f}" for s in seconds)
                print(f"{workers} at once: {wall:7.1f} s wall; training loops {loops} s")
    one, many = median(walls[1]), median(walls[args.workers])
    print(f"{args.runs} runs of {args.model} ({args.config}, {args.steps} steps), {usable_cpus()} CPUs:")
    print(f"one at a time {one:.1f} s, {args.workers} at once {many:.1f} s: {one / many:.2f}x the throughput")


if __name__ == "__main__":
    main()
