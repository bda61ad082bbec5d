"""The TreeVAE study's budget trend: TreeVAE and a plain VAE + Ward trained through the same phases at several
multiples of the config's steps, over seeds, scored on the same held-out images. The question it answers: does
the gap between the two shrink, hold or grow with the budget? (The paper's MNIST run saw about 44 times as many
images as ours at 1x: 60,000 for ~1,700 epochs against 4,000 for ~580.)

Only the clustering is trained and scored (no second stage, no coarse request): the trend is the tree's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from taxodiff import config
from taxodiff.config import RunConfig
from taxodiff.families.treevae.family import VAE, TreeVAE
from taxodiff.studies.jobs import Job
from taxodiff.studies.seeds import mean_sd

PHASES = ("steps", "split_steps", "finetune_steps", "final_steps")  # the tree's phases: what a budget multiplies
TREND = (("accuracy", "accuracy"), ("nmi", "NMI"), ("dendrogram_purity", "dendrogram purity"))
METHODS = {"TreeVAE": TreeVAE.name, "VAE + Ward": VAE.name}


def cell(factor: float) -> str:
    return f"budget-{factor:g}x"


def phases(cfg: RunConfig, factor: float) -> dict[str, Any]:
    """Every phase's steps times ``factor`` (at least one), and no second stage."""
    steps = {f"train.{k}": max(1, round(getattr(cfg.train, k) * factor)) for k in PHASES}
    return steps | {"train.diffusion_steps": 0}


def jobs(cfg: RunConfig, factors: tuple[float, ...], seeds: int) -> list[Job]:
    """Per budget and seed: a TreeVAE run and a plain-VAE run through the same (multiplied) phases."""
    out = []
    for factor in factors:
        for seed in range(cfg.seed, cfg.seed + seeds):
            base = phases(cfg, factor) | {"seed": seed}
            tcfg = config.with_overrides(cfg, base | {"model": TreeVAE.name})
            vcfg = config.with_overrides(cfg, base | {"model": VAE.name})
            out += [Job(cell(factor), seed, c, ({"request": "tree"},)) for c in (tcfg, vcfg)]
    return out


def scores(rows: list[dict[str, Any]], model: str) -> dict[int, dict[str, float]]:
    """One method's clustering scores, by seed."""
    return {r["seed"]: r["own"] for r in rows if r["model"] == model and "own" in r}


def summary(rows: list[dict[str, Any]], factors: tuple[float, ...]) -> dict[str, Any]:
    """Per budget: each method's scores by seed and training seconds (no second stage: all of it is the tree's),
    Ward on the pixels, and the paired difference TreeVAE - VAE + Ward per score as [seed, value] pairs."""
    out: dict[str, Any] = {"factors": list(factors), "seeds": sorted({r["seed"] for r in rows}), "budgets": []}
    for factor in factors:
        mine = [r for r in rows if r["cell"] == cell(factor)]
        by = {name: scores(mine, model) for name, model in METHODS.items()}
        seconds = {name: [r.get("train_seconds") for r in mine if r["model"] == m] for name, m in METHODS.items()}
        seeds = sorted(set(by["TreeVAE"]) & set(by["VAE + Ward"]))
        out["budgets"].append(
            {
                "factor": factor,
                "methods": {m: [v for _, v in sorted(s.items())] for m, s in by.items()},
                "seconds": seconds,
                "ward_pixels": [r["ward_pixels"] for r in mine if r["model"] == TreeVAE.name],
                "gaps": {k: [[s, by["TreeVAE"][s][k] - by["VAE + Ward"][s][k]] for s in seeds] for k, _ in TREND},
            }
        )
    return out


