"""The families study's summary, table, figure and findings, made from its rows.

Rows of one group (regime, family, guidance scale) differ only by seed; every number is the mean over seeds
with its sd and the seeds' bootstrap intervals (taxodiff.studies.seeds). A family is said to keep the modes'
weights in a setting when no class is lost in any seed and the KL of every seed is within KL_MATCHED
(taxodiff.metrics.modes); a family given the weights (it draws each sample's class from the class tree) is not
credited with keeping them: its findings say so and read its class accuracy instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from taxodiff import config as config_mod
from taxodiff.config import RunConfig
from taxodiff.metrics.modes import KL_MATCHED, chance_in_seeds
from taxodiff.studies import seeds
from taxodiff.studies.seeds import shown

KEYS = ("cell", "model", "guidance")
GLANCE = (
    "Means over seeds, one value per guidance scale (a family without guidance has one); a class is lost in a "
    "seed when its share of the samples falls below {rel:g} of its share of the data (`eval.coverage_rel`); "
    "beside it, the chance that a sampler drawing the data's proportions exactly, asked for as many samples, "
    "loses a class in as many seeds or more: sampling noise alone. The tables below give every spread and "
    "interval."
)


def summarise(cfg: RunConfig, preset: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    from taxodiff.data import get_source
    from taxodiff.families import get_family
    from taxodiff.families.base import WEIGHTS

    source = get_source(cfg.data.source)(cfg)
    names = list(dict.fromkeys(r["model"] for r in rows))
    groups = seeds.group_rows(rows, KEYS)
    for g in groups:
        mine = [r for r in rows if all(r.get(k) == g[k] for k in KEYS)]
        g |= _costs(mine)
    return {
        "config": config_mod.to_dict(cfg),
        "data": source.describe(),
        "hierarchy_text": source.hierarchy.describe(),
        "seeds": list(range(cfg.seed, cfg.seed + preset.seeds)),
        "interval": seeds.interval_note(preset.seeds),
        "cells": [{"name": c.name, "description": c.description} for c in preset.cells()],
        "families": {
            n: {"summary": get_family(n).summary, "weights": get_family(n).roles.weights, "phases": _phases(rows, n)}
            for n in names
        },
        "weights": WEIGHTS,
        "groups": groups,
        "findings": findings(groups, names, {n: get_family(n).roles.weights for n in names}),
    }


def _costs(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Parameters, training seconds, sampling seconds per 1,000 images and network calls per image of a group."""
    evals = rows[0].get("evaluations_per_image") or {}
    nets = rows[0].get("networks") or {}
    return {
        "parameters": int(np.mean([r["parameters"] for r in rows])),
        "networks": ", ".join(f"{k} {v:,}" for k, v in nets.items()) if len(nets) > 1 else "",
        "train_seconds": seeds.mean_sd([r["train_seconds"] for r in rows], "{:.0f}"),
        "sample_seconds": seeds.mean_sd([r.get("sample_seconds_per_1000") for r in rows], "{:.0f}"),
        "evaluations": ", ".join(f"{k} {v:g}" for k, v in evals.items()),
    }


def _phases(rows: list[dict[str, Any]], name: str) -> str:
    """The family's training phases as steps x batch, from its first run's config: the diffusion network's
    budget and any phase of its own beside it."""
    from taxodiff.families import get_family

    run = next(r for r in rows if r["model"] == name)
    cfg = config_mod.read_yaml(Path(run["run_dir"]) / "config.yaml")
    fam = get_family(name)(config_mod.resolve(cfg))
    stages = fam.stages()
    batch = fam.cfg.train.batch_size
    if len(stages) == 1:
        return f"{stages[0].steps:,} x {stages[0].batch_size or batch}"
    last, before = stages[-1], stages[:-1]
    own = sum(s.steps for s in before)
    return (
        f"{last.steps:,} x {last.batch_size or batch}, after {len(before)} phases of its own ({own:,} steps x {batch})"
    )


