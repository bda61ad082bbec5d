"""The mode-collapse study's summary, findings, figures and report, computed from its result rows.

Rows of one group (same cell, model, guidance rule, scales and sampling steps) differ only by seed.
A group's value is the mean over seeds; its interval is the 95% bootstrap interval when there is one
seed and the [min, max] over seeds when there are several (said in the report). Every sentence of the
findings is chosen by comparing those numbers with stated thresholds.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from taxodiff import config as config_mod
from taxodiff.config import RunConfig
from taxodiff.report import KL_OK, write_pages

METRICS = (
    "kl",
    "coverage",
    "entropy",
    "tv",
    "off_category",
    "fidelity",
    "prior_kl",
    "precision",
    "recall",
    "density",
    "prdc_coverage",
    "frechet",
    "vendi",
    "within_subtype_ratio",
    "memorisation",
)
KEY = ("cell", "model", "method", "guidance", "prior_guidance", "steps")
STYLES = {  # series -> (colour, line style), the same in every figure
    "flat, cfg": ("C0", "-"),
    "flat, interval": ("C2", "-"),
    "flat, cads": ("C4", "-"),
    "hierarchical, decoder guided": ("C1", "--"),
    "hierarchical, prior guided": ("C3", "--"),
}


def group_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate seeds: mean and interval per metric, mean subtype proportions, the seeds' run dirs."""
    by: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[tuple(r[k] for k in KEY)].append(r)
    out = []
    for key, rs in by.items():
        g: dict[str, Any] = dict(zip(KEY, key, strict=True))
        g["seeds"] = [r["seed"] for r in rs]
        g["run_dirs"] = [r["run_dir"] for r in rs]
        g["tag"] = rs[0]["tag"]
        g["entropy_data"] = rs[0]["entropy_data"]
        for m in METRICS:
            vals = [r[m] for r in rs if r.get(m) is not None]
            if not vals:
                continue
            g[m] = float(np.mean(vals))
            if len(rs) == 1:
                g[f"{m}_ci"] = rs[0].get(f"{m}_ci")
            else:
                g[f"{m}_ci"] = [float(min(vals)), float(max(vals))]
        g["categories"] = {
            c: {
                "subtypes": v["subtypes"],
                "p_data": v["p_data"],
                "proportions": np.mean([r["categories"][c]["proportions"] for r in rs], axis=0).tolist(),
                "lost_in_seeds": [
                    [
                        s
                        for s, q, p in zip(v["subtypes"], r["categories"][c]["proportions"], v["p_data"], strict=True)
                        if q < r["coverage_rel"] * p
                    ]
                    for r in rs
                ],
            }
            for c, v in rs[0]["categories"].items()
        }
        out.append(g)
    return out


def find(groups: list[dict[str, Any]], **want: Any) -> dict[str, Any] | None:
    for g in groups:
        if all(g[k] == v for k, v in want.items()):
            return g
    return None


def _ci(g: dict[str, Any], m: str, fmt: str = ".3f") -> str:
    if m not in g:
        return "n/a"
    ci = g.get(f"{m}_ci")
    return f"{g[m]:{fmt}}" + (f" [{ci[0]:{fmt}}, {ci[1]:{fmt}}]" if ci else "")


def verdict(g: dict[str, Any]) -> str:
    """Lost modes / mis-weighted / matched, from the group's numbers."""
    lost: dict[str, set[str]] = {}
    for c, v in g["categories"].items():
        for seed_lost in v["lost_in_seeds"]:
            if seed_lost:
                lost.setdefault(c, set()).update(seed_lost)
    n = len(g["seeds"])
    if lost:
        seeds_with = sum(any(v["lost_in_seeds"][i] for v in g["categories"].values()) for i in range(n))
        what = "; ".join(f"{', '.join(sorted(s))} in {c}" for c, s in lost.items())
        return f"lost modes ({what}; in {seeds_with} of {n} seed{'s' * (n > 1)}), KL {_ci(g, 'kl')}" + _quality(g)
    lo = (g.get("kl_ci") or [g["kl"]])[0]
    if lo > KL_OK:
        text = f"kept every mode but mis-weighted them: KL {_ci(g, 'kl')} (interval above {KL_OK})"
    elif g["kl"] > KL_OK:
        text = f"kept every mode; KL {_ci(g, 'kl')} is above {KL_OK} but its interval does not exclude the data's"
    else:
        text = f"kept every mode with proportions consistent with the data: KL {_ci(g, 'kl')}"
    return text + _quality(g)


