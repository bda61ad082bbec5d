"""Where a command's seconds go: named timers around the pipeline's parts, off unless asked for.

    taxodiff demo --profile          # the table is printed to stderr at the end
    TAXODIFF_PROFILE=1 taxodiff ...  # the same, from the environment (a study's runs included)

Parts nest: a timer opened inside another is shown under it (``evaluate > classifier``), and a part's seconds
include those of its children. The timers cost one clock read each when on, nothing but a flag test when off.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

_on = os.environ.get("TAXODIFF_PROFILE", "") not in ("", "0")
_stack: list[str] = []
_totals: dict[str, list[float]] = {}  # path -> [seconds, calls]
_start = time.perf_counter()
_merged = False  # the timers include other processes' (merge)


def enable() -> None:
    global _on, _start
    _on, _start = True, time.perf_counter()


def enabled() -> bool:
    return _on


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Count the seconds of the block under ``name`` (nested under the open timers)."""
    if not _on:
        yield
        return
    path = " > ".join([*_stack, name])
    entry = _totals.setdefault(path, [0.0, 0])  # listed where it first starts: a parent before its children
    _stack.append(name)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _stack.pop()
        entry[0] += time.perf_counter() - t0
        entry[1] += 1


def table() -> str:
    """The parts in the order they first ran, with calls, seconds and their share of the whole command."""
    wall = time.perf_counter() - _start
    lines = [f"{'part':<48} {'calls':>6} {'seconds':>9} {'share':>6}"]
    for path, (seconds, calls) in _totals.items():
        depth = path.count(" > ")
        label = "  " * depth + path.rsplit(" > ", 1)[-1]
        lines.append(f"{label:<48} {calls:>6} {seconds:>9.1f} {seconds / wall:>6.1%}")
    lines.append(f"{'whole command':<48} {'':>6} {wall:>9.1f} {1:>6.0%}")
    if _merged:
        lines.append("(parts add up the seconds of every worker process: their shares of the wall clock sum past 100%)")
    return "\n".join(lines)


def reset() -> None:
    global _merged
    _totals.clear()
    _merged = False


def totals() -> dict[str, list[float]]:
    """The timers so far, by path: [seconds, calls] (what :func:`merge` adds, e.g. a worker process's)."""
    return {k: list(v) for k, v in _totals.items()}


def merge(more: dict[str, list[float]]) -> None:
    """Add another process's timers to these."""
    global _merged
    _merged = _merged or bool(more)
    for path, (seconds, calls) in more.items():
        entry = _totals.setdefault(path, [0.0, 0])
        entry[0] += seconds
        entry[1] += int(calls)
