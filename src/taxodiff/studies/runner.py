"""One runner for every study: its jobs and measures (:mod:`taxodiff.studies.jobs`), the study's time, the summary
and the pages.

A study (:class:`taxodiff.studies.Study`) lists its work for a config and a preset; the runner runs it, one job
after another or on several worker processes (:mod:`taxodiff.studies.pool`), and owns the rest:

- rows that resume: an interrupted study continues where it stopped, a finished one only rewrites its report;
- the study's time, summed over every call, an interrupted one up to its last row (``<out>/seconds.json``);
- ``summary.json`` (the study's own summary of its rows) and ``report.md`` / ``report.html`` (its blocks).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxodiff import runs
from taxodiff.config import RunConfig
from taxodiff.profiling import timed
from taxodiff.studies.jobs import Context, Job, Measure, Rows, configured, evaluate_job, measure
from taxodiff.studies.plugins import collect

if TYPE_CHECKING:
    from taxodiff.studies.study import Study

__all__ = ["Clock", "Context", "Job", "Measure", "run", "run_study"]


class Clock:
    """The study's time over every call: each call's seconds so far, saved after every row."""

    def __init__(self, out: Path) -> None:
        self.path = out / "seconds.json"
        self.before = runs.read_json(self.path).get("calls", []) if self.path.exists() else []
        self.t0 = time.perf_counter()

    def tick(self) -> float:
        """Save this call's time; the total over every call."""
        calls = [*self.before, round(time.perf_counter() - self.t0, 1)]
        runs.write_json(self.path, {"calls": calls})
        return round(sum(calls), 1)


def run(
    study: Study, cfg: RunConfig, preset: Any, out: Path, progress: bool = True, workers: int = 1
) -> dict[str, Any]:
    """Every job and measure of the study (reusing finished rows), then summary.json and the report. With
    ``workers`` > 1 the jobs run on that many processes at once (:mod:`taxodiff.studies.pool`), the measures
    after them."""
    from taxodiff.report.pages import write_pages

    out = Path(out)
    work = study.jobs(cfg, preset, Context(out, progress))  # bad input is refused before anything is written
    plugins = collect(_names(work)) if workers > 1 else {}  # refused before anything is written
    out.mkdir(parents=True, exist_ok=True)
    clock = Clock(out)
    book = Rows(out / "results.jsonl", clock.tick)
    done: dict[int, list[dict[str, Any]]] = {}
    if workers > 1:
        from taxodiff.studies.pool import run_jobs

        at = [k for k, item in enumerate(work) if isinstance(item, Job)]
        done = dict(zip(at, run_jobs([work[k] for k in at], out, book, workers, plugins), strict=True))
    rows: list[dict[str, Any]] = []
    for k, item in enumerate(work):
        if isinstance(item, Measure):
            rows.append(measure(item, book))
        else:
            rows += done[k] if k in done else evaluate_job(configured(item, out), out, book, progress)
        clock.tick()
    book.save()
    summary = {"study": study.name, "preset": preset.name, "rows_made": book.made, "seconds": clock.tick()}
    with timed("report"):
        summary |= study.summarise(cfg, preset, rows, out)
        runs.write_json(out / "summary.json", summary)
        write_pages(out, study.report(summary, rows, out), study.title)
    return summary


def _names(work: list[Job | Measure]) -> dict[str, set[str]]:
    """The model families and data sources the study's jobs name."""
    jobs = [j for j in work if isinstance(j, Job)]
    return {"model family": {j.cfg.model for j in jobs}, "data source": {j.cfg.data.source for j in jobs}}


def run_study(
    study: Study, cfg: Any, preset: Any, out: Path, progress: bool = True, workers: int = 1
) -> dict[str, Any]:
    """Check that the study takes the config's data, then run it (:func:`taxodiff.studies.runner.run`). With
    ``workers`` > 1 a script must start it under ``if __name__ == "__main__":`` (the workers are spawned)."""
    from taxodiff.data import get_source

    study.check(get_source(cfg.data.source).kind, cfg.data.source)
    return run(study, cfg, preset, Path(out), progress, workers)


def default_workers(study: Study, device: str) -> int:
    """The command line's default workers: the study's own number on a CPU, at most one per CPU; one on a GPU
    (its runs would share it)."""
    from taxodiff.studies.pool import usable_cpus
    from taxodiff.train.distributed import resolve_device

    return 1 if resolve_device(device).type != "cpu" else max(1, min(study.workers, usable_cpus()))