def verdict(first: list[list[float]], last: list[list[float]]) -> str:
    """How the paired difference TreeVAE - VAE + Ward ([seed, value] pairs) moved from the smallest budget to the
    largest on the seeds both have, and whether by more than the spread of that move over those seeds."""
    a, b = dict((int(s), v) for s, v in first), dict((int(s), v) for s, v in last)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return "not measured"
    move = np.array([b[s] - a[s] for s in seeds])
    mean = float(move.mean())
    change = "no change" if round(mean, 3) == 0 else f"TreeVAE {'gains' if mean > 0 else 'loses'} {abs(mean):.3f}"
    text = f"{np.mean([a[s] for s in seeds]):+.3f} to {np.mean([b[s] for s in seeds]):+.3f} ({change}"
    if len(seeds) < 2:
        return text + "; one seed: no spread to judge it by)"
    spread = float(move.std(ddof=1))
    return text + f", {'beyond' if abs(mean) > spread else 'within'} its sd over seeds, {spread:.3f})"


def table(s: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["budget", "method", *[name for _, name in TREND], "train s", "TreeVAE - VAE + Ward (accuracy, paired)"]
    body = []
    for b in s["budgets"]:
        budget = f"{b['factor']:g}x"
        gap = mean_sd([v for _, v in b["gaps"]["accuracy"]], "{:.3f}")
        for m, scored in b["methods"].items():
            cells = [mean_sd([r[k] for r in scored], "{:.3f}") for k, _ in TREND]
            body.append([budget, m, *cells, mean_sd(b["seconds"][m], "{:.0f}"), gap if m == "TreeVAE" else ""])
        pixels = [mean_sd([r[k] for r in b["ward_pixels"]], "{:.3f}") for k, _ in TREND]
        body.append([budget, "Ward on pixels", *pixels, "", ""])
    return head, body


def figure(s: dict[str, Any], path: Path) -> Path:
    """Accuracy, NMI and dendrogram purity against the budget: each method's mean with a band of ± sd over seeds,
    Ward on the pixels dashed."""
    from taxodiff.report import figures

    plt = figures.pyplot()
    x = np.array(s["factors"], dtype=float)
    fig, axes = plt.subplots(1, len(TREND), figsize=(4.2 * len(TREND), 3.4))
    for ax, (key, name) in zip(np.atleast_1d(axes), TREND, strict=True):
        for method, colour in zip(METHODS, ("tab:green", "tab:blue"), strict=True):
            values = [[r[key] for r in b["methods"][method]] for b in s["budgets"]]
            mean = np.array([np.mean(v) if v else np.nan for v in values])
            sd = np.array([np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in values])
            ax.plot(x, mean, "o-", color=colour, label=method)
            ax.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.15)
        pixels = [np.mean([r[key] for r in b["ward_pixels"]]) if b["ward_pixels"] else np.nan for b in s["budgets"]]
        ax.plot(x, pixels, "--", color="grey", label="Ward on pixels")
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [f"{f:g}x" for f in x])
        ax.set_xlabel("training budget (the config's phases = 1x)")
        ax.set_title(name)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    return figures.save(fig, path)


def blocks(s: dict[str, Any], out: Path) -> list[tuple[str, Any]]:
    """The report's blocks (the figure drawn here)."""
    figure(s, out / "figures" / "budget.png")
    first, last = s["budgets"][0], s["budgets"][-1]
    moves = "; ".join(f"{name} {verdict(first['gaps'][k], last['gaps'][k])}" for k, name in TREND)
    trend = f"From {first['factor']:g}x to {last['factor']:g}x, the paired difference TreeVAE - VAE + Ward: {moves}."
    if first is last:
        trend = "One budget: no trend (run the others into the same folder; its rows are kept)."
    return [
        ("h1", f"TreeVAE against VAE + Ward as the training budget grows: {s['source']}"),
        (
            "p",
            f"Budgets {', '.join(f'{f:g}x' for f in s['factors'])} of the config's tree phases (every phase's "
            f"steps multiplied; no second stage), seeds {', '.join(map(str, s['seeds']))}; mean ± sd over seeds; "
            f"scored on the held-out images. Study time {s['seconds'] / 60:.1f} min.",
        ),
        ("img", ("figures/budget.png", "clustering scores against the budget")),
        ("table", table(s)),
        ("p", trend),
    ]
