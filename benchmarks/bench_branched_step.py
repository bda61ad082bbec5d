"""A branched training step against a label-conditioned one at equal parameters, side by side in one process.

    python benchmarks/bench_branched_step.py [--config configs/digits.yaml] [--steps 200] [--precision fp32]
        [--set net.branch_network=whole ...]

Trains the branched family and the labelled baseline with its widths matched to the branched network's
parameter count, each for ``--warm`` steps and for ``--warm`` + ``--steps`` steps from scratch: the difference of
the two wall clocks is the time of ``--steps`` training steps (data, forward, backward, optimizer, EMA), without
the set-up both share (the data set, the branched family's tree discovery). A short run first warms imports and
caches. Prints milliseconds per step and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from taxodiff import api, config, runs
from taxodiff.cli.flags import key_value


def wall(cfg_path: str, overrides: dict[str, Any], steps: int, out: Path) -> tuple[float, int]:
    model = {"model": overrides["model"]}  # the other keys through with_overrides: another family's are set aside
    cfg = config.with_overrides(config.load(cfg_path, model), overrides | {"train.steps": steps})
    t0 = time.perf_counter()
    api.train(cfg, out, resume=False, progress=False)
    seconds = time.perf_counter() - t0
    return seconds, int(runs.read_json(out / "train.json")["parameters"])


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
    ap.add_argument("--set", type=key_value, action="append", default=[], metavar="KEY=VALUE", help="for both runs")
    args = ap.parse_args()
    common = dict(args.set) | {"train.precision": args.precision, "device": "cpu"}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        wall(args.config, common | {"model": "branched"}, args.warm, tmp / "warm-up")  # imports, caches
        branched, params = per_step(args.config, common | {"model": "branched"}, args, tmp)
        baseline = common | {"model": "labelled", "net.match_parameters": params}
        labelled, matched = per_step(args.config, baseline, args, tmp)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.config} {args.set}, {args.precision}")
    print(f"branched:                 {branched * 1e3:7.1f} ms a step ({params:,} parameters)")
    print(f"labelled, widths matched: {labelled * 1e3:7.1f} ms a step ({matched:,} parameters)")
    print(f"branched / labelled: {branched / labelled:.2f}")


if __name__ == "__main__":
    main()