# -- findings -----------------------------------------------------------------------------------------------
def kept(g: dict[str, Any]) -> bool:
    """No class lost in any seed and every seed's KL within KL_MATCHED (one seed: its bootstrap interval's lower
    bound)."""
    if any(lost for v in g["categories"].values() for lost in v["lost_in_seeds"]):
        return False
    return (g.get("kl_ci") or [g["kl"]])[1 if len(g["seeds"]) > 1 else 0] <= KL_MATCHED


def findings(groups: list[dict[str, Any]], names: list[str], weights: dict[str, str]) -> list[str]:
    out = []
    cells = list(dict.fromkeys(g["cell"] for g in groups))
    learners = [n for n in names if weights[n] != "given"]
    for cell in cells:
        for w in sorted({g["guidance"] or 0.0 for g in groups if g["cell"] == cell}):
            at = [g for g in groups if g["cell"] == cell and (g["guidance"] or 0.0) == w and g["model"] in learners]
            out.append(_setting_line(cell, w, at, groups))
    everywhere = [n for n in learners if all(kept(g) for g in groups if g["model"] == n)]
    if everywhere:
        out.append(f"Kept the modes' weights in every regime and setting, every seed: {', '.join(everywhere)}.")
    else:
        out.append("No family that learns the weights (or finds them without labels) kept them everywhere.")
    given = [n for n in names if weights[n] == "given"]
    if given:
        out.append(_given_line(given, groups))
    out.append(_pixels_line(groups, names))
    return out


def _setting_line(cell: str, w: float, at: list[dict[str, Any]], groups: list[dict[str, Any]]) -> str:
    ok = [g["model"] for g in at if kept(g)]
    not_ok = [f"{g['model']} ({status(g)})" for g in at if not kept(g)]
    text = f"{cell.capitalize()}, guidance {w:g} (families without guidance unguided): "
    text += f"kept the weights in every seed: {', '.join(ok) or 'none'}"
    return text + (f"; did not: {'; '.join(not_ok)}." if not_ok else ".")


def status(g: dict[str, Any]) -> str:
    """Why a group did not keep the weights, in a few words, with its KL."""
    k, n = _lost_count(g)
    what = f"a class lost in {k} of {n} seeds, {_chance(g, k, n)}" if k else f"mis-weighted beyond KL {KL_MATCHED}"
    return f"{what}, KL {shown(g, 'kl')}, off-category {shown(g, 'off_category')}"


def _given_line(given: list[str], groups: list[dict[str, Any]]) -> str:
    parts = []
    for n in given:
        mine = [g for g in groups if g["model"] == n]
        acc = seeds.mean_sd([g.get("class_accuracy") for g in mine], "{:.3f}")
        kl = seeds.mean_sd([g["kl"] for g in mine], "{:.4f}")
        parts.append(f"{n} (KL {kl} over its settings, class accuracy {acc})")
    return (
        "Given the weights (each sample's class drawn from the class tree, so the proportions cannot be "
        "mis-learned; what their KL measures is whether the images are the classes asked): " + "; ".join(parts) + "."
    )


def _pixels_line(groups: list[dict[str, Any]], names: list[str]) -> str:
    parts = []
    for n in names:
        mine = [g for g in groups if g["model"] == n and (g["guidance"] or 0.0) == 0 and g["cell"] == "reference"]
        if mine and "pixel_swd" in mine[0]:
            g = mine[0]
            parts.append(f"{n} {g['pixel_swd'] / g['pixel_swd_data']:.2f}x")
    return "Pixel SWD against the data's own, reference regime, unguided (lower is better): " + ", ".join(parts) + "."


# -- the report ---------------------------------------------------------------------------------------------
HEAD = [
    "family",
    "weights",
    "guidance",
    "coverage",
    "KL (nats)",
    "classes lost",
    "off-category",
    "class accuracy / fidelity",
    "pixel SWD (data)",
    "recall",
    "within-subtype Vendi",
    "parameters",
    "training (steps x batch)",
    "train s",
    "sample s / 1,000",
    "network calls / image",
]


