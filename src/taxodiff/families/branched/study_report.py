"""The branched study's report: tables over seeds (mean +- sd), the sampling speed beside its theory, the
continual-learning table, transmutation against branch time, and figures (the tree's paths, samples, shares)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from taxodiff.families.branched.family import Branched
from taxodiff.families.labelled.family import Labelled
from taxodiff.studies.seeds import mean_sd as _stat

B, L = Branched.name, Labelled.name  # the family and its baseline

METRICS = (
    ("kl", "KL", "{:.4f}"),
    ("coverage", "coverage", "{:.2f}"),
    ("off_category", "off-category", "{:.3f}"),
    ("class_accuracy", "class accuracy", "{:.3f}"),
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("pixel_swd", "pixel SWD", "{:.1f}"),
)


def comparison_table(rows: list[dict[str, Any]], request: str, metrics: tuple) -> tuple[list[str], list[list[str]]]:
    head = ["model", "parameters", "train s", *[m[1] for m in metrics]]
    body = []
    for model in (B, L):
        mine = [r for r in rows if r["model"] == model and r["request"] == request]
        if mine:
            params = f"{int(np.mean([r['parameters'] for r in mine])):,}"
            seconds = _stat([r["train_seconds"] for r in mine], "{:.0f}")
            body.append([model, params, seconds, *[_stat([r.get(k) for r in mine], f) for k, _, f in metrics]])
    return head, body


def per_class_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Per-class Fréchet distance (mean over seeds) of both families under the request of every class."""
    mine = {m: [r for r in rows if r["model"] == m and r["request"] == "classes"] for m in (B, L)}
    names = list((mine[B] or mine[L])[0]["per_class"])
    body = []
    for name in names:
        cells = [name]
        for m in (B, L):
            cells.append(_stat([r["per_class"][name]["frechet"] for r in mine[m]], "{:.2f}"))
            cells.append(_stat([r["per_class"][name]["accuracy"] for r in mine[m]], "{:.2f}"))
        body.append(cells)
    wins = sum(
        np.mean([r["per_class"][n]["frechet"] for r in mine[B]])
        < np.mean([r["per_class"][n]["frechet"] for r in mine[L]])
        for n in names
    )
    head = ["class", f"{B} FD", f"{B} acc.", f"{L} FD", f"{L} acc."]
    return head, body + [[f"{B} lower FD on {wins} of {len(names)} classes", "", "", "", ""]]


def continual_table(c: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    names = list(c["runs"][f"{B} after"]["per_class"])
    head = ["class", *[f"{k} FD / acc." for k in c["runs"]]]
    body = []
    for name in names:
        cells = [name + (" (new)" if name == c["class"] else "")]
        for r in c["runs"].values():
            pc = (r["per_class"] or {}).get(name)
            cells.append("-" if pc is None else f"{pc['frechet']:.2f} / {pc['accuracy']:.2f}")
        body.append(cells)
    return head, body


def tree_figure(tree: dict[str, Any], path: Path) -> Path:
    """Each class's path through the tree: one row per class, a bar per branch (colour = head) over time."""
    from taxodiff.report.figures import pyplot, save

    plt = pyplot()
    branches, T = tree["branches"], tree["T"]
    names = max(branches, key=lambda b: (b["t_end"], len(b["classes"])))["classes"]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))
    cmap = plt.get_cmap("tab20")
    for y, name in enumerate(names):
        for b in branches:
            if name in b["classes"]:
                ax.barh(
                    y,
                    (b["t_end"] - b["t_start"]) / T,
                    left=b["t_start"] / T,
                    color=cmap(b["head"] % 20),
                    edgecolor="white",
                    height=0.8,
                )
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("process time t / T (a colour = one branch, shared by the classes it spans)")
    ax.set_title("branched tree: every class's path from the root (t = 1) to its leaf (t = 0)")
    return save(fig, path)