def _quality(g: dict[str, Any]) -> str:
    """Off-category rate and (hierarchical) fidelity when they show failed images, not modes."""
    bad = []
    if g.get("off_category", 0) > 0.02:
        bad.append(f"off-category {_ci(g, 'off_category')}")
    if g.get("fidelity", 1) < 0.95:
        bad.append(f"fidelity {_ci(g, 'fidelity')}")
    return f"; images failed: {', '.join(bad)}" if bad else ""


def findings(
    groups: list[dict[str, Any]],
    cells: list[dict[str, str]],
    scales: list[float],
    cell_scale: float,
    default_steps: int,
) -> list[str]:
    out = []
    for cell in cells:
        ws = scales if cell["name"] == "reference" else [0.0, cell_scale]
        for w in ws:
            f = find(groups, cell=cell["name"], model="flat", method="cfg", guidance=w, steps=default_steps)
            h = find(
                groups,
                cell=cell["name"],
                model="hierarchical",
                method="cfg",
                guidance=w,
                prior_guidance=0.0,
                steps=default_steps,
            )
            if f is None or h is None:
                continue
            diff = h["kl"] - f["kl"]
            name = cell["name"].replace("_", " ").capitalize()
            out.append(
                f"{name} ({cell['description']}), guidance {w:g}: the flat model {verdict(f)}. "
                f"The hierarchical model (decoder guidance {w:g}, prior unguided) {verdict(h)}; "
                f"KL difference hierarchical - flat {diff:+.3f} nats."
            )
    ref = [g for g in groups if g["cell"] == "reference" and g["steps"] == default_steps]
    for g in sorted(ref, key=lambda g: g["prior_guidance"] or 0):
        if g["model"] == "hierarchical" and g["guidance"] == 0 and (g["prior_guidance"] or 0) > 0:
            out.append(
                f"Guiding the hierarchical prior instead (prior guidance {g['prior_guidance']:g}, decoder 0): "
                f"{verdict(g)}; the prior's own z1 samples have KL {_ci(g, 'prior_kl')}."
            )
    top = max(scales)
    parts = []
    for method in ("cfg", "interval", "cads"):
        g = find(groups, cell="reference", model="flat", method=method, guidance=top, steps=default_steps)
        if g is not None:
            parts.append(f"{method} KL {_ci(g, 'kl')}, recall {_ci(g, 'recall')}")
    if len(parts) > 1:
        out.append(f"Flat model at guidance {top:g} by guidance rule: " + "; ".join(parts) + ".")
    steps = sorted({g["steps"] for g in ref if g["steps"] != default_steps})
    for s in steps:
        for w in (0.0, cell_scale):
            f = find(groups, cell="reference", model="flat", method="cfg", guidance=w, steps=s)
            h = find(
                groups, cell="reference", model="hierarchical", method="cfg", guidance=w, prior_guidance=0.0, steps=s
            )
            if f and h:
                out.append(
                    f"{s} sampling steps, guidance {w:g}: flat KL {_ci(f, 'kl')}, "
                    f"off-category {f['off_category']:.3f}; "
                    f"hierarchical KL {_ci(h, 'kl')}, off-category {h['off_category']:.3f}."
                )
    return out


