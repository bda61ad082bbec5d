"""The demo: train every family of the comparison (the flat baseline and the hierarchical families, read from
the registry) on one class tree, sample each at guidance 0 and at a higher scale, score them, and write
``report.md``, ``report.html`` and ``summary.json``.

All families get the same image network, data, steps, batch and learning rate; a hierarchical family's extra
parts (a small prior) train in the same steps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from taxodiff import config, runs
from taxodiff.config import RunConfig


def run_demo(cfg: RunConfig, out: Path, guidance: float = 3.0, progress: bool = True) -> dict[str, Any]:
    from taxodiff import api
    from taxodiff.data import get_source
    from taxodiff.families import compared
    from taxodiff.studies import demo_report

    out = Path(out)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    scales = [0.0] if guidance == 0 else [0.0, guidance]
    for family in compared(get_source(cfg.data.source).kind):
        run_cfg = config.for_family(cfg, family.name)
        run_dir = out / family.name
        t = time.perf_counter()
        train = api.train(run_cfg, run_dir, resume=True, progress=progress)
        timings[f"train_{family.name}"] = round(time.perf_counter() - t, 1)
        for w in scales:
            t = time.perf_counter()
            result = api.evaluate(run_dir, {"guidance": w}, device=cfg.device, progress=progress)
            timings[f"sample_eval_{family.name}_g{w:g}"] = round(time.perf_counter() - t, 1)
            rows.append({"family": family.name, "guidance": w, "run_dir": str(run_dir), "train": train, **result})
    timings["total"] = round(time.perf_counter() - t0, 1)
    summary = demo_report.summarise(cfg, rows, timings)
    runs.write_json(out / "summary.json", summary)
    demo_report.write_report(out, summary)
    return summary
