"""The branched family's own command-line verbs: ``taxodiff branches`` (branch discovery alone, over seeds) and
``taxodiff transmute`` (a class's images turned into another's down a trained run's tree). Both are also
``taxodiff branched branches|transmute``. Importing this module imports no torch."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from taxodiff.argtypes import nonneg_float, positive_int
from taxodiff.errors import TaxodiffError
from taxodiff.families.base import Verb


def _discovery_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/branches"))
    p.add_argument("--per-class", type=positive_int, default=100, help="training images per class (default 100)")
    p.add_argument("--times", type=positive_int, default=1000, help="time grid points in [0, 1] (default 1000)")
    p.add_argument("--draws", type=positive_int, default=1, help="noise draws per time point (default 1)")
    p.add_argument("--eps", type=nonneg_float, default=0.005, help="crossing tolerance (default 0.005)")
    p.add_argument("--smooth", type=nonneg_float, default=3.0, help="smoothing, in grid steps (default 3)")
    p.add_argument("--seeds", type=positive_int, default=1, help="repeat over seeds; reports clade recurrence")
    p.add_argument(
        "--min-length",
        type=nonneg_float,
        default=0.0,
        help="shortest branch, in units of time: shorter internal branches merge into the one above (default 0)",
    )
    p.add_argument(
        "--scale",
        type=nonneg_float,
        default=1.0,
        help="every branch point's distance from pure noise times this, 0 to 1: earlier branch points (default 1)",
    )


def _discover(args: argparse.Namespace, cfg: Any) -> int:
    from taxodiff.families.branched.discovery import DiscoverySettings
    from taxodiff.families.branched.discovery_runs import run_discovery

    if args.times < 2:
        raise TaxodiffError(f"--times {args.times} is invalid: allowed is at least 2")
    if args.min_length >= 0.5:
        raise TaxodiffError(f"--min-length {args.min_length} is invalid: allowed is 0 <= x < 0.5")
    if args.scale > 1:
        raise TaxodiffError(f"--scale {args.scale} is invalid: allowed is 0 <= x <= 1")
    s = DiscoverySettings(
        times=args.times,
        draws=args.draws,
        smooth=args.smooth,
        eps=args.eps,
        min_length=args.min_length,
        scale=args.scale,
    )
    r = run_discovery(cfg, args.out, s, args.per_class, args.seeds)
    for m in r["tree"]["merges"]:
        print(f"t = {m['t']:.3f}: {' '.join(m['a'])} + {' '.join(m['b'])}")
    if args.min_length > 0:
        kept = [b for b in r["tree"]["branches"] if len(b["classes"]) > 1]
        print(
            f"after --min-length {args.min_length:g}: {len(kept)} internal branches: "
            + "; ".join(f"{' '.join(b['classes'])} {b['t_start']:.3f}..{b['t_end']:.3f}" for b in kept)
        )
    if r["never_crossed"]:
        pairs = ", ".join("-".join(p) for p in r["never_crossed"])
        print(f"never crossed on the grid (merged at t = 1 by convention): {pairs}")
    if r["per_class_used"] < args.per_class:
        print(f"{r['per_class_used']} images of every class compared (the smallest class has no more)")
    recovered = sum(r["true_tree_recovered"])
    print(f"config's class tree recovered in {recovered} of {len(r['seeds'])} seeds; {args.out / 'tree.json'}")
    return 0


def _transmute_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--from", dest="source_class", help="class A (default: every ordered pair)")
    p.add_argument("--to", dest="target_class", help="class B (with --from)")
    p.add_argument("--n", type=positive_int, default=16, help="images per pair (default 16)")
    p.add_argument("--scale", type=nonneg_float, default=1.0, help="multiplies each pair's branch time (default 1)")
    p.add_argument("--out", type=Path, help="default: <run-dir>/transmute")


def _transmute(args: argparse.Namespace, cfg: Any) -> int:
    from taxodiff import api
    from taxodiff.families.branched import transmute

    if (args.source_class is None) != (args.target_class is None):
        raise TaxodiffError("--from and --to go together: allowed are both (one pair) or neither (every pair)")
    pairs = None if args.source_class is None else [(args.source_class, args.target_class)]
    api.stored_config(args.run_dir)  # a missing or foreign run: one line, before torch loads
    from taxodiff.train.distributed import resolve_device

    run = api.load(args.run_dir, resolve_device(args.device or "auto"))
    result = transmute.transmute(run, pairs, args.n, args.scale, not args.quiet, args.seed)
    out = args.out or args.run_dir / "transmute"
    figure = transmute.write([result], out)
    for r in result["pairs"]:
        print(
            f"{r['from']} -> {r['to']} at t = {r['t']:.3f}: target {r['share_target']:.2f}, "
            f"source {r['share_source']:.2f}"
        )
    print(f"{out / 'transmute.json'}; {figure}")
    return 0


VERBS = (
    Verb(
        "branches",
        "discover branch points: when classes merge under forward diffusion",
        _discovery_arguments,
        _discover,
        takes_config=True,
    ),
    Verb(
        "transmute",
        "turn training images of class A into class B down a branched run's tree",
        _transmute_arguments,
        _transmute,
    ),
)
