"""All classes at once with cached branch points against per-class sampling: one branched model, one grid.

    python benchmarks/bench_branched.py --config configs/mnist.yaml --per-class 64
    python benchmarks/bench_branched.py --run-dir runs/study-branched/branched-seed0   # a trained run

Without --run-dir it trains a branched run on the config for --train-steps (the cost of sampling does not depend
on how long the weights trained; the tree is discovered on the training data either way). Per class: C chains
of every grid step; cached: one chain per root sample, split at every branch point. Prints network evaluations
and wall clock of both (one warm-up first, then each timed once, side by side), their ratios, and the tree's
theoretical ratio C / (sum of branch lengths) and the same on the sampling grid.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from taxodiff import api, config
from taxodiff.families.branched.study import speed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/mnist.yaml")
    ap.add_argument("--run-dir", type=Path)
    ap.add_argument("--train-steps", type=int, default=200)
    ap.add_argument("--per-class", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir
        if run_dir is None:
            cfg = config.load(args.config, {"model": "branched", "train.steps": args.train_steps})
            run_dir = Path(tmp) / "branched"
            api.train(cfg, run_dir, progress=False)
        s = speed(run_dir, args.per_class, progress=False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {s['n_classes']} classes x {s['per_class']}")
    for b in s["tree"]["branches"]:
        print(f"  branch {'+'.join(b['classes']):<24} t {b['t_start']:>4}..{b['t_end']:<4} head {b['head']}")
    for k in ("classes", "classes-cached"):
        print(f"{k:>15}: {s[k]['evaluations']:>8,} network evaluations, {s[k]['seconds']:7.1f} s")
    print(
        f"ratio: evaluations {s['evaluation_ratio']:.2f}x, wall clock {s['time_ratio']:.2f}x; theory "
        f"C / sum of branch lengths {s['theory']:.2f}x, on the {s['steps']}-step grid {s['grid_theory']:.2f}x"
    )


if __name__ == "__main__":
    main()