def _lost_count(g: dict[str, Any]) -> tuple[int, int]:
    """The seeds of a group that lost a class, and its seeds."""
    n = len(g["seeds"])
    return sum(any(v["lost_in_seeds"][i] for v in g["categories"].values()) for i in range(n)), n


def _lost(g: dict[str, Any]) -> str:
    k, n = _lost_count(g)
    return f"{k} of {n}" + (f" ({_chance(g, k, n)})" if k else "")


def _chance(g: dict[str, Any], k: int, n: int) -> str:
    """How often an exact sampler would lose a class in at least k of n seeds, at these samples a category."""
    p = g.get("chance_lost")
    if p is None:
        return "chance not recorded"
    q = chance_in_seeds(p, k, n)
    return "chance < 0.01" if q < 0.005 else f"chance {q:.2f}"


def _row(g: dict[str, Any], fam: dict[str, Any]) -> list[str]:
    acc = shown(g, "fidelity") if "fidelity" in g else shown(g, "class_accuracy")
    return [
        g["model"],
        fam["weights"],
        "-" if g["guidance"] is None else f"{g['guidance']:g}",
        shown(g, "coverage", ".2f"),
        shown(g, "kl", ".4f"),
        _lost(g),
        shown(g, "off_category"),
        acc,
        f"{shown(g, 'pixel_swd', '.1f')} ({g['pixel_swd_data']:.1f})" if "pixel_swd" in g else "n/a",
        shown(g, "recall"),
        shown(g, "within_subtype_ratio"),
        f"{g['parameters']:,}" + (f" ({g['networks']})" if g["networks"] else ""),
        fam["phases"],
        g["train_seconds"],
        g["sample_seconds"],
        g["evaluations"],
    ]


