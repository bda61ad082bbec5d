"""The mode-collapse study's summary, findings, figures and report, computed from its result rows.

Rows of one group (same cell, model, guidance rule, scales and sampling steps) differ only by seed.
A group's value is the mean over seeds, shown with the sd over seeds and the bootstrap interval over samples
(taxodiff.studies.seeds). Every sentence of the findings is chosen by comparing those numbers with stated
thresholds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taxodiff import config as config_mod
from taxodiff.config import RunConfig
from taxodiff.studies.mode_collapse_roles import Contender, Roles, families_of
from taxodiff.studies.seeds import find, group_rows, interval_note, verdict
from taxodiff.studies.seeds import shown as _ci

READING = (
    "Coverage: share of a category's subtypes generated at >= 0.25 x their data share. KL(p_data || "
    "p_model) with 0.5 added to every count. Off-category: samples the domain classifier puts in another "
    "category. Fidelity (where a prior draws z1): images classified as the z1 their prior sample was "
    "nearest to. Precision, recall (Kynkäänniemi 2019) and Fréchet distance on the domain classifier's "
    "features, against held-out ground truth. Within-subtype Vendi ratio: diversity inside each generated "
    "subtype relative to the data's (1 = as varied; well below 1 = collapse inside modes). Copies: "
    "share of samples whose nearest training image is 3x closer than the second nearest. Pixel SWD: "
    "sliced Wasserstein distance between local patches of a Laplacian pyramid of the samples and of "
    "held-out data (x 1e3, Karras et al. 2018), beside the training images' own value at the same count: "
    "it sees grain, noise, blur and colour errors that the classifier's features miss. Rules: cfg = "
    "classifier-free guidance, interval = guidance only at middle noise levels (Kynkäänniemi 2024), cads "
    "= condition-annealed sampling (Sadat 2024); apg, cfg-zero-star, tcfg, fdg and mambo are diffusers' guiders "
    "(taxodiff.processes.guiders says what each does and in which prediction it acts)."
)


def findings(
    groups: list[dict[str, Any]],
    cells: list[dict[str, str]],
    scales: list[float],
    cell_scale: float,
    default_steps: int,
    roles: Roles,
) -> list[str]:
    out = []
    for cell in cells:
        for w in scales if cell["name"] == "reference" else [0.0, cell_scale]:
            for c in roles.contenders:
                out += _compared(groups, cell, w, default_steps, roles.base, c)
    ref = [g for g in groups if g["cell"] == "reference" and g["steps"] == default_steps]
    for c in roles.contenders:
        out += _knob_findings(ref, c)
    out += _rule_findings(groups, roles.base, max(scales), default_steps)
    steps = sorted({g["steps"] for g in groups if g["cell"] == "reference" and g["steps"] != default_steps})
    for s in steps:
        for w in (0.0, cell_scale):
            for c in roles.contenders:
                out += _steps_finding(groups, s, w, roles.base, c)
    return out


def _compared(
    groups: list[dict[str, Any]], cell: dict[str, str], w: float, steps: int, base: str, c: Contender
) -> list[str]:
    """The baseline and one contender in one regime at one scale."""
    f = find(groups, cell=cell["name"], model=base, guidance_method="cfg", guidance=w, steps=steps)
    h = find(groups, cell=cell["name"], model=c.name, guidance_method="cfg", guidance=w, steps=steps, **c.unguided())
    if f is None or h is None:
        return []
    name = cell["name"].replace("_", " ").capitalize()
    unguided = f", {c.knob_label} unguided" if c.knob else ""
    return [
        f"{name} ({cell['description']}), guidance {w:g}: the {base} model {verdict(f)}. "
        f"The {c.name} model ({c.main_label} guidance {w:g}{unguided}) {verdict(h)}; "
        f"KL difference {c.name} - {base} {h['kl'] - f['kl']:+.3f} nats."
    ]


def _knob_findings(ref: list[dict[str, Any]], c: Contender) -> list[str]:
    """A contender guided through its other knob alone."""
    if not c.knob:
        return []
    out = []
    for g in sorted(ref, key=lambda g: g.get(c.knob) or 0):
        if g["model"] == c.name and g["guidance_method"] == "cfg" and g["guidance"] == 0 and (g.get(c.knob) or 0) > 0:
            out.append(
                f"Guiding the {c.name} model's {c.knob_label} instead ({c.knob_label} guidance {g[c.knob]:g}, "
                f"{c.main_label} 0): {verdict(g)}; the {c.knob_label}'s own samples have KL {_ci(g, 'prior_kl')}."
            )
    return out


def _rule_findings(groups: list[dict[str, Any]], base: str, top: float, steps: int) -> list[str]:
    parts = []
    for method in ("cfg", "interval", "cads"):
        g = find(groups, cell="reference", model=base, guidance_method=method, guidance=top, steps=steps)
        if g is not None:
            parts.append(f"{method} KL {_ci(g, 'kl')}, recall {_ci(g, 'recall')}")
    return (
        [f"The {base} model at guidance {top:g} by guidance rule: " + "; ".join(parts) + "."] if len(parts) > 1 else []
    )


def _steps_finding(groups: list[dict[str, Any]], s: int, w: float, base: str, c: Contender) -> list[str]:
    f = find(groups, cell="reference", model=base, guidance_method="cfg", guidance=w, steps=s)
    h = find(groups, cell="reference", model=c.name, guidance_method="cfg", guidance=w, steps=s, **c.unguided())
    if not (f and h):
        return []
    return [
        f"{s} sampling steps, guidance {w:g}: {base} KL {_ci(f, 'kl')}, off-category {f['off_category']:.3f}; "
        f"{c.name} KL {_ci(h, 'kl')}, off-category {h['off_category']:.3f}."
    ]


def summarise(cfg: RunConfig, preset: Any, cells: list[Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    from taxodiff.data import get_source

    source = get_source(cfg.data.source)(cfg)
    families = families_of(source.kind)
    roles = Roles.of({"families": families})
    groups = group_rows(rows, roles.keys())
    cell_info = [{"name": c.name, "description": c.description} for c in cells]
    return {
        "short_report": False,
        "seeds": list(range(cfg.seed, cfg.seed + preset.seeds)),
        "interval": interval_note(preset.seeds),
        "config": config_mod.to_dict(cfg),
        "families": families,
        "data": source.describe(),
        "hierarchy_text": source.hierarchy.describe(),
        "cells": cell_info,
        "scales": list(preset.scales),
        "cell_scale": preset.cell_scale,
        "classifier_accuracy": rows[0].get("classifier_accuracy"),
        "groups": groups,
        "findings": findings(groups, cell_info, list(preset.scales), preset.cell_scale, cfg.sample.steps, roles),
    }


# -- report -------------------------------------------------------------------------------------------------
def _table(summary: dict[str, Any], groups: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = [
        "regime",
        "model",
        "rule",
        "guidance",
        "other guidance",
        "steps",
        "coverage",
        "KL (nats)",
        "entropy",
        "off-category",
        "fidelity",
        "precision",
        "recall",
        "within-subtype Vendi ratio",
        "Fréchet",
        "copies",
        "pixel SWD (data)",
    ]
    body = []
    for g in groups:
        body.append(
            [
                g["cell"].replace("_", " "),
                g["model"],
                g["guidance_method"],
                f"{g['guidance']:g}",
                _other_guidance(Roles.of(summary), g),
                str(g["steps"]),
                _ci(g, "coverage", ".2f"),
                _ci(g, "kl", ".4f"),
                _ci(g, "entropy"),
                _ci(g, "off_category"),
                _ci(g, "fidelity"),
                f"{g['precision']:.3f}" if "precision" in g else "n/a",
                f"{g['recall']:.3f}" if "recall" in g else "n/a",
                f"{g['within_subtype_ratio']:.3f}" if g.get("within_subtype_ratio") is not None else "n/a",
                f"{g['frechet']:.2f}" if "frechet" in g else "n/a",
                f"{g['memorisation']:.3f}" if "memorisation" in g else "n/a",
                f"{g['pixel_swd']:.1f} ({g['pixel_swd_data']:.1f})" if "pixel_swd" in g else "n/a",
            ]
        )
    return head, body


def _other_guidance(roles: Roles, g: dict[str, Any]) -> str:
    c = roles.contender(g["model"])
    return f"{c.knob_label} {g[c.knob]:g}" if c and c.knob and g.get(c.knob) is not None else ""


def _setup(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    models = "; ".join(f"{n}: {t}" for n, t in summary["families"]["summaries"].items())
    return (
        f"Preset `{summary['preset']}`, seeds {summary['seeds']}; intervals: {summary['interval']}. "
        f"Hierarchy: " + "; ".join(summary["hierarchy_text"].splitlines()) + ". "
        f"Reference training: {cfg['train']['steps']} steps of batch {cfg['train']['batch_size']} on "
        f"{summary['data']}; every model gets the same image network, data and steps in every regime. Models: "
        f"{models}. Sampling: {cfg['sample']['sampler']}, {cfg['sample']['steps']} steps, "
        f"{cfg['sample']['n_per_category']} samples per category. Study time {summary['seconds']:.0f} s (every "
        "call summed)."
    )


def blocks(summary: dict[str, Any], out: Path) -> list[tuple[str, Any]]:
    cfg = summary["config"]
    roles = Roles.of(summary)
    steps = cfg["sample"]["steps"]
    groups = summary["groups"]
    main = [
        g
        for g in groups
        if g["guidance_method"] == "cfg"
        and g["steps"] == steps
        and g["guidance"] in (0.0, summary["cell_scale"])
        and all((g.get(k) or 0) == 0 for k in roles.knobs())
    ]
    from taxodiff.studies import mode_collapse_guiders as guiders

    rules = guiders.blocks(summary)
    ref = [
        g for g in groups if g["cell"] == "reference" and g not in main and (not rules or g["guidance_method"] == "cfg")
    ]
    b: list[tuple[str, Any]] = [
        ("h1", f"taxodiff study: mode collapse, {roles.base} vs {', '.join(c.name for c in roles.contenders)}"),
        ("p", _setup(summary)),
        ("h2", "Regimes at guidance 0 and " + f"{summary['cell_scale']:g}"),
        ("table", _table(summary, main)),
        ("img", ("figures/regimes.png", "KL by training regime")),
        ("h2", "Findings"),
        *[("p", f) for f in summary["findings"]],
        ("h2", "Guidance (reference regime)"),
        ("img", ("figures/guidance_curves.png", "KL, coverage and entropy against guidance")),
        ("img", ("figures/precision_recall.png", "precision against recall")),
        ("img", ("figures/proportions.png", "subtype shares, data and models")),
        ("table", _table(summary, ref)),
        *rules,
        ("h2", "How to read this"),
        ("p", READING),
        ("h2", "Samples (seed " + str(summary["seeds"][0]) + ", reference regime)"),
    ]
    top = max(summary["scales"])
    for label, want in _picks(roles, top, with_cads=True):
        g = find(groups, cell="reference", steps=steps, **want)
        if g is None:
            continue
        grid = Path(g["run_dirs"][0]) / "figures" / f"samples_{g['tag']}.png"
        b.append(("h3", label))
        b.append(("img", (os.path.relpath(grid, out), label)))
    b.append(
        (
            "p",
            "Every number above is in `results.jsonl` (one row per run and setting, with its run directory) "
            "and `summary.json`.",
        )
    )
    return b


def _picks(roles: Roles, top: float, with_cads: bool) -> list[tuple[str, dict[str, Any]]]:
    """(label, find() arguments) of the sample grids shown: each model unguided and at the top scale."""
    base = {"model": roles.base, "guidance_method": "cfg"}
    out = [(f"{roles.base}, cfg guidance 0", {**base, "guidance": 0.0})]
    out.append((f"{roles.base}, cfg guidance {top:g}", {**base, "guidance": top}))
    if with_cads:
        out.append((f"{roles.base}, cads guidance {top:g}", {**base, "guidance_method": "cads", "guidance": top}))
    for c in roles.contenders:
        mine = {"model": c.name, "guidance_method": "cfg"}
        out.append((f"{c.name}, guidance 0", {**mine, "guidance": 0.0, **c.unguided()}))
        if c.knob:
            out.append((f"{c.name}, {c.knob_label} guidance {top:g}", {**mine, "guidance": 0.0, c.knob: top}))
        out.append((f"{c.name}, {c.main_label} guidance {top:g}", {**mine, "guidance": top, **c.unguided()}))
    return out


def report(summary: dict[str, Any], out: Path) -> list[tuple[str, Any]]:
    """The figures (written under ``out/figures``) and the blocks of the report."""
    from taxodiff.report import figures
    from taxodiff.studies.mode_collapse_figures import guidance_curves, precision_recall, regimes_chart

    out = Path(out)
    guidance_curves(summary, out / "figures" / "guidance_curves.png")
    precision_recall(summary, out / "figures" / "precision_recall.png")
    regimes_chart(summary, out / "figures" / "regimes.png")
    from taxodiff.studies import mode_collapse_guiders as guiders

    if any(len(p) > 1 for p in guiders.series(summary).values()):
        guiders.figure(summary, out / "figures" / "guiders.png")
    steps = summary["config"]["sample"]["steps"]
    top = max(summary["scales"])
    picks = {
        label: find(summary["groups"], cell="reference", steps=steps, **want)
        for label, want in _picks(Roles.of(summary), top, with_cads=False)
        if want["guidance"] == 0 or want["model"] == Roles.of(summary).base
    }
    picks = {k: v for k, v in picks.items() if v is not None}
    first = next(iter(picks.values()))
    cats = {c: {"subtypes": v["subtypes"], "p_data": v["p_data"]} for c, v in first["categories"].items()}
    series = {k: {c: v["proportions"] for c, v in g["categories"].items()} for k, g in picks.items()}
    figures.proportions_chart(cats, series, out / "figures" / "proportions.png")
    return blocks(summary, out)
