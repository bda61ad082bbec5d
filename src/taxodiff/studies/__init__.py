"""Studies: grids of trainings and samplings with a report. One module each, one line each in ``STUDIES``.

A study declares its presets (dotted config values each sets under the user's config), the options it takes
and the function that runs it; the CLI's ``taxodiff study <name>`` reads this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from taxodiff.registry import Registry


@dataclass(frozen=True)
class Study:
    name: str
    help: str
    presets: dict[str, str]  # preset name -> what it is (one line)
    default_out: str
    run: Callable[..., Any]  # run(cfg, preset, out, progress, **options) -> summary
    under: Callable[[str], dict[str, Any]] = lambda preset: {}  # dotted values a preset sets under the config
    options: tuple[str, ...] = ()  # extra options it takes: "seeds", "run_dir"
    defaults: dict[str, Any] = field(default_factory=dict)  # dotted values it needs (e.g. a data source)


STUDIES: Registry[Study] = Registry(
    "study",
    "study",
    {
        "mode-collapse": "taxodiff.studies.mode_collapse:STUDY",
        "rhm-learning": "taxodiff.families.rhm.learning:STUDY",
        "rhm-phase-transition": "taxodiff.families.rhm.phase:STUDY",
        "branched": "taxodiff.families.branched.study:STUDY",
        "treevae": "taxodiff.families.treevae.study:STUDY",
    },
)
