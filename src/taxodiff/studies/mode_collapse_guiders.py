"""The guidance rules of the mode-collapse study side by side: which rules keep the modes' weights, at equal
image quality.

A *series* is one family and the network its scale guides: the baseline's image network, the hierarchical
family's decoder (its prior unguided) and its prior (its decoder unguided). Along a series every rule has a
path of points, one per guidance scale, from the common unguided point (scale 0: the conditional model
under every rule but CADS). Each point has the modes' KL and the pixel SWD (image quality; lower is better).

The ranking compares rules at equal image quality, against plain CFG's trade-off. CFG's path, read as KL
against pixel SWD (made non-decreasing along the scales, then interpolated linearly), says what KL CFG pays
for a given image quality. Every guided point of a rule is compared with CFG at that point's own pixel SWD:
its *gap* is its KL minus CFG's there (negative: the rule keeps the weights better than CFG at the same
images). A rule's score is the mean gap over its guided scales, CFG's own is 0. A rule that keeps the weights
only by guiding less (better images, lower KL, on CFG's curve) scores about 0, and one that makes worse images
is compared with CFG at those worse images; a point beyond CFG's worst pixel SWD is compared with CFG's worst
and flagged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from taxodiff.studies.mode_collapse_roles import Roles
from taxodiff.studies.seeds import find, shown


def series(summary: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{series label: {rule: groups along its path, scale 0 first, each with its scale as "x"}}."""
    roles = Roles.of(summary)
    steps = summary["config"]["sample"]["steps"]
    groups = [g for g in summary["groups"] if g["cell"] == "reference" and g["steps"] == steps]
    specs = [(roles.base, {"model": roles.base}, "guidance", {})]  # (label, what is fixed, the swept scale, zero)
    for c in roles.contenders:
        specs.append((c.main_series, {"model": c.name, **c.unguided()}, "guidance", c.unguided()))
        if c.knob:
            specs.append((c.knob_series, {"model": c.name, "guidance": 0.0}, c.knob, c.unguided()))
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for label, want, scale_key, zero in specs:
        unguided = {**want, scale_key: 0.0, **zero}
        start = find(groups, guidance_method="cfg", **unguided)
        rules: dict[str, list[dict[str, Any]]] = {}
        for g in groups:
            if all(g.get(k) == v for k, v in want.items()) and (g.get(scale_key) or 0) > 0:
                rules.setdefault(g["guidance_method"], []).append({**g, "x": float(g[scale_key])})
        for method, path in rules.items():
            own_zero = find(groups, guidance_method=method, **unguided) if method == "cads" else None
            first = own_zero or start
            head = [{**first, "x": 0.0}] if first is not None else []
            rules[method] = head + sorted(path, key=lambda g: g["x"])
        if rules:
            out[label] = dict(sorted(rules.items(), key=lambda kv: (kv[0] != "cfg", kv[0])))
    return out


def kl_at_quality(path: list[dict[str, Any]], level: float) -> tuple[float, bool]:
    """(the KL of a rule's path at pixel SWD ``level``, whether the path reaches that level)."""
    swd = np.maximum.accumulate([g["pixel_swd"] for g in path])
    swd = swd + 1e-9 * np.arange(len(swd))  # strictly increasing for the interpolation
    kl = np.array([g["kl"] for g in path])
    return float(np.interp(level, swd, kl)), bool(level <= swd[-1])