def summarise(
    cfg: RunConfig, preset: Any, cells: list[Any], rows: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    groups = group_rows(rows)
    cell_info = [{"name": c.name, "description": c.description} for c in cells]
    return {
        "preset": preset.name,
        "seeds": list(range(cfg.seed, cfg.seed + preset.seeds)),
        "interval": "bootstrap 95%" if preset.seeds == 1 else f"min-max over {preset.seeds} seeds",
        "config": config_mod.to_dict(cfg),
        "hierarchy_text": cfg.build_hierarchy().describe(),
        "cells": cell_info,
        "scales": list(preset.scales),
        "cell_scale": preset.cell_scale,
        "classifier_accuracy": rows[0].get("classifier_accuracy"),
        "groups": groups,
        "findings": findings(groups, cell_info, list(preset.scales), preset.cell_scale, cfg.sample.steps),
        "seconds": seconds,
    }


# -- figures ------------------------------------------------------------------------------------------------
def _series(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    steps = summary["config"]["sample"]["steps"]
    ref = [g for g in summary["groups"] if g["cell"] == "reference" and g["steps"] == steps]
    out: dict[str, list[dict[str, Any]]] = {}
    for g in ref:
        if g["model"] == "flat":
            label = f"flat, {g['method']}"
            x = g["guidance"]
        elif g["prior_guidance"] == 0:
            label, x = "hierarchical, decoder guided", g["guidance"]
        else:
            label, x = "hierarchical, prior guided", g["prior_guidance"]
        if g["model"] == "hierarchical" and g["guidance"] == 0 and g["prior_guidance"] == 0:
            out.setdefault("hierarchical, prior guided", []).append({**g, "x": 0.0})
        if g["model"] == "flat" and g["guidance"] == 0 and g["method"] == "cfg":  # no guidance: interval = cfg
            out.setdefault("flat, interval", []).append({**g, "x": 0.0})
        out.setdefault(label, []).append({**g, "x": x})
    return {k: sorted(out[k], key=lambda g: g["x"]) for k in STYLES if len(out.get(k, [])) > 1}


def guidance_curves(summary: dict[str, Any], path: Path) -> Path:
    from taxodiff.figures import _plt, _save

    plt = _plt()
    series = _series(summary)
    panels = [("kl", "KL(p_data || p_model), nats"), ("coverage", "mode coverage"), ("entropy", "H(z1_hat | z2), nats")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (m, label) in zip(axes, panels, strict=True):
        for name, gs in series.items():
            x = [g["x"] for g in gs]
            y = [g[m] for g in gs]
            colour, ls = STYLES[name]
            ax.plot(x, y, ls, color=colour, marker="o", label=name)
            ci = [g.get(f"{m}_ci") for g in gs]
            if all(c is not None for c in ci):
                ax.fill_between(x, [c[0] for c in ci], [c[1] for c in ci], color=colour, alpha=0.12)
        if m == "entropy":
            ax.axhline(summary["groups"][0]["entropy_data"], color="0.5", lw=0.8, ls=":", label="data")
        if m == "coverage":
            ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("guidance scale")
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Reference cell: metrics against guidance ({summary['interval']} bands)", fontsize=11)
    return _save(fig, path)


def precision_recall(summary: dict[str, Any], path: Path) -> Path:
    from taxodiff.figures import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    for name, gs in _series(summary).items():
        pts = [(g["recall"], g["precision"], g["x"]) for g in gs if "recall" in g]
        if not pts:
            continue
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            "--" if "hierarchical" in name else "-",
            marker="o",
            label=name,
            alpha=0.85,
        )
        for r, p, w in pts:
            ax.annotate(f"{w:g}", (r, p), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("recall (share of real images inside the generated manifold)")
    ax.set_ylabel("precision")
    ax.set_xlim(right=1.01)
    ax.set_ylim(top=1.01)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("Precision and recall against guidance (labels: scale)", fontsize=10)
    return _save(fig, path)


def regimes_chart(summary: dict[str, Any], path: Path) -> Path:
    from taxodiff.figures import _plt, _save

    plt = _plt()
    steps = summary["config"]["sample"]["steps"]
    cells = [c["name"] for c in summary["cells"]]
    w = summary["cell_scale"]
    bars = [
        ("flat", 0.0, "#9ecae1"),
        ("flat", w, "#3182bd"),
        ("hierarchical", 0.0, "#fdae6b"),
        ("hierarchical", w, "#e6550d"),
    ]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(bars)
    for i, (model, w, colour) in enumerate(bars):
        vals, lo, hi = [], [], []
        for c in cells:
            g = find(
                summary["groups"],
                cell=c,
                model=model,
                method="cfg",
                guidance=w,
                steps=steps,
                prior_guidance=0.0 if model == "hierarchical" else None,
            )
            v = g["kl"] if g else np.nan
            ci = (g or {}).get("kl_ci") or [v, v]
            vals.append(v)
            lo.append(max(0.0, v - ci[0]))
            hi.append(max(0.0, ci[1] - v))
        x = np.arange(len(cells)) + (i - (len(bars) - 1) / 2) * width
        ax.bar(
            x,
            vals,
            width,
            yerr=[lo, hi],
            capsize=2,
            label=f"{model}, guidance {w:g}",
            color=colour,
        )
    ax.axhline(KL_OK, color="0.4", lw=0.8, ls=":")
    ax.set_xticks(np.arange(len(cells)), [c.replace("_", " ") for c in cells])
    ax.set_ylabel("KL(p_data || p_model), nats")
    ax.legend(fontsize=7)
    ax.set_title(f"Proportions by training regime (dotted: {KL_OK} nats)", fontsize=10)
    return _save(fig, path)


# -- report -------------------------------------------------------------------------------------------------
def _table(summary: dict[str, Any], groups: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = [
        "regime",
        "model",
        "rule",
        "guidance",
        "prior g.",
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
    ]
    body = []
    for g in groups:
        body.append(
            [
                g["cell"].replace("_", " "),
                g["model"],
                g["method"],
                f"{g['guidance']:g}",
                "" if g["prior_guidance"] is None else f"{g['prior_guidance']:g}",
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
            ]
        )
    return head, body


def blocks(summary: dict[str, Any], out: Path) -> list[tuple[str, Any]]:
    cfg = summary["config"]
    steps = cfg["sample"]["steps"]
    groups = summary["groups"]
    main = [
        g
        for g in groups
        if g["method"] == "cfg"
        and g["steps"] == steps
        and g["guidance"] in (0.0, summary["cell_scale"])
        and (g["prior_guidance"] or 0) == 0
    ]
    ref = [g for g in groups if g["cell"] == "reference" and g not in main]
    b: list[tuple[str, Any]] = [
        ("h1", "taxodiff study: mode collapse, flat vs hierarchical conditional diffusion"),
        (
            "p",
            f"Preset `{summary['preset']}`, seeds {summary['seeds']}; intervals: {summary['interval']}. "
            f"Hierarchy: " + "; ".join(summary["hierarchy_text"].splitlines()) + ". "
            f"Reference training: {cfg['train']['steps']} steps of batch {cfg['train']['batch_size']} on "
            f"{cfg['data']['n_train']:,} images of {cfg['data']['size']}x{cfg['data']['size']}; both models get the "
            f"same decoder network, data and steps in every regime. Sampling: {cfg['sample']['sampler']}, {steps} "
            f"steps, {cfg['sample']['n_per_category']} samples per category. Study time {summary['seconds']:.0f} s.",
        ),
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
        ("h2", "How to read this"),
        (
            "p",
            "Coverage: share of a category's subtypes generated at >= 0.25 x their data share. KL(p_data || "
            "p_model) with 0.5 added to every count. Off-category: samples the domain classifier puts in another "
            "category. Fidelity (hierarchical): images classified as the z1 their prior sample was nearest to. "
            "Precision, recall (Kynkäänniemi 2019) and Fréchet distance on the domain classifier's features, "
            "against fresh ground-truth renders. Within-subtype Vendi ratio: diversity inside each generated "
            "subtype relative to the data's (1 = as varied; well below 1 = collapse inside modes). Copies: "
            "share of samples whose nearest training image is 3x closer than the second nearest. Rules: cfg = "
            "classifier-free guidance, interval = guidance only at middle noise levels (Kynkäänniemi 2024), cads "
            "= condition-annealed sampling (Sadat 2024).",
        ),
        ("h2", "Samples (seed " + str(summary["seeds"][0]) + ", reference regime)"),
    ]
    top = max(summary["scales"])
    for model, w, pg, method in (
        ("flat", 0.0, None, "cfg"),
        ("flat", top, None, "cfg"),
        ("flat", top, None, "cads"),
        ("hierarchical", 0.0, 0.0, "cfg"),
        ("hierarchical", 0.0, top, "cfg"),
        ("hierarchical", top, 0.0, "cfg"),
    ):
        g = find(groups, cell="reference", model=model, method=method, guidance=w, prior_guidance=pg, steps=steps)
        if g is None:
            continue
        grid = Path(g["run_dirs"][0]) / "figures" / f"samples_{g['tag']}.png"
        label = f"{model}, {method} guidance {w:g}" + (f", prior guidance {pg:g}" if pg is not None else "")
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


def write_report(out: Path, summary: dict[str, Any], rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    from taxodiff import figures

    out = Path(out)
    guidance_curves(summary, out / "figures" / "guidance_curves.png")
    precision_recall(summary, out / "figures" / "precision_recall.png")
    regimes_chart(summary, out / "figures" / "regimes.png")
    steps = summary["config"]["sample"]["steps"]
    top = max(summary["scales"])
    picks = {
        "flat g=0": find(summary["groups"], cell="reference", model="flat", method="cfg", guidance=0.0, steps=steps),
        f"flat g={top:g}": find(
            summary["groups"], cell="reference", model="flat", method="cfg", guidance=top, steps=steps
        ),
        "hierarchical g=0": find(
            summary["groups"],
            cell="reference",
            model="hierarchical",
            method="cfg",
            guidance=0.0,
            prior_guidance=0.0,
            steps=steps,
        ),
        f"hierarchical prior g={top:g}": find(
            summary["groups"],
            cell="reference",
            model="hierarchical",
            method="cfg",
            guidance=0.0,
            prior_guidance=top,
            steps=steps,
        ),
    }
    picks = {k: v for k, v in picks.items() if v is not None}
    first = next(iter(picks.values()))
    cats = {c: {"subtypes": v["subtypes"], "p_data": v["p_data"]} for c, v in first["categories"].items()}
    series = {k: {c: v["proportions"] for c, v in g["categories"].items()} for k, g in picks.items()}
    figures.proportions_chart(cats, series, out / "figures" / "proportions.png")
    return write_pages(out, blocks(summary, out), "taxodiff mode-collapse study")
