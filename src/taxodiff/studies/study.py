"""What a study declares: its presets, the data kinds it takes, its jobs, how its rows become a summary and
the blocks of its report. The runner (:mod:`taxodiff.studies.runner`) does the rest. This module imports no
torch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from taxodiff.errors import TaxodiffError


@dataclass(frozen=True)
class Preset:
    """A study's preset: its own fields in a subclass; these every study has."""

    name: str
    help: str  # one line: what it runs and how long it takes on 2 CPU cores
    seeds: int = 1  # training seeds: the config's seed, +1, +2, ...
    base: Mapping[str, Any] = field(default_factory=dict)  # dotted values under the user's config


@dataclass(frozen=True)
class Study:
    name: str
    help: str
    title: str  # the report's title
    kinds: tuple[str, ...]  # the data kinds it takes ("images", "sequences")
    presets: Mapping[str, Preset]  # the first is the default
    default_out: str
    jobs: Callable[[Any, Any, Any], list[Any]]  # (config, preset, jobs.Context) -> [Job | Measure]
    summarise: Callable[[Any, Any, list[dict[str, Any]], Path], dict[str, Any]]  # (config, preset, rows, out)
    report: Callable[[dict[str, Any], list[dict[str, Any]], Path], list[Any]]  # (summary, rows, out) -> blocks
    defaults: Mapping[str, Any] = field(default_factory=dict)  # dotted values it needs (a data source, a family)
    workers: int = 1  # its default --workers on a CPU (at most one per CPU): what benchmarks/bench_workers.py supports

    def options(self) -> tuple[str, ...]:
        """The preset fields every preset of this study has beyond name, help and base: the CLI offers each."""
        names = set.intersection(*({f.name for f in fields(p)} for p in self.presets.values()))
        return tuple(n for n in ("seeds", "run_dir", "families", "budgets") if n in names)

    def preset(self, name: str, **options: Any) -> Preset:
        """The preset called ``name`` with the options given (None: the preset's)."""
        if name not in self.presets:
            raise TaxodiffError(f"--preset {name!r} is invalid: allowed are {', '.join(self.presets)}")
        return replace(self.presets[name], **{k: v for k, v in options.items() if v is not None})

    def check(self, kind: str, source: str) -> None:
        if kind not in self.kinds:
            raise TaxodiffError(
                f"study {self.name} takes {' or '.join(self.kinds)}: data.source = {source!r} holds {kind}"
            )
