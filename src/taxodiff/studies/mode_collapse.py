"""The mode-collapse study: when does a flat conditional model lose or mis-weight modes, and does the
hierarchical factorisation change that?

A study is a grid. Training regimes ("cells") change what a model learns from: the reference (the
config as given), sub-class imbalance, a small training set, a short training budget. Every cell
trains every family of the comparison (the registry's flat baseline and the hierarchical families), with the
same network, data and steps, for every seed. Sampling settings change how a trained model is used: guidance
scale, guidance rule (plain CFG, the interval rule, CADS) and sampling steps; a family's other guidance knobs
(the hierarchical prior's) are swept separately.
The full sampling grid runs on the reference cell; the other cells are sampled at guidance 0 and at
one higher scale.

The ``demo`` preset is ``taxodiff demo``: the reference regime only, every compared family unguided and at one
higher scale, with a short report. Runs live in ``<out>/<cell>/seed<k>/<family>``; each evaluation is a row of
``<out>/results.jsonl`` and the report is written from those rows. Re-running the study resumes
(:mod:`taxodiff.studies.runner`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from taxodiff import config as config_mod
from taxodiff.config import RunConfig
from taxodiff.studies import Preset, Study
from taxodiff.studies.jobs import Context, Job
from taxodiff.studies.regimes import Cell, cell_config


@dataclass(frozen=True)
class Setting:
    """A sampling setting: the image network's guidance scale and rule, or one other guidance knob of a
    family (e.g. its prior's) swept alone; steps None = the config's."""

    guidance: float = 0.0
    knob: str | None = None  # another guidance scale of the family (a sample key), or None
    knob_scale: float = 0.0
    method: str = "cfg"
    steps: int | None = None

    def for_family(self, knobs: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {"guidance": self.guidance, "guidance_method": self.method}
        if self.steps is not None:
            out["steps"] = self.steps
        for k in knobs:
            if k != "guidance":
                out[k] = self.knob_scale if k == self.knob else 0.0
        return out


@dataclass(frozen=True)
class CollapsePreset(Preset):
    scales: tuple[float, ...] = (0.0, 1.0, 3.0, 7.0)  # guidance scales swept on the reference cell
    methods: tuple[str, ...] = ()  # guidance rules for the baseline beside plain CFG
    sampling_steps: tuple[int, ...] = ()  # sampling-step regime (at guidance 0 and the cells' higher scale)
    cell_scale: float = 3.0  # the higher scale at which the other cells are sampled
    short_fraction: float = 0.25  # the short-training cell trains this fraction of the reference's steps
    small_data: int = 500  # training-set size of the small-data cell
    imbalance: float = 0.9  # the major subtype's share in the imbalance cell
    regimes: bool = True  # the other training regimes (False: the reference cell only)
    knobs: bool = True  # a family's other guidance scales (the hierarchical prior's) swept alone
    every_family: bool = False  # every rule for every family and guidance knob (False: the baseline's image only)
    short_report: bool = False  # the demo's report: the reference regime's table, proportions and sample grids

    def cells(self, cfg: RunConfig) -> list[Cell]:
        short = max(1, round(cfg.train.steps * self.short_fraction))
        if not self.regimes:
            return [Cell("reference", "the config as given")]
        return [
            Cell("reference", "the config as given"),
            Cell("imbalanced", f"first subtype of each category at {self.imbalance:g}", imbalance=self.imbalance),
            Cell("small_data", f"{self.small_data:,} training images", {"data.n_train": self.small_data}),
            Cell("short_training", f"{short:,} training steps", {"train.steps": short}),
        ]

    def settings(self, cell: str, knobs: Mapping[str, str], baseline: bool, default_steps: int) -> list[Setting]:
        """Sampling settings of one trained model. At scale 0 every rule but CADS is the conditional model (not
        repeated); CADS is not (it anneals the condition even unguided). Other guidance knobs are swept alone,
        with plain CFG (with every rule that acts on vectors, CADS aside, under ``every_family``)."""
        from taxodiff.processes.guiders import RULES

        if cell != "reference":
            return [Setting(0.0), Setting(self.cell_scale)]
        out = [Setting(w) for w in self.scales]
        if baseline or self.every_family:
            out += [Setting(w, method=m) for m in self.methods for w in self.scales if w > 0 or m == "cads"]
        # CADS is left out of the other knobs: it anneals every network's condition, the unguided one's too
        vector = [m for m in self.methods if not RULES[m].images_only and m != "cads"]
        knob_rules = ("cfg", *vector) if self.every_family else ("cfg",)
        for knob in knobs if self.knobs else ():
            if knob != "guidance":
                out += [Setting(0.0, knob, w, method=m) for m in knob_rules for w in self.scales if w > 0]
        steps = [s for s in self.sampling_steps if s != default_steps]
        out += [Setting(w, steps=s) for s in steps for w in (0.0, self.cell_scale)]
        return out


# ~40 minutes on 2 CPU cores (--seeds 1: a third of that): 3 seeds, 16x16 images, a shorter schedule, 128
# samples per category, and the U-Net on 2x2 pixel blocks (3x faster to train; grainier images, which the
# pixel metric reports).
QUICK = CollapsePreset(
    name="quick",
    help="3 seeds, ~40 min on 2 CPU cores (--seeds 1: ~13 min)",
    seeds=3,
    base={"data.size": 16, "train.steps": 800, "sample.n_per_category": 128, "net.patch": 2},
    scales=(0.0, 1.0, 3.0, 7.0),
    methods=("interval", "cads"),
    sampling_steps=(10, 50),
)
# Every guidance rule (processes/guiders.py) for both families, the hierarchical prior included, on the
# reference regime only, over 3 seeds, at the quick preset's size and budget.
GUIDERS = replace(
    QUICK,
    name="guiders",
    help="every guidance rule for every compared family, 3 seeds, reference regime (~30 min on 2 CPU cores)",
    methods=("interval", "cads", "apg", "cfg-zero-star", "tcfg", "fdg", "mambo"),
    sampling_steps=(),
    regimes=False,
    every_family=True,
)
# The study as specified: 3 seeds, the config's own resolution and budget (hours on a CPU; a GPU helps).
FULL = replace(
    QUICK,
    name="full",
    help="3 seeds, the config's budget: hours on a CPU",
    base={},
    scales=(0.0, 1.0, 2.0, 3.0, 5.0, 7.0),
)
# The demo (taxodiff demo): the config as given, every compared family unguided and at one higher scale.
DEMO = CollapsePreset(
    name="demo",
    help="the demo: the config as given, guidance 0 and 3, one seed (about 11 min on 2 bf16 CPU cores)",
    scales=(0.0, 3.0),
    regimes=False,
    knobs=False,
    short_report=True,
)
PRESETS: dict[str, CollapsePreset] = {p.name: p for p in (QUICK, GUIDERS, FULL, DEMO)}


def jobs(cfg: RunConfig, preset: CollapsePreset, ctx: Context | None = None) -> list[Job]:
    """Every (regime, seed, family) training run of the study with its sampling settings."""
    from taxodiff.data import get_source
    from taxodiff.families import compared

    families = compared(get_source(cfg.data.source).kind)
    out = []
    for cell in preset.cells(cfg):
        for seed in range(cfg.seed, cfg.seed + preset.seeds):
            cell_cfg = cell_config(cfg, cell, seed)
            for fam in families:
                run_cfg = config_mod.for_family(cell_cfg, fam.name)
                knobs = fam.roles.guidance
                settings = preset.settings(cell.name, knobs, fam.roles.baseline, run_cfg.sample.steps)
                out.append(Job(cell.name, seed, run_cfg, tuple(s.for_family(knobs) for s in settings)))
    return out


def summarise(cfg: RunConfig, preset: CollapsePreset, rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    if preset.short_report:
        from taxodiff.studies import demo_report

        return demo_report.summarise(cfg, preset, rows)
    from taxodiff.studies import mode_collapse_report as report

    return report.summarise(cfg, preset, preset.cells(cfg), rows)


def report(summary: dict[str, Any], rows: list[dict[str, Any]], out: Path) -> list[Any]:
    """The report's blocks (and its figures, drawn here)."""
    if summary["short_report"]:
        from taxodiff.studies import demo_report

        return demo_report.report(summary, out)
    from taxodiff.studies import mode_collapse_report as full

    return full.report(summary, out)


STUDY = Study(
    name="mode-collapse",
    help="the baseline family vs the other compared families across guidance, imbalance, data size, training "
    "budget, sampling steps",
    title="taxodiff mode-collapse study",
    kinds=("images",),
    presets=PRESETS,
    default_out="runs/study-mode-collapse",
    jobs=jobs,
    summarise=summarise,
    report=report,
)