def ranking(rules: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rules of one series, best first: the mean gap of their guided points to CFG's trade-off."""
    cfg = rules.get("cfg")
    if not cfg or any("pixel_swd" not in g for p in rules.values() for g in p):
        return []
    out = []
    for method, path in rules.items():
        guided = [g for g in path if g["x"] > 0]
        at = [kl_at_quality(cfg, g["pixel_swd"]) for g in guided]
        gaps = [g["kl"] - k for g, (k, _) in zip(guided, at, strict=True)]
        out.append(
            {
                "rule": method,
                "score": float(np.mean(gaps)) if gaps else 0.0,
                "gaps": gaps,
                "scales": [g["x"] for g in guided],
                "reached": all(r for _, r in at),
                "top": path[-1],
            }
        )
    return sorted(out, key=lambda r: r["score"])


def seed_spread(cfg_path: list[dict[str, Any]]) -> float:
    """The yardstick of a ranking: plain CFG's KL standard deviation over seeds, averaged over its guided scales
    (0 for one seed)."""
    return float(np.mean([g.get("kl_sd", 0.0) for g in cfg_path if g["x"] > 0] or [0.0]))


def verdict(ranked: list[dict[str, Any]], cfg_path: list[dict[str, Any]]) -> str:
    """The ranking in words: the best rule, where CFG stands, and whether the scores differ more than seeds do."""
    names = [r["rule"] for r in ranked]
    lo, hi, sd = ranked[0]["score"], ranked[-1]["score"], seed_spread(cfg_path)
    text = f"Best at equal image quality: {names[0]}; plain CFG ranks {names.index('cfg') + 1} of {len(ranked)}."
    if sd > 0 and hi - lo < sd:
        text = (
            f"No rule differs from another beyond the spread over seeds: scores {lo:.4f} to {hi:.4f} nats, "
            f"plain CFG's KL varies by {sd:.4f} (sd) between seeds; the order above is noise."
        )
    return text


def _stat(g: dict[str, Any], m: str, fmt: str) -> str:
    """mean ± sd over seeds; the KL with its bootstrap interval too."""
    if m == "kl" or m not in g:
        return shown(g, m, fmt)
    return f"{g[m]:{fmt}}" + (f" ± {g[f'{m}_sd']:{fmt}}" if f"{m}_sd" in g else "")


def table(paths: dict[str, list[dict[str, Any]]]) -> tuple[list[str], list[list[str]]]:
    head = [
        "rule",
        "scale",
        "KL (nats)",
        "coverage",
        "entropy",
        "recall",
        "within-subtype Vendi ratio",
        "off-category",
        "pixel SWD (data)",
    ]
    body = []
    for method, path in paths.items():
        for g in path:
            swd = f"{_stat(g, 'pixel_swd', '.1f')} ({g['pixel_swd_data']:.1f})" if "pixel_swd" in g else "n/a"
            body.append(
                [
                    method,
                    f"{g['x']:g}",
                    _stat(g, "kl", ".4f"),
                    _stat(g, "coverage", ".2f"),
                    _stat(g, "entropy", ".3f"),
                    _stat(g, "recall", ".3f"),
                    _stat(g, "within_subtype_ratio", ".3f"),
                    _stat(g, "off_category", ".3f"),
                    swd,
                ]
            )
    return head, body


def ranking_table(ranked: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = [
        "rank",
        "rule",
        "mean KL gap to CFG at the same pixel SWD",
        "gap at each scale",
        "strongest scale",
        "its KL",
        "its pixel SWD",
    ]
    body = [
        [
            str(i + 1),
            r["rule"] + ("" if r["reached"] else " *"),
            f"{r['score']:+.4f}",
            ", ".join(f"{w:g}: {k:+.4f}" for w, k in zip(r["scales"], r["gaps"], strict=True)),
            f"{r['top']['x']:g}",
            f"{r['top']['kl']:.4f}",
            f"{r['top']['pixel_swd']:.1f}",
        ]
        for i, r in enumerate(ranked)
    ]
    return head, body


def figure(summary: dict[str, Any], path: Path) -> Path:
    """Per series (rows): KL against scale, pixel SWD against scale, KL against pixel SWD; a line per rule,
    bands: ± one standard deviation over seeds."""
    from taxodiff.report.figures import pyplot, save

    plt = pyplot()
    allpaths = series(summary)
    fig, axes = plt.subplots(len(allpaths), 3, figsize=(13.5, 3.4 * len(allpaths)), squeeze=False)
    rules = sorted({m for p in allpaths.values() for m in p}, key=lambda m: (m != "cfg", m))
    colours = {m: f"C{i}" for i, m in enumerate(rules)}
    for row, (label, paths) in zip(axes, allpaths.items(), strict=True):
        for method, p in paths.items():
            x, kl = [g["x"] for g in p], np.array([g["kl"] for g in p])
            sd = np.array([g.get("kl_sd", 0.0) for g in p])
            style = {"color": colours[method], "marker": "o", "ms": 3, "lw": 2.2 if method == "cfg" else 1.2}
            row[0].plot(x, kl, label=method, **style)
            row[0].fill_between(x, kl - sd, kl + sd, color=colours[method], alpha=0.1)
            if all("pixel_swd" in g for g in p):
                swd = [g["pixel_swd"] for g in p]
                row[1].plot(x, swd, **style)
                row[2].plot(swd, kl, **style)
        row[0].set_ylabel(f"{label}\nKL(p_data || p_model), nats", fontsize=9)
        row[0].set_xlabel("guidance scale")
        row[1].set_xlabel("guidance scale")
        row[1].set_ylabel("pixel SWD (lower: better images)", fontsize=9)
        row[2].set_xlabel("pixel SWD")
        row[2].set_ylabel("KL, nats", fontsize=9)
        for ax in row:
            ax.tick_params(labelsize=8)
    axes[0][0].legend(fontsize=7, ncol=2)
    seeds = len(summary["seeds"])
    fig.suptitle(
        f"Guidance rules: mode weights and image quality ({seeds} seed{'s' * (seeds > 1)}; bands ± 1 sd over seeds)",
        fontsize=11,
    )
    fig.tight_layout()
    return save(fig, path)


def blocks(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """The report's section on the guidance rules (empty when the study ran plain CFG alone)."""
    allpaths = series(summary)
    if not any(len(p) > 1 for p in allpaths.values()):
        return []
    out: list[tuple[str, Any]] = [
        ("h2", "Guidance rules: which keep the modes' weights"),
        (
            "p",
            "Every rule at scales " + ", ".join(f"{w:g}" for w in summary["scales"] if w > 0) + " (scale 0: "
            "the conditional model, one point for all rules but CADS), with each rule's recommended settings "
            "(taxodiff.processes.guiders). Values: mean ± sd over seeds, KL with the seeds' mean bootstrap "
            "interval over samples in brackets. The ranking compares each guided point of a rule with plain CFG "
            "at the same pixel SWD (CFG's KL there read off its path): the gap is the rule's KL minus CFG's, "
            "negative where the rule keeps the weights better at equal image quality; a rule that only guides "
            "less sits on CFG's curve, near 0. * marks a rule with a point beyond CFG's worst pixel SWD "
            "(compared with CFG's worst).",
        ),
        ("img", ("figures/guiders.png", "KL and pixel SWD against guidance scale, per rule")),
    ]
    for label, paths in allpaths.items():
        ranked = ranking(paths)
        out.append(("h3", label))
        if ranked:
            out.append(("table", ranking_table(ranked)))
            out.append(("p", verdict(ranked, paths["cfg"])))
        out.append(("table", table(paths)))
    return out
