"""A study's work and its rows: :class:`Job`s (a training run and the sampling settings it is evaluated under,
one row each) and :class:`Measure`s (a row made by a function of earlier runs: a timing, a transmutation,
noise-and-denoise), the run-directory layout, and ``results.jsonl`` by row id.

- one run-directory layout, ``<out>/<cell>/seed<k>/<run>`` (``run``: the family's name unless the job names it);
- jobs that need other runs of their cell and seed (a baseline matched to a run's parameter count) get the
  config overrides their ``configure`` makes from those runs' ``train.json``;
- every row is appended to ``<out>/results.jsonl`` as soon as it is made, under an id made of its job, its
  sampling tag and a digest of its config; running the study again reuses every row whose id is there, and
  keeps every row of the file (rows are merged, never dropped); training resumes from the runs' checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from taxodiff import runs
from taxodiff.config import RunConfig


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


class Book(Protocol):
    """Where a job's rows are looked up and added (:class:`Rows`; a worker's :class:`taxodiff.studies.pool.Found`)."""

    def get(self, rid: str) -> dict[str, Any] | None: ...

    def add(self, row: dict[str, Any]) -> dict[str, Any]: ...


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


def row_id(key: Mapping[str, Any], **more: Any) -> str:
    return json.dumps({**key, **more}, sort_keys=True, default=str)


def configured(job: Job, out: Path) -> Job:
    """The job with the overrides its ``configure`` makes from the runs it needs."""
    if job.configure is None:
        return job
    from dataclasses import replace

    from taxodiff.config import with_overrides

    trained = {n: runs.read_json(run_dir(out, job.cell, job.seed, n) / "train.json") for n in job.needs}
    return replace(job, cfg=with_overrides(job.cfg, dict(job.configure(trained))), configure=None)


def _row_ids(job: Job) -> list[tuple[Mapping[str, Any], str, str]]:
    """(setting, sampling tag, row id) of each of the job's rows."""
    digest, key = config_digest(job.cfg), job.key()
    tags = [tag_of(job.cfg, s) for s in job.settings]
    return [(s, t, row_id(key, tag=t, config_digest=digest)) for s, t in zip(job.settings, tags, strict=True)]


def found_rows(job: Job, book: Book) -> list[dict[str, Any]] | None:
    """The job's rows if every one of them is in ``book`` (a job without settings: None)."""
    rows = [book.get(rid) for _, _, rid in _row_ids(job)]
    return rows if job.settings and all(r is not None for r in rows) else None  # type: ignore[return-value]


def evaluate_job(job: Job, out: Path, book: Book, progress: bool) -> list[dict[str, Any]]:
    """The job's rows: found, or made by training (resuming) and evaluating its run."""
    from taxodiff import api
    from taxodiff.families import get_family

    where, digest = run_dir(out, job.cell, job.seed, job.run), config_digest(job.cfg)
    train: dict[str, Any] | None = None
    if not job.settings:
        api.train(job.cfg, where, resume=True, progress=progress)
    made = []
    for setting, tag, rid in _row_ids(job):
        row = book.get(rid)
        if row is None:
            train = train or api.train(job.cfg, where, resume=True, progress=progress)
            t0 = time.perf_counter()
            ev = api.evaluate(where, sampling(job.cfg, setting), device=job.cfg.device, progress=progress)
            row = {"id": rid, **job.key(), **setting, "tag": tag, "run_dir": str(where), "config_digest": digest}
            row |= {"train_steps": train["steps"], "train_seconds": train["seconds"]}
            row |= {"parameters": train["parameters"], "networks": train.get("networks", {})}
            row["eval_seconds"] = round(time.perf_counter() - t0, 1)
            row = book.add(row | _cost_row(ev.get("cost", {})) | get_family(job.cfg.model).evaluation(ev).to_row())
        made.append(row)
    return made


def sampling(cfg: RunConfig, setting: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation's sampling overrides: the job's whole sample section, then the setting. A finished run
    resumed under other sampling settings (another sampler, more samples) is sampled as its row says, not as the
    config stored in its checkpoint."""
    from taxodiff.config import to_dict

    return {**to_dict(cfg.sample), **setting}


def _cost_row(cost: dict[str, Any]) -> dict[str, Any]:
    """What drawing the evaluation's samples took: seconds per 1,000 images, network calls per image."""
    if not cost.get("images"):
        return {}
    per_1000 = round(1000 * cost["seconds"] / cost["images"], 1)
    return {"sample_seconds_per_1000": per_1000, "evaluations_per_image": cost["evaluations_per_image"]}


def measure(m: Measure, book: Rows) -> dict[str, Any]:
    rid = row_id(m.key, digest=m.digest)
    row = book.get(rid)
    return row if row is not None else book.add({"id": rid, **m.key, **m.compute()})
