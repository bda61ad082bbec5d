"""What every study shares: a list of training jobs, each evaluated under some sampling settings, one row of
``<out>/results.jsonl`` per evaluation, and resuming.

A job is a run directory with its config and a key that names it in the rows ({"cell": ..., "seed": ...,
"model": ...}). Rows are appended as they are made; running the study again reuses every row whose job key,
sampling tag and training steps match (so an interrupted study continues where it stopped, and a finished one
only rewrites its report); a job whose config changed (a digest of it is in every row) is run again, and its
training refuses a run directory holding another config. Training resumes from the run's checkpoints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taxodiff import runs
from taxodiff.config import RunConfig


@dataclass(frozen=True)
class Job:
    key: dict[str, Any]  # what names the training run in the rows
    cfg: RunConfig
    run_dir: Path
    settings: tuple[dict[str, Any], ...] = field(default_factory=lambda: ({},))  # sampling overrides


Record = Callable[[Job, dict[str, Any], dict[str, Any], dict[str, Any]], dict[str, Any]]  # job, setting, train, eval


def tag_of(cfg: RunConfig, setting: dict[str, Any]) -> str:
    """The sampling tag an evaluation of ``cfg`` under ``setting`` is stored under (no torch import)."""
    from taxodiff import api
    from taxodiff.families import get_family

    run_cfg = api.sample_settings(cfg, setting)
    return get_family(run_cfg.model)(run_cfg).sample_tag(run_cfg.sample)


def config_digest(cfg: RunConfig) -> str:
    """What identifies a job's training and sampling config in its rows (the device aside)."""
    import hashlib

    from taxodiff.config import to_dict

    blob = json.dumps({k: v for k, v in to_dict(cfg).items() if k != "device"}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _row_id(key: dict[str, Any], tag: str, digest: str) -> str:
    return json.dumps({**key, "tag": tag, "config_digest": digest}, sort_keys=True, default=str)


def study_seconds(out: Path, t0: float) -> float:
    """This call's time since ``t0`` plus the earlier calls' (summary.json's): a resumed study's total."""
    summary = Path(out) / "summary.json"
    before = runs.read_json(summary).get("seconds", 0.0) if summary.exists() else 0.0
    return round(before + time.perf_counter() - t0, 1)


def run_jobs(jobs: list[Job], out: Path, record: Record, progress: bool = True) -> list[dict[str, Any]]:
    """Train and evaluate every job (reusing finished rows); returns the rows, in job order."""
    from taxodiff import api

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    names = list(jobs[0].key) if jobs else []
    done = {
        _row_id({k: r.get(k) for k in names}, str(r.get("tag")), r.get("config_digest", "")): r
        for r in runs.read_jsonl(results)
    }  # a row that is not this study's matches no job and is recomputed
    rows: list[dict[str, Any]] = []
    for job in jobs:
        train: dict[str, Any] | None = None
        for setting in job.settings:
            tag, digest = tag_of(job.cfg, setting), config_digest(job.cfg)
            rid = _row_id(job.key, tag, digest)
            if rid in done:
                rows.append(done[rid])
                continue
            train = train or api.train(job.cfg, job.run_dir, resume=True, progress=progress)
            ev = api.evaluate(job.run_dir, setting, device=job.cfg.device, progress=progress)
            row = {**job.key, "tag": tag, "train_steps": train["steps"], "run_dir": str(job.run_dir)}
            row["config_digest"] = digest
            row |= record(job, setting, train, ev)
            runs.append_jsonl(results, row)
            done[rid] = row
            rows.append(row)
    runs.atomic_write(results, "".join(json.dumps(r) + "\n" for r in rows))
    return rows
