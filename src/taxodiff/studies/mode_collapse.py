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

Runs live in ``<out>/<cell>/seed<k>/<family>``; each evaluation is a row of ``<out>/results.jsonl`` and the
report is written from those rows. Re-running the study resumes (:mod:`taxodiff.studies.grid`).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from taxodiff import config as config_mod
from taxodiff import runs
from taxodiff.config import RunConfig
from taxodiff.errors import TaxodiffError
from taxodiff.studies.grid import Job, run_jobs, study_seconds


@dataclass(frozen=True)
class Cell:
    """A training regime: a name, what it changes, and how (dotted config overrides, or a function)."""

    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    imbalance: float | None = None  # the first subtype of every category gets this share


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
class Preset:
    name: str
    seeds: int  # number of seeds: the config's seed, +1, +2, ...
    base: dict[str, Any]  # dotted values replacing the defaults (a user's --config still overrides them)
    scales: tuple[float, ...]  # guidance scales swept on the reference cell
    methods: tuple[str, ...]  # guidance rules for the baseline beside plain CFG
    sampling_steps: tuple[int, ...]  # sampling-step regime (at guidance 0 and the cells' higher scale)
    cell_scale: float  # the higher scale at which the other cells are sampled
    short_fraction: float  # the short-training cell trains this fraction of the reference's steps
    small_data: int  # training-set size of the small-data cell
    imbalance: float  # the major subtype's share in the imbalance cell
    regimes: bool = True  # the other training regimes (False: the reference cell only)
    every_family: bool = False  # every rule for every family and guidance knob (False: the baseline's image only)

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

    def settings(self, cell: str, knobs: dict[str, str], baseline: bool, default_steps: int) -> list[Setting]:
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
        for knob in knobs:
            if knob != "guidance":
                out += [Setting(0.0, knob, w, method=m) for m in knob_rules for w in self.scales if w > 0]
        steps = [s for s in self.sampling_steps if s != default_steps]
        out += [Setting(w, steps=s) for s in steps for w in (0.0, self.cell_scale)]
        return out


# ~40 minutes on 2 CPU cores (--seeds 1: a third of that): 3 seeds, 16x16 images, a shorter schedule, 128
# samples per category, and the U-Net on 2x2 pixel blocks (3x faster to train; grainier images, which the
# pixel metric reports).
QUICK = Preset(
    name="quick",
    seeds=3,
    base={"data.size": 16, "train.steps": 800, "sample.n_per_category": 128, "net.patch": 2},
    scales=(0.0, 1.0, 3.0, 7.0),
    methods=("interval", "cads"),
    sampling_steps=(10, 50),
    cell_scale=3.0,
    short_fraction=0.25,
    small_data=500,
    imbalance=0.9,
)
# Every guidance rule (processes/guiders.py) for both families, the hierarchical prior included, on the
# reference regime only, over 3 seeds, at the quick preset's size and budget.
GUIDERS = replace(
    QUICK,
    name="guiders",
    seeds=3,
    methods=("interval", "cads", "apg", "cfg-zero-star", "tcfg", "fdg", "mambo"),
    sampling_steps=(),
    regimes=False,
    every_family=True,
)
PRESETS: dict[str, Preset] = {
    "quick": QUICK,
    "guiders": GUIDERS,
    # the study as specified: 3 seeds, the config's own resolution and budget (hours on a CPU; a GPU helps).
    "full": replace(QUICK, name="full", seeds=3, base={}, scales=(0.0, 1.0, 2.0, 3.0, 5.0, 7.0)),
}


def imbalanced_spec(cfg: RunConfig, major: float) -> dict[str, Any]:
    """The config's class tree with the children of every condition node reweighted: the first gets ``major``,
    the others share the rest equally (category probabilities unchanged)."""
    from taxodiff.data import get_source

    spec = copy.deepcopy(get_source(cfg.data.source)(cfg).hierarchy.to_spec())

    def walk(children: dict[str, Any], depth: int) -> None:
        for value in children.values():
            if not isinstance(value, dict) or "children" not in value:
                continue
            if depth == cfg.cond_level:
                kids = value["children"]
                rest = (1 - major) / max(1, len(kids) - 1)
                for i, name in enumerate(kids):
                    p = major if i == 0 else rest
                    kids[name] = {**kids[name], "p": p} if isinstance(kids[name], dict) else p
            else:
                walk(value["children"], depth + 1)

    walk(spec, 1)
    return spec


def cell_config(cfg: RunConfig, cell: Cell, seed: int) -> RunConfig:
    data: dict[str, Any] = {"seed": seed, **cell.overrides}
    if cell.imbalance is not None:
        data["hierarchy"] = imbalanced_spec(cfg, cell.imbalance)
    return config_mod.with_overrides(cfg, data)


