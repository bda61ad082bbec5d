"""One runner for every study: training runs and their evaluations, rows that resume, the summary and the pages.

A study (:class:`taxodiff.studies.Study`) lists its work for a config and a preset: :class:`Job`s (a training run
and the sampling settings it is evaluated under, one row each) and :class:`Measure`s (a row made by a function
of earlier runs: a timing, a transmutation, noise-and-denoise). The runner owns the rest:

- one run-directory layout, ``<out>/<cell>/seed<k>/<run>`` (``run``: the family's name unless the job names it);
- jobs that need other runs of their cell and seed (a baseline matched to a run's parameter count) get the
  config overrides their ``configure`` makes from those runs' ``train.json``;
- every row is appended to ``<out>/results.jsonl`` as soon as it is made, under an id made of its job, its
  sampling tag and a digest of its config; running the study again reuses every row whose id is there (an
  interrupted study continues where it stopped, a finished one only rewrites its report) and keeps every row
  of the file (rows are merged, never dropped); training resumes from the runs' checkpoints;
- the study's time, summed over every call, an interrupted one up to its last row (``<out>/seconds.json``);
- ``summary.json`` (the study's own summary of its rows) and ``report.md`` / ``report.html`` (its blocks).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxodiff import runs
from taxodiff.config import RunConfig
from taxodiff.profiling import timed

if TYPE_CHECKING:
    from taxodiff.studies.study import Study


@dataclass(frozen=True)
class Context:
    """What a study's jobs may need beyond its config and preset."""

    out: Path  # the study's folder
    progress: bool = True


@dataclass(frozen=True)
class Job:
    """A training run of a study and the sampling settings it is evaluated under (one row each; none: the run
    is trained for the measures that read it)."""

    cell: str  # the regime (a folder: "reference", "imbalanced", "tree_unet/P256")
    seed: int
    cfg: RunConfig
    settings: tuple[Mapping[str, Any], ...] = ({},)
    name: str = ""  # the run's folder under <cell>/seed<k>/ (default: its family's name)
    labels: Mapping[str, Any] = field(default_factory=dict)  # more keys naming the job in its rows
    needs: tuple[str, ...] = ()  # runs of the same cell and seed this one is configured from (trained earlier)
    configure: Callable[[dict[str, dict[str, Any]]], Mapping[str, Any]] | None = None  # their train.json -> overrides

    @property
    def run(self) -> str:
        return self.name or self.cfg.model

    def key(self) -> dict[str, Any]:
        return {"cell": self.cell, "seed": self.seed, "model": self.cfg.model, "run": self.run, **self.labels}


@dataclass(frozen=True)
class Measure:
    """A row made by ``compute()`` from earlier runs; ``digest`` says what it depends on (another digest: made
    again)."""

    key: Mapping[str, Any]
    compute: Callable[[], dict[str, Any]]
    digest: str = ""


def run_dir(out: Path, cell: str, seed: int, run: str) -> Path:
    return Path(out) / cell / f"seed{seed}" / run


def config_digest(cfg: RunConfig) -> str:
    """What identifies a job's training and sampling config in its rows (the device aside)."""
    from taxodiff.config import to_dict

    blob = json.dumps({k: v for k, v in to_dict(cfg).items() if k != "device"}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def tag_of(cfg: RunConfig, setting: Mapping[str, Any]) -> str:
    """The sampling tag an evaluation of ``cfg`` under ``setting`` is stored under (no torch import)."""
    from taxodiff import api
    from taxodiff.families import get_family

    run_cfg = api.sample_settings(cfg, dict(setting))
    return get_family(run_cfg.model)(run_cfg).sample_tag(run_cfg.sample)


class Rows:
    """``results.jsonl`` by row id: rows found there, rows made now (appended at once), all kept."""

    def __init__(self, path: Path, on_add: Callable[[], Any] | None = None) -> None:
        self.path, self.on_add = path, on_add  # on_add: called after every row made (the study's clock)
        self.by_id = {r["id"]: r for r in runs.read_jsonl(path) if "id" in r}
        self.made = 0  # rows made by this call (not reused)

    def get(self, rid: str) -> dict[str, Any] | None:
        return self.by_id.get(rid)

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        runs.append_jsonl(self.path, row)
        self.by_id[row["id"]] = row
        self.made += 1
        if self.on_add is not None:
            self.on_add()
        return row

    def save(self) -> None:
        """The file rewritten atomically with every row once (a row made again replaces its old copy)."""
        runs.atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in self.by_id.values()))


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


