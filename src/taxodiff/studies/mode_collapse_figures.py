"""The mode-collapse study's figures: metrics against guidance per rule, precision against recall, KL by
training regime. Series names come from the roles the summary records (the registry's families)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from taxodiff.metrics.modes import KL_MATCHED as KL_OK
from taxodiff.studies.mode_collapse_roles import Roles
from taxodiff.studies.seeds import band, band_note, find


def _series(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """{series label: groups along its guidance scale, each with the scale as "x"}: the baseline by rule, every
    contender by the scale it is guided through."""
    roles = Roles.of(summary)
    steps = summary["config"]["sample"]["steps"]
    ref = [g for g in summary["groups"] if g["cell"] == "reference" and g["steps"] == steps]
    out: dict[str, list[dict[str, Any]]] = {}
    for g in ref:
        if g["model"] == roles.base:
            out.setdefault(f"{roles.base}, {g['guidance_method']}", []).append({**g, "x": g["guidance"]})
            if g["guidance"] == 0 and g["guidance_method"] == "cfg":  # no guidance: interval = cfg
                out.setdefault(f"{roles.base}, interval", []).append({**g, "x": 0.0})
            continue
        c = roles.contender(g["model"])
        if c is None:
            continue
        if not c.knob or g.get(c.knob) == 0:
            out.setdefault(c.main_series, []).append({**g, "x": g["guidance"]})
        else:
            out.setdefault(c.knob_series, []).append({**g, "x": g[c.knob]})
        if c.knob and g["guidance"] == 0 and g.get(c.knob) == 0:
            out.setdefault(c.knob_series, []).append({**g, "x": 0.0})
    return {k: sorted(out[k], key=lambda g: g["x"]) for k in roles.styles() if len(out.get(k, [])) > 1}


def guidance_curves(summary: dict[str, Any], path: Path) -> Path:
    from taxodiff.report.figures import pyplot, save

    plt = pyplot()
    series = _series(summary)
    panels = [("kl", "KL(p_data || p_model), nats"), ("coverage", "mode coverage"), ("entropy", "H(z1_hat | z2), nats")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (m, label) in zip(axes, panels, strict=True):
        for name, gs in series.items():
            x = [g["x"] for g in gs]
            y = [g[m] for g in gs]
            colour, ls = Roles.of(summary).styles()[name]
            ax.plot(x, y, ls, color=colour, marker="o", label=name)
            bands = [band(g, m) for g in gs]
            ax.fill_between(x, [b[0] for b in bands], [b[1] for b in bands], color=colour, alpha=0.12)
        if m == "entropy":
            ax.axhline(summary["groups"][0]["entropy_data"], color="0.5", lw=0.8, ls=":", label="data")
        if m == "coverage":
            ax.set_ylim(-0.02, 1.05)
        ax.set_xlabel("guidance scale")
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Reference cell: metrics against guidance ({band_note(len(summary['seeds']))})", fontsize=11)
    return save(fig, path)


def precision_recall(summary: dict[str, Any], path: Path) -> Path:
    from taxodiff.report.figures import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    for name, gs in _series(summary).items():
        pts = [(g["recall"], g["precision"], g["x"]) for g in gs if "recall" in g]
        if not pts:
            continue
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            Roles.of(summary).styles()[name][1],
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
    return save(fig, path)


def regimes_chart(summary: dict[str, Any], path: Path) -> Path:
    from taxodiff.report.figures import pyplot, save

    plt = pyplot()
    steps = summary["config"]["sample"]["steps"]
    cells = [c["name"] for c in summary["cells"]]
    w = summary["cell_scale"]
    roles = Roles.of(summary)
    pairs = [("#9ecae1", "#3182bd"), ("#fdae6b", "#e6550d"), ("#a1d99b", "#31a354"), ("#bcbddc", "#756bb1")]
    models = [roles.base, *(c.name for c in roles.contenders)]
    bars = [(m, scale, pairs[i % len(pairs)][k]) for i, m in enumerate(models) for k, scale in enumerate((0.0, w))]
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(bars)
    for i, (model, w, colour) in enumerate(bars):
        vals, lo, hi = [], [], []
        for c in cells:
            con = roles.contender(model)
            knob = con.unguided() if con else {}
            g = find(summary["groups"], cell=c, model=model, guidance_method="cfg", guidance=w, steps=steps, **knob)
            v = g["kl"] if g else np.nan
            ci = band(g, "kl") if g else (v, v)
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
    note = band_note(len(summary["seeds"]), "error bars")
    ax.set_title(f"Proportions by training regime (dotted: {KL_OK} nats; {note})", fontsize=10)
    return save(fig, path)
