"""The families study: every image family that answers the coarse request ("an animal"), side by side on one
data set, one class tree, one held-out reference and one domain classifier, on equal terms, over seeds.

- Families: every registered image family whose roles say it answers ``sample.request: categories`` (a new
  family joins by declaring it), the baseline first; ``--families`` names a subset.
- Equal terms: every family's parameters are matched to the baseline's at the config's widths
  (``net.match_parameters``: its image network's widths scaled, its other networks counted; a family whose other
  networks grow in phases of their own matches its diffusion network alone, and those phases are stated beside
  it); every diffusion network trains for the same optimizer steps of the same batch and samples with the same
  sampler and steps. Everything else is each family's own default where the config chose nothing
  (:func:`taxodiff.config.changed`), plus the preset's values for the families that have the key.
- Settings: guidance 0 and the preset's higher scale for every family that takes guidance; two regimes, the
  class tree as given and the imbalanced one (the first class of each category at 0.9).
- What each family is given (learned weights, given weights, no labels) is a column, and the findings read it.

Runs live in ``<out>/<regime>/seed<k>/<family>``; the report (:mod:`taxodiff.studies.families_report`) is
written from the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from taxodiff import config as config_mod
from taxodiff.config import RunConfig
from taxodiff.errors import TaxodiffError
from taxodiff.studies.jobs import Context, Job
from taxodiff.studies.regimes import Cell, cell_config
from taxodiff.studies.study import Preset, Study

BUDGET = ("steps", "batch_size", "lr")  # the diffusion network's trainer keys every family gets equal
SAMPLING = ("sampler", "steps", "n_per_category", "batch_size")  # the sampling keys every family gets equal


@dataclass(frozen=True)
class FamiliesPreset(Preset):
    scales: tuple[float, ...] = (0.0, 3.0)  # guidance scales of the families that take guidance
    imbalance: float = 0.9  # the imbalanced regime: the first class of each category at this share
    families: tuple[str, ...] = ()  # () : every registered family that answers the coarse request
    each: Mapping[str, Any] = field(default_factory=dict)  # dotted values for the families that have the key

    def cells(self) -> list[Cell]:
        return [
            Cell("reference", "the class tree as given"),
            Cell("imbalanced", f"first class of each category at {self.imbalance:g}", imbalance=self.imbalance),
        ]


# the second stage's conditioning augmentation, measured better on digits and MNIST (README: TreeVAE)
EACH = {"net.guide_noise": 0.3}
PRESETS = {
    "quick": FamiliesPreset(
        "quick",
        "3 seeds, both regimes, the default images at 16x16 (or the config's own), 128 samples per category",
        seeds=3,
        base={"data.size": 16, "train.steps": 800, "sample.n_per_category": 128, "net.patch": 2},
        each=EACH,
    ),
    "full": FamiliesPreset("full", "3 seeds, both regimes, the config's resolution and budget", seeds=3, each=EACH),
}


def families(kind: str, named: tuple[str, ...] = ()) -> list[Any]:
    """The families the study takes on data of ``kind``, the baseline first; ``named`` must all answer the coarse
    request (refused in one line naming those that do)."""
    from taxodiff.families import families_for

    takers = sorted((f for f in families_for(kind) if f.roles.coarse), key=lambda f: not f.roles.baseline)
    names = [f.name for f in takers]
    wrong = [n for n in named if n not in names]
    if wrong:
        raise TaxodiffError(
            f"--families {','.join(wrong)} is invalid: allowed are families that answer the coarse request "
            f"({', '.join(names)})"
        )
    chosen = [f for f in takers if not named or f.name in named]
    if len(chosen) < 2:
        raise TaxodiffError(f"--families {','.join(named)} is invalid: allowed are two or more of {', '.join(names)}")
    return chosen


def family_config(cfg: RunConfig, family: Any, preset: FamiliesPreset, target: int) -> RunConfig:
    """``cfg`` (a regime's, at a seed) for ``family``: its own defaults where the config chose nothing, the
    diffusion budget and sampling of ``cfg`` under the family's own keys, parameters matched to ``target``."""
    raw = config_mod.changed(cfg) | {"model": family.name}
    train = {k: v for k, v in raw.get("train", {}).items() if k not in BUDGET}
    train |= {family.roles.budget.get(k, k): getattr(cfg.train, k) for k in BUDGET}
    own = {f.name for f in fields(family.sections["sample"])}
    sample = raw.get("sample", {}) | {k: getattr(cfg.sample, k) for k in SAMPLING if k in own}
    raw |= {"train": train, "sample": sample, "net": {**raw.get("net", {}), "match_parameters": target}}
    out = config_mod.resolve(raw)
    known = config_mod.flatten(out)
    extra = {k: v for k, v in preset.each.items() if k in known}
    return config_mod.with_overrides(out, extra) if extra else out


def parameters(cfg: RunConfig) -> int:
    """The parameter count of ``cfg``'s family at its config's widths (networks built, not trained)."""
    from taxodiff import api
    from taxodiff.families import get_family

    module = api.build(get_family(cfg.model)(cfg))
    return sum(p.numel() for p in module.parameters())


def jobs(cfg: RunConfig, preset: FamiliesPreset, ctx: Context | None = None) -> list[Job]:
    """Every (regime, seed, family) run, evaluated unguided and, where the family takes guidance, at the
    preset's higher scales."""
    from taxodiff.data import get_source

    fams = families(get_source(cfg.data.source).kind, preset.families)
    target = parameters(family_config(cfg, fams[0], preset, 0))
    out = []
    for cell in preset.cells():
        for seed in range(cfg.seed, cfg.seed + preset.seeds):
            cell_cfg = cell_config(cfg, cell, seed)
            for fam in fams:
                settings = tuple({"guidance": w} for w in preset.scales) if "guidance" in fam.roles.guidance else ()
                out.append(Job(cell.name, seed, family_config(cell_cfg, fam, preset, target), settings or ({},)))
    return out


def summarise(cfg: RunConfig, preset: FamiliesPreset, rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    from taxodiff.studies import families_report

    return families_report.summarise(cfg, preset, rows)


def report(summary: dict[str, Any], rows: list[dict[str, Any]], out: Path) -> list[Any]:
    from taxodiff.studies import families_report

    return families_report.report(summary, rows, out)


STUDY = Study(
    name="families",
    help="every family that answers a coarse request, side by side on equal terms: modes, image quality, cost",
    title="taxodiff families study",
    kinds=("images",),
    presets=PRESETS,
    default_out="runs/study-families",
    jobs=jobs,
    summarise=summarise,
    report=report,
    workers=2,  # two runs at once: digits 73.9 -> 44.1 min on 2 cores (BENCHMARKS.md, "Training runs at once")
)
