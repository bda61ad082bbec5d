"""A branched training step against a label-conditioned one at equal parameters, side by side in one process.

    python benchmarks/bench_branched_step.py [--config configs/digits.yaml] [--steps 200] [--precision fp32]
        [--set net.branch_network=whole ...]

Trains the branched family and the labelled baseline with its widths matched to the branched network's
parameter count, each for ``--warm`` steps and for ``--warm`` + ``--steps`` steps from scratch: the difference of
the two training loops' clocks is the time of ``--steps`` training steps (data, forward, backward, optimizer,
EMA). The set-up (the data set, the branched family's tree discovery, whose time varies by seconds between runs)
is outside those clocks. A short run first warms imports and caches. Measures the two ``--repeats`` times,
alternating, and prints the medians of the milliseconds per step and of the pairs' ratios (this 2-core
machine's speed drifts by a third within minutes).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

import torch

from taxodiff import api, config, runs
from taxodiff.cli.flags import key_value


def wall(cfg_path: str, overrides: dict[str, Any], steps: int, out: Path) -> tuple[float, int]:
    model = {"model": overrides["model"]}  # the other keys through with_overrides: another family's are set aside
    cfg = config.with_overrides(config.load(cfg_path, model), overrides | {"train.steps": steps})
    api.train(cfg, out, resume=False, progress=False)
    record = runs.read_json(out / "train.json")
    return float(record["seconds"]), int(record["parameters"])  # the training loop's own clock, set-up apart


def per_step(cfg_path: str, overrides: dict[str, Any], args: argparse.Namespace, tmp: Path) -> tuple[float, int]:
    tag = str(len(list(tmp.iterdir())))
    short, _ = wall(cfg_path, overrides, args.warm, tmp / f"{tag}-short")
    long, params = wall(cfg_path, overrides, args.warm + args.steps, tmp / f"{tag}-long")
    return (long - short) / args.steps, params


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/digits.yaml")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warm", type=int, default=20)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--repeats", type=int, default=3, help="alternating measurements of the two; medians printed")
    ap.add_argument("--set", type=key_value, action="append", default=[], metavar="KEY=VALUE", help="for both runs")
    args = ap.parse_args()
    common = dict(args.set) | {"train.precision": args.precision, "device": "cpu"}
    branched, labelled, ratios = [], [], []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        wall(args.config, common | {"model": "branched"}, args.warm, tmp / "warm-up")  # imports, caches
        for _ in range(args.repeats):  # alternating, so that a drift in the machine's speed hits both
            b, params = per_step(args.config, common | {"model": "branched"}, args, tmp)
            baseline = common | {"model": "labelled", "net.match_parameters": params}
            lab, matched = per_step(args.config, baseline, args, tmp)
            branched, labelled, ratios = branched + [b], labelled + [lab], ratios + [b / lab]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.config} {args.set}, {args.precision}")
    print(f"branched:                 {median(branched) * 1e3:7.1f} ms a step ({params:,} parameters)")
    print(f"labelled, widths matched: {median(labelled) * 1e3:7.1f} ms a step ({matched:,} parameters)")
    print(
        f"branched / labelled: {median(ratios):.2f} (median of {args.repeats} side-by-side pairs: "
        f"{', '.join(f'{r:.2f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