def blocks(s: dict[str, Any], out: Path) -> list[tuple[str, Any]]:
    """The report's blocks (the tree's figure drawn here)."""
    import os

    rows = s["rows"]
    seeds = sorted({r["seed"] for r in rows})
    tree_figure(s["tree"], out / "figures" / "tree.png")
    grid = next(f"{r['run_dir']}/figures/samples_{r['tag']}.png" for r in rows if r["model"] == B)
    bl: list[tuple[str, Any]] = [
        ("h1", f"Branched diffusion against its equal-size baseline ({L})"),
        ("p", f"Seeds {', '.join(map(str, seeds))}; mean ± sd over seeds. Study time {s['seconds'] / 60:.1f} min."),
        ("h2", "The tree (first seed)"),
        ("img", ("figures/tree.png", "branched tree")),
        ("h2", "A coarse request: each category, its classes drawn from p(class | category)"),
        ("table", comparison_table(rows, "categories", METRICS)),
        ("h2", "Every class asked: per-class Fréchet distance (classifier features) and accuracy"),
        ("table", comparison_table(rows, "classes", (("class_frechet", "mean class FD", "{:.2f}"),) + METRICS[3:])),
        ("table", per_class_table(rows)),
        ("img", (os.path.relpath(grid, out), f"{B} samples")),
    ]
    if "speed" in s:
        bl += _speed_blocks(s["speed"])
    if "continual" in s:
        bl += _continual_blocks(s["continual"])
    if "transmute" in s:
        bl += [
            ("h2", "Transmutation: noised to the pair's branch time, denoised down the target's branch"),
            *[("p", f"Scale {tm['scale']:g}: " + _transmute_line(tm["pairs"])) for tm in s["transmute"]],
            ("img", ("figures/transmute.png", "transmutation")),
        ]
    return bl


def _speed_blocks(sp: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("h2", "All classes at once: cached branch points against per-class sampling (same model, same grid)"),
        (
            "table",
            (
                ["", "network evaluations", "seconds"],
                [
                    ["per class", f"{sp['classes']['evaluations']:,}", f"{sp['classes']['seconds']:.1f}"],
                    ["cached", f"{sp['classes-cached']['evaluations']:,}", f"{sp['classes-cached']['seconds']:.1f}"],
                    ["ratio", f"{sp['evaluation_ratio']:.2f}x", f"{sp['time_ratio']:.2f}x"],
                ],
            ),
        ),
        (
            "p",
            f"Theory C / (sum of branch lengths) = {sp['theory']:.2f}x; on the sampling grid "
            f"({sp['steps']} steps) {sp['grid_theory']:.2f}x. {sp['n_classes']} classes, {sp['per_class']} each.",
        ),
    ]


def _continual_blocks(c: dict[str, Any]) -> list[tuple[str, Any]]:
    if "skipped" in c:
        return [("h2", "Continual learning"), ("p", f"Not run: {c['skipped']}.")]
    return [
        ("h2", f"Continual learning: class {c['class']!r} added to {c['under']!r} ({c['steps']} steps)"),
        (
            "p",
            "Every run's samples (n per class, one seed) scored by the classifier of the full class tree. Old "
            f"classes' samples of the branched run bit-identical before and after: "
            f"{'yes' if c['bit_identical'] else 'NO'}.",
        ),
        ("table", continual_table(c)),
    ]


def _transmute_line(pairs: list[dict[str, Any]]) -> str:
    from scipy.stats import spearmanr

    t = [p["t"] for p in pairs]
    target = [p["share_target"] for p in pairs]
    source = [p["share_source"] for p in pairs]
    rho = spearmanr(t, target).statistic if len(set(t)) > 1 else float("nan")
    return (
        f"{len(pairs)} ordered pairs: classified as the target {np.mean(target):.2f} on average "
        f"(min {min(target):.2f}, max {max(target):.2f}), still the source {np.mean(source):.2f}; "
        f"Spearman correlation of the target share with the branch time {rho:.2f}."
    )