def glance(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One row per family, every regime and guidance scale side by side: the mean KL at each scale ("-" where it
    was not run; a family without guidance has one value) with the seeds that lost a class, whether it kept the
    weights in every seed and setting ("given" for a family handed them), and, in the first regime unguided:
    pixel SWD against the data's, class accuracy or fidelity, training seconds."""
    groups, cells = summary["groups"], [c["name"] for c in summary["cells"]]
    scales = sorted({g["guidance"] for g in groups if g["guidance"] is not None})
    shown_scales = " / ".join(f"{w:g}" for w in scales) or "none"
    head = ["family", "weights"]
    head += [f"KL, {c} (guidance {shown_scales})" for c in cells]
    head += ["kept the weights everywhere", "pixel SWD / data's", "class accuracy / fidelity", "train s"]
    at = {(g["model"], g["cell"], g["guidance"]): g for g in groups}
    return head, [_glance_row(name, fam, cells, scales, at) for name, fam in summary["families"].items()]


def _glance_row(name: str, fam: dict[str, Any], cells: list[str], scales: list[float], at: dict) -> list[str]:
    mine = [g for key, g in at.items() if key[0] == name]
    guided = any(g["guidance"] is not None for g in mine)
    row = [name, fam["weights"]]
    for cell in cells:
        keys = [(name, cell, w) for w in scales] if guided else [(name, cell, None)]
        row.append(" / ".join(_kl_lost(at[k]) if k in at else "-" for k in keys))
    row.append("given" if fam["weights"] == "given" else ("yes" if all(kept(g) for g in mine) else "no"))
    first = at.get((name, cells[0], 0.0 if guided else None))
    if first is None:
        return row + ["n/a"] * 3
    ratio = f"{first['pixel_swd'] / first['pixel_swd_data']:.2f}x" if "pixel_swd" in first else "n/a"
    accuracy = first.get("fidelity", first.get("class_accuracy"))
    return row + [ratio, "n/a" if accuracy is None else f"{accuracy:.3f}", first["train_seconds"]]


def _kl_lost(g: dict[str, Any]) -> str:
    k, n = _lost_count(g)
    return f"{g['kl']:.4f}" + (f" (lost in {k} of {n}, {_chance(g, k, n)})" if k else "")


def table(summary: dict[str, Any], cell: str) -> tuple[list[str], list[list[str]]]:
    body = [_row(g, summary["families"][g["model"]]) for g in summary["groups"] if g["cell"] == cell]
    return HEAD, body


def figure(rows: list[dict[str, Any]], summary: dict[str, Any], path: Path) -> Path:
    """KL against pixel SWD, one point per family, guidance scale and seed, a panel per regime."""
    from taxodiff.report.figures import pyplot, save

    plt = pyplot()
    cells = [c["name"] for c in summary["cells"]]
    names = list(summary["families"])
    fig, axes = plt.subplots(1, len(cells), figsize=(5.5 * len(cells), 4.2), squeeze=False)
    for ax, cell in zip(axes[0], cells, strict=True):
        for i, name in enumerate(names):
            for r in (r for r in rows if r["cell"] == cell and r["model"] == name and "pixel_swd" in r):
                marker = "o" if not r.get("guidance") else "^"
                ax.scatter(r["pixel_swd"], r["kl"], color=f"C{i}", marker=marker, s=28, alpha=0.8)
        for i, name in enumerate(names):
            ax.scatter([], [], color=f"C{i}", label=name)
        ax.scatter([], [], color="0.4", marker="^", label="guided")
        ax.axhline(KL_MATCHED, color="0.5", lw=0.8, ls=":")
        ax.set(xlabel="pixel SWD (lower: closer to the data's pixels)", ylabel="KL(p_data || p_model), nats")
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_ylim(bottom=0)  # a KL is never negative
        ax.set_title(f"{cell}: one point per family, guidance and seed", fontsize=10)
        ax.legend(fontsize=7)
    return save(fig, path)


def report(summary: dict[str, Any], rows: list[dict[str, Any]], out: Path) -> list[tuple[str, Any]]:
    """The figure (under ``out/figures``) and the report's blocks."""
    figure(rows, summary, out / "figures" / "kl_vs_pixels.png")
    cfg = summary["config"]
    b: list[tuple[str, Any]] = [
        ("h1", "Every family on the same question: " + ", ".join(summary["families"])),
        ("p", _setup(summary)),
        ("h2", "Findings"),
        *[("p", f) for f in summary["findings"]],
        ("h2", "At a glance"),
        ("p", GLANCE.format(rel=cfg["eval"]["coverage_rel"])),
        ("table", glance(summary)),
    ]
    for c in summary["cells"]:
        b += [("h2", f"{c['name'].capitalize()}: {c['description']}"), ("table", table(summary, c["name"]))]
    b += [
        ("img", ("figures/kl_vs_pixels.png", "KL against pixel SWD")),
        ("h2", "What each family is given"),
        *[("p", f"{k}: {v}.") for k, v in summary["weights"].items()],
        ("h2", "Samples (first seed, reference regime, unguided)"),
    ]
    for r in rows:
        if r["cell"] == "reference" and r["seed"] == summary["seeds"][0] and not r.get("guidance"):
            grid = os.path.relpath(Path(r["run_dir"]) / "figures" / f"samples_{r['tag']}.png", out)
            b += [("h3", r["model"]), ("img", (grid, f"{r['model']} samples"))]
    return b + [("p", f"Every number is in `results.jsonl` and `summary.json`; sampler {cfg['sample']['sampler']}.")]


def _setup(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    models = "; ".join(f"{n}: {f['summary']}" for n, f in summary["families"].items())
    return (
        f"Data: {summary['data']}. Class tree: " + "; ".join(summary["hierarchy_text"].splitlines()) + ". "
        f"Seeds {summary['seeds']}: {summary['interval']}. Every family is matched to the baseline's parameter "
        "count, every diffusion network trains for the same steps of the same batch and samples with "
        f"{cfg['sample']['sampler']} in {cfg['sample']['steps']} steps. Families: {models}. Study time "
        f"{summary['seconds'] / 60:.1f} min (every call summed)."
    )
