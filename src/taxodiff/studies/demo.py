"""The demo: train every family of the comparison (the flat baseline and the hierarchical families, read from
the registry) on one class tree, over one or more training seeds, sample each at guidance 0 and at a higher
scale, score them, and write ``report.md``, ``report.html`` and ``summary.json``.

All families get the same image network, data, steps, batch and learning rate; a hierarchical family's extra
parts (a small prior) train in the same steps. The config's seed trains in ``<out>/<family>``, every further
seed in ``<out>/seed<k>/<family>``, so adding seeds to a finished demo reuses its runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from taxodiff import config, runs
from taxodiff.config import RunConfig


def seed_dirs(cfg: RunConfig, out: Path, seeds: int) -> list[tuple[RunConfig, Path]]:
    """(config, directory of its family runs) per training seed: the config's own seed first."""
    return [
        (cfg, out) if k == 0 else (config.with_overrides(cfg, {"seed": cfg.seed + k}), out / f"seed{cfg.seed + k}")
        for k in range(seeds)
    ]


def run_demo(cfg: RunConfig, out: Path, guidance: float = 3.0, progress: bool = True, seeds: int = 1) -> dict[str, Any]:
    from taxodiff import api
    from taxodiff.data import get_source
    from taxodiff.families import compared
    from taxodiff.studies import demo_report

    out = Path(out)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    scales = [0.0] if guidance == 0 else [0.0, guidance]
    for seed_cfg, base in seed_dirs(cfg, out, seeds):
        suffix = f"_seed{seed_cfg.seed}" if seeds > 1 else ""
        for family in compared(get_source(cfg.data.source).kind):
            run_cfg = config.for_family(seed_cfg, family.name)
            run_dir = base / family.name
            t = time.perf_counter()
            train = api.train(run_cfg, run_dir, resume=True, progress=progress)
            timings[f"train_{family.name}{suffix}"] = round(time.perf_counter() - t, 1)
            for w in scales:
                t = time.perf_counter()
                result = api.evaluate(run_dir, {"guidance": w}, device=cfg.device, progress=progress)
                timings[f"sample_eval_{family.name}_g{w:g}{suffix}"] = round(time.perf_counter() - t, 1)
                rows.append(
                    {"family": family.name, "seed": seed_cfg.seed, "guidance": w, "run_dir": str(run_dir),
                     "train": train, **result}
                )  # fmt: skip
    timings["total"] = round(time.perf_counter() - t0, 1)
    summary = demo_report.summarise(cfg, rows, timings)
    runs.write_json(out / "summary.json", summary)
    demo_report.write_report(out, summary)
    return summary