def record(job: Job, setting: dict[str, Any], train: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    """One row of results.jsonl: the regime, the setting and the measured numbers (point and 95% interval)."""
    o = ev["images"]["overall"]
    row: dict[str, Any] = {
        "method": setting["guidance_method"],
        "guidance": setting["guidance"],
        **{k: v for k, v in setting.items() if k not in ("guidance", "guidance_method", "steps")},
        "steps": ev["sample"]["steps"],
        "train_seconds": train["seconds"],
        "n": o["n"],
        "entropy_data": o["entropy_data"],
        "coverage_rel": ev["images"]["settings"]["coverage_rel"],
        "classifier_accuracy": ev["classifier"]["accuracy"],
        "categories": {
            c: {k: v[k] for k in ("subtypes", "p_data", "proportions", "coverage", "kl", "off_category")}
            for c, v in ev["images"]["categories"].items()
        },
    }
    for key in ("kl", "coverage", "entropy", "tv", "off_category"):
        row[key], row[f"{key}_ci"] = o[key], o["ci"][key]
    if "fidelity" in ev:
        row["fidelity"], row["fidelity_ci"] = ev["fidelity"]["value"], ev["fidelity"]["ci"]
        row["prior_kl"], row["prior_kl_ci"] = ev["prior"]["overall"]["kl"], ev["prior"]["overall"]["ci"]["kl"]
    if "features" in ev:
        f = ev["features"]["overall"]
        row.update({k: f[k] for k in ("precision", "recall", "density", "frechet", "vendi", "vendi_data")})
        row["prdc_coverage"] = f["coverage"]
        row["within_subtype_ratio"] = f["within_subtype_ratio"]
        row["memorisation"] = ev["features"]["memorisation"]["rate"]
        if "pixels" in ev["features"]:
            row["pixel_swd"] = ev["features"]["pixels"]["swd"]
            row["pixel_swd_data"] = ev["features"]["pixels"]["swd_data"]
    return row


def jobs(cfg: RunConfig, preset: Preset, out: Path) -> list[Job]:
    """Every (regime, seed, family) training run of the study with its sampling settings."""
    from taxodiff.data import get_source
    from taxodiff.families import compared

    families = compared(get_source(cfg.data.source).kind)
    out_jobs = []
    for cell in preset.cells(cfg):
        for seed in range(cfg.seed, cfg.seed + preset.seeds):
            cell_cfg = cell_config(cfg, cell, seed)
            for fam in families:
                run_cfg = config_mod.for_family(cell_cfg, fam.name)
                settings = preset.settings(cell.name, fam.roles.guidance, fam.roles.baseline, run_cfg.sample.steps)
                out_jobs.append(
                    Job(
                        {"cell": cell.name, "seed": seed, "model": fam.name},
                        run_cfg,
                        out / cell.name / f"seed{seed}" / fam.name,
                        tuple(s.for_family(fam.roles.guidance) for s in settings),
                    )
                )
    return out_jobs


def run_study(cfg: RunConfig, preset: Preset, out: Path, progress: bool = True) -> dict[str, Any]:
    """Train, sample and evaluate the whole grid, then write results.jsonl, summary.json and the report."""
    from taxodiff.studies import mode_collapse_report as report

    out = Path(out)
    t0 = time.perf_counter()
    rows = run_jobs(jobs(cfg, preset, out), out, record, progress)
    summary = report.summarise(cfg, preset, preset.cells(cfg), rows, study_seconds(out, t0))
    runs.write_json(out / "summary.json", summary)
    report.write_report(out, summary, rows)
    return summary


def preset_named(name: str) -> Preset:
    if name not in PRESETS:
        raise TaxodiffError(f"--preset {name!r} is invalid: allowed are {', '.join(PRESETS)}")
    return PRESETS[name]


def _run(cfg: RunConfig, preset: str, out: Path, progress: bool = True, seeds: int | None = None) -> dict:
    p = preset_named(preset)
    return run_study(cfg, replace(p, seeds=seeds or p.seeds), out, progress)


def _study() -> Any:
    from taxodiff.studies import Study

    return Study(
        name="mode-collapse",
        help="flat vs hierarchical across guidance, imbalance, data size, training budget, sampling steps",
        presets={
            "quick": "3 seeds, ~40 min on 2 CPU cores (--seeds 1: ~13 min)",
            "guiders": "every guidance rule for both families, 3 seeds, reference regime (~30 min on 2 CPU cores)",
            "full": "3 seeds, the config's budget: hours on a CPU",
        },
        default_out="runs/study-mode-collapse",
        run=_run,
        under=lambda preset: preset_named(preset).base,
        options=("seeds",),
    )


STUDY = _study()
