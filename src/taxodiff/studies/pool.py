"""A study's jobs on several worker processes at once, each on its share of the CPU threads.

On a few cores the networks of the studies' quick presets (8x8 to 16x16 feature maps, batch 64) keep two threads
busy only part of the time, so two runs on one thread each finish sooner than the same runs one after the other
on two threads (``benchmarks/bench_workers.py`` measures it). The main process keeps everything that is written
once: it hands out jobs whose needed runs are trained, appends every row a worker returns to ``results.jsonl``
(the study resumes as before), and runs the measures after the jobs. A run's training and evaluation are those
of the sequential runner on fewer threads, whose sums run in another order: its weights and rows are not
bit-identical to those of the same seed trained alone, and its training seconds are those of a run sharing the
machine. Families and data sources registered at run time (plug-ins) are registered again in every worker
(:mod:`taxodiff.studies.plugins`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from taxodiff import profiling
from taxodiff.studies.jobs import Job, Rows, configured, evaluate_job, found_rows
from taxodiff.studies.plugins import Plugins, install

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


class Found:
    """A worker's view of ``results.jsonl``: the rows found when its job was handed out, and those it made."""

    def __init__(self, by_id: Mapping[str, dict[str, Any]]) -> None:
        self.by_id = dict(by_id)

    def get(self, rid: str) -> dict[str, Any] | None:
        return self.by_id.get(rid)

    def add(self, row: dict[str, Any]) -> dict[str, Any]:
        self.by_id[row["id"]] = row
        return row


def _start(threads: int, profile: bool, plugins: Plugins) -> None:
    """A worker's set-up: it dies with the main process (Linux), its threads, the profiling timers if on, the
    main process's plug-ins."""
    if sys.platform.startswith("linux"):  # a killed study leaves no worker training on in its folders
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    import torch

    torch.set_num_threads(threads)
    if profile:
        profiling.enable()
    install(plugins)


def _work(job: Job, out: Path, by_id: Mapping[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], dict]:
    """One job in a worker: its rows (found or made) and the worker's profiling totals for it."""
    profiling.reset()
    rows = evaluate_job(job, out, Found(by_id), progress=False)
    return rows, profiling.totals()


def order(jobs: Sequence[Job]) -> list[set[int]]:
    """For every job, the jobs it waits for: those that train the runs it needs, and the one before it in the
    same run folder (a folder trained further step by step, as the RHM learning curve's marks, one at a time)."""
    last: dict[tuple[str, int, str], int] = {}
    after = []
    for i, j in enumerate(jobs):
        wait_for = {last[(j.cell, j.seed, n)] for n in j.needs if (j.cell, j.seed, n) in last}
        if (j.cell, j.seed, j.run) in last:
            wait_for.add(last[(j.cell, j.seed, j.run)])
        after.append(wait_for)
        last[(j.cell, j.seed, j.run)] = i
    return after


def run_jobs(
    jobs: Sequence[Job], out: Path, book: Rows, workers: int, plugins: Plugins | None = None
) -> list[list[dict[str, Any]]]:
    """Every job's rows, in the order of ``jobs``; at most ``workers`` jobs at once, each after the jobs it waits
    for (:func:`order`). A job whose rows are all found is not handed out. A worker's error (or death) stops the
    others, keeps the rows already made, and is raised here."""
    after = order(jobs)
    results: list[list[dict[str, Any]] | None] = [None] * len(jobs)
    pool: ProcessPoolExecutor | None = None
    waiting, running = list(range(len(jobs))), {}
    try:
        while waiting or running:
            ready = [i for i in waiting if all(results[k] is not None for k in after[i])]
            for i in ready:
                waiting.remove(i)
                job = configured(jobs[i], out)
                results[i] = found_rows(job, book)
                if results[i] is None:
                    pool = pool or _pool(min(workers, len(jobs)), plugins or {})
                    running[pool.submit(_work, job, out, dict(book.by_id))] = i
            if not running:
                if waiting and not ready:
                    raise RuntimeError("study jobs wait on runs that no job trains")
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: f.exception() is not None):  # rows made before an error
                i = running.pop(future)
                rows, totals = future.result()
                profiling.merge(totals)
                results[i] = [book.get(r["id"]) or book.add(r) for r in rows]
    except BaseException:
        if pool is not None:
            _stop(pool)
        raise
    if pool is not None:
        pool.shutdown()
    return [r or [] for r in results]


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _threads(workers: int) -> int:
    return max(1, usable_cpus() // workers)


def _pool(workers: int, plugins: Plugins) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")  # no forked torch thread pools
    args = (_threads(workers), profiling.enabled(), plugins)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=args)


def _stop(pool: ProcessPoolExecutor) -> None:
    """The workers stopped now, their jobs unfinished (they resume from their checkpoints)."""
    processes = list(getattr(pool, "_processes", {}).values())  # the executor has no public terminate
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