def row_id(key: Mapping[str, Any], **more: Any) -> str:
    return json.dumps({**key, **more}, sort_keys=True, default=str)


def run(study: Study, cfg: RunConfig, preset: Any, out: Path, progress: bool = True) -> dict[str, Any]:
    """Every job and measure of the study (reusing finished rows), then summary.json and the report."""
    from taxodiff.report.pages import write_pages

    out = Path(out)
    work = study.jobs(cfg, preset, Context(out, progress))  # bad input is refused before anything is written
    out.mkdir(parents=True, exist_ok=True)
    clock = Clock(out)
    book = Rows(out / "results.jsonl", clock.tick)
    rows: list[dict[str, Any]] = []
    for item in work:
        if isinstance(item, Measure):
            rows.append(_measure(item, book))
        else:
            rows += _evaluate(_configured(item, out), out, book, progress)
        clock.tick()
    book.save()
    summary = {"study": study.name, "preset": preset.name, "rows_made": book.made, "seconds": clock.tick()}
    with timed("report"):
        summary |= study.summarise(cfg, preset, rows, out)
        runs.write_json(out / "summary.json", summary)
        write_pages(out, study.report(summary, rows, out), study.title)
    return summary


def _configured(job: Job, out: Path) -> Job:
    """The job with the overrides its ``configure`` makes from the runs it needs."""
    if job.configure is None:
        return job
    from dataclasses import replace

    from taxodiff.config import with_overrides

    trained = {n: runs.read_json(run_dir(out, job.cell, job.seed, n) / "train.json") for n in job.needs}
    return replace(job, cfg=with_overrides(job.cfg, dict(job.configure(trained))), configure=None)


def _evaluate(job: Job, out: Path, book: Rows, progress: bool) -> list[dict[str, Any]]:
    """The job's rows: found, or made by training (resuming) and evaluating its run."""
    from taxodiff import api
    from taxodiff.families import get_family

    where, digest = run_dir(out, job.cell, job.seed, job.run), config_digest(job.cfg)
    train: dict[str, Any] | None = None
    if not job.settings:
        api.train(job.cfg, where, resume=True, progress=progress)
    made = []
    for setting in job.settings:
        tag = tag_of(job.cfg, setting)
        rid = row_id(job.key(), tag=tag, config_digest=digest)
        row = book.get(rid)
        if row is None:
            train = train or api.train(job.cfg, where, resume=True, progress=progress)
            t0 = time.perf_counter()
            ev = api.evaluate(where, dict(setting), device=job.cfg.device, progress=progress)
            row = {"id": rid, **job.key(), **setting, "tag": tag, "run_dir": str(where), "config_digest": digest}
            row |= {"train_steps": train["steps"], "train_seconds": train["seconds"]}
            row |= {"parameters": train["parameters"], "networks": train.get("networks", {})}
            row["eval_seconds"] = round(time.perf_counter() - t0, 1)
            row = book.add(row | _cost_row(ev.get("cost", {})) | get_family(job.cfg.model).evaluation(ev).to_row())
        made.append(row)
    return made


def _cost_row(cost: dict[str, Any]) -> dict[str, Any]:
    """What drawing the evaluation's samples took: seconds per 1,000 images, network calls per image."""
    if not cost.get("images"):
        return {}
    per_1000 = round(1000 * cost["seconds"] / cost["images"], 1)
    return {"sample_seconds_per_1000": per_1000, "evaluations_per_image": cost["evaluations_per_image"]}


def _measure(m: Measure, book: Rows) -> dict[str, Any]:
    rid = row_id(m.key, digest=m.digest)
    row = book.get(rid)
    return row if row is not None else book.add({"id": rid, **m.key, **m.compute()})


def run_study(study: Study, cfg: Any, preset: Any, out: Path, progress: bool = True) -> dict[str, Any]:
    """Check that the study takes the config's data, then run it (:func:`taxodiff.studies.runner.run`)."""
    from taxodiff.data import get_source

    study.check(get_source(cfg.data.source).kind, cfg.data.source)
    return run(study, cfg, preset, Path(out), progress)
