"""Studies: grids of trainings and samplings with a report, run by one runner (:mod:`taxodiff.studies.runner`).

A study declares the data kinds it takes, its presets (each a :class:`Preset`, whose ``base`` values it sets
under the user's config), its jobs for a config and a preset, how its rows become a summary, and the blocks
of its report. One line each in ``STUDIES``; a study that belongs to one family lives in that family's folder.
The CLI's ``taxodiff study <name>`` (and ``taxodiff demo``) read this registry. This module imports no torch.
"""

from __future__ import annotations

from taxodiff.registry import Registry
from taxodiff.studies.runner import run_study
from taxodiff.studies.study import Preset, Study

__all__ = ["STUDIES", "Preset", "Study", "run_study"]


STUDIES: Registry[Study] = Registry(
    "study",
    "study",
    {
        "families": "taxodiff.studies.families:STUDY",
        "mode-collapse": "taxodiff.studies.mode_collapse:STUDY",
        "rhm-learning": "taxodiff.families.rhm.learning:STUDY",
        "rhm-phase-transition": "taxodiff.families.rhm.phase:STUDY",
        "branched": "taxodiff.families.branched.study:STUDY",
        "treevae": "taxodiff.families.treevae.study:STUDY",
    },
)
