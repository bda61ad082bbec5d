"""The TreeVAE study (seed 003) on an image source with labels: clusters grown without labels, against Ward's
agglomerative clustering on the pixels and on a plain VAE's latents, over seeds.

Per seed: a TreeVAE run and a plain-VAE run (the same encoder, ladder and decoder on one node, as many training
steps, the same data and batch). Each is scored on the held-out labelled images: the TreeVAE by its most
probable leaf and its own tree, the VAE by Ward's dendrogram of its posterior means cut at the leaf budget;
Ward on the pixels gets as many clusters as the TreeVAE's leaves (scikit-learn's Ward, the same held-out
images). The TreeVAE also answers the coarse request (each category from the learned node that matches it)
and draws from its root: mode metrics and the class purity of every leaf's samples.

The ``budget`` preset (or ``--budgets``) trains both at multiples of the tree phases' steps instead, clustering
only (:mod:`taxodiff.families.treevae.budget`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taxodiff import config, runs
from taxodiff.config import RunConfig
from taxodiff.data.real.digits import Digits
from taxodiff.families.treevae import budget
from taxodiff.families.treevae.family import VAE, TreeVAE
from taxodiff.studies import Preset, Study
from taxodiff.studies.jobs import Context, Job
from taxodiff.studies.seeds import mean_sd as _stat


@dataclass(frozen=True)
class TreeVAEPreset(Preset):
    budgets: tuple[float, ...] = ()  # multiples of the tree phases' steps (the budget trend); () : the config's


PRESETS = {
    "default": TreeVAEPreset("default", "3 seeds at the config's budget (25 to 52 min on 2 CPU cores, by data set)", 3),
    "quick": TreeVAEPreset("quick", "1 seed"),
    "budget": TreeVAEPreset(
        "budget",
        "3 seeds at 1x, 2x and 4x the config's tree phases, clustering only (MNIST: about 70 min a seed)",
        3,
        budgets=(1.0, 2.0, 4.0),
    ),
}
SCORES = (
    ("accuracy", "accuracy", "{:.3f}"),
    ("nmi", "NMI", "{:.3f}"),
    ("ari", "ARI", "{:.3f}"),
    ("leaf_purity", "leaf purity", "{:.3f}"),
    ("dendrogram_purity", "dendrogram purity", "{:.3f}"),
    ("clusters", "clusters", "{:.1f}"),
)
METHODS = ("TreeVAE", "VAE + Ward", "Ward on pixels")


def method_rows(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """Per method, its scores on every seed."""
    tree = [r for r in rows if r["model"] == TreeVAE.name and r["request"] == "tree" and r["decoder"] == "vae"]
    vae = [r for r in rows if r["model"] == VAE.name]
    return {
        "TreeVAE": [r["own"] for r in tree],
        "VAE + Ward": [r["own"] for r in vae],
        "Ward on pixels": [r["ward_pixels"] for r in tree],
    }


def table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    by = method_rows(rows)
    head = ["method", *[s[1] for s in SCORES]]
    return head, [[m, *[_stat([v[k] for v in by[m]], f) for k, _, f in SCORES]] for m in METHODS if by[m]]


def tree_seconds(run_dir: Path) -> float | None:
    """Training time of the tree's phases (the second stage excluded), from the run's log: the log's clock
    restarts with every training call (a resumed run), so each call's last time before the second stage counts."""
    calls: list[list[dict[str, Any]]] = []
    for r in runs.read_jsonl(run_dir / "metrics.jsonl"):
        if not calls or r["elapsed_s"] < calls[-1][-1]["elapsed_s"]:
            calls.append([])
        calls[-1].append(r)
    tree = [max((r["elapsed_s"] for r in call if r.get("stage") != "diffusion"), default=0.0) for call in calls]
    return float(sum(tree)) if calls else None


def held_out_count(run_dir: Path) -> int:
    """How many held-out images a run's clustering was scored on (its eval.json)."""
    evals = runs.read_json(run_dir / "eval.json")["evaluations"]
    return int(next(iter(evals.values()))["held_out"])


def jobs(cfg: RunConfig, preset: TreeVAEPreset, ctx: Context | None = None) -> list[Job]:
    """Per seed: a TreeVAE run (its tree, the coarse request, the leaf decoders' own samples beside a second
    stage) and a plain-VAE run through the same phases; under a budget preset, both at every budget."""
    if preset.budgets:
        return budget.jobs(cfg, preset.budgets, preset.seeds)
    out: list[Job] = []
    for seed in range(cfg.seed, cfg.seed + preset.seeds):
        tcfg = config.with_overrides(cfg, {"model": TreeVAE.name, "seed": seed})
        vcfg = config.with_overrides(cfg, {"model": VAE.name, "seed": seed, "train.diffusion_steps": 0})
        settings: tuple[dict[str, Any], ...] = ({"request": "tree"}, {"request": "categories"})
        if cfg.train.diffusion_steps:  # the leaf decoders' own samples beside the second stage's
            settings += ({"request": "tree", "decoder": "vae"},)
        out += [Job("reference", seed, tcfg, settings), Job("reference", seed, vcfg, ({"request": "tree"},))]
    return out


def summarise(cfg: RunConfig, preset: TreeVAEPreset, rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    if preset.budgets:
        return {"source": cfg.data.source, "trend": budget.summary(rows, preset.budgets)}
    return {"source": cfg.data.source, "table": table(rows)}


def _excess(row: dict[str, Any], key: str) -> float:
    """A sample distance's excess over the training images' own value."""
    g = row["generated"]
    return max(g[key] - g[f"{key}_data"], 1e-9)


def refiner_table(vae: list[dict[str, Any]], diff: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Fréchet distances, pixel SWD and sample purity of the leaf decoders, the second stage and the data."""
    head = [
        "decoder",
        "patch Fréchet distance",
        "pixel SWD",
        "Fréchet distance (classifier features)",
        "class purity of each leaf's samples",
    ]

    def cells(rs: list[dict[str, Any]], data: bool = False) -> list[str]:
        g = [r["generated"] for r in rs]
        suffix = "_data" if data else ""
        return [
            _stat([x[f"patch_fd{suffix}"] for x in g], "{:.3f}"),
            _stat([x[f"pixel_swd{suffix}"] for x in g], "{:.1f}"),
            "-" if data else _stat([x["frechet"] for x in g], "{:.2f}"),
            "-" if data else _stat([x["purity"] for x in g], "{:.3f}"),
        ]

    body = [
        ["leaf decoders (TreeVAE)", *cells(vae)],
        ["second-stage DDPM", *cells(diff)],
        ["training images (as many)", *cells(vae, data=True)],
    ]
    return head, body


def refiner_gains(vae: list[dict[str, Any]], diff: list[dict[str, Any]]) -> str:
    """How much the second stage lowers each distance, per seed, and the most it could."""
    pairs = list(zip(vae, diff, strict=True))
    fd = [v["generated"]["patch_fd"] / d["generated"]["patch_fd"] for v, d in pairs]
    fd_excess = [_excess(v, "patch_fd") / _excess(d, "patch_fd") for v, d in pairs]
    swd_excess = [_excess(v, "pixel_swd") / _excess(d, "pixel_swd") for v, d in pairs]
    ceiling = [v["generated"]["patch_fd"] / v["generated"]["patch_fd_data"] for v in vae]  # if it matched the data
    cls = [v["generated"]["frechet"] / d["generated"]["frechet"] for v, d in pairs]

    def per_seed(xs: list[float]) -> str:
        return f"{_stat(xs, '{:.1f}')}x (per seed: {', '.join(f'{x:.1f}x' for x in xs)})"

    return (
        f"The second stage lowers the patch Fréchet distance {per_seed(fd)}; its excess over the training "
        f"images' own value {per_seed(fd_excess)}; the pixel SWD's excess {per_seed(swd_excess)}; the "
        f"Fréchet distance in the classifier's features {per_seed(cls)}. A generator as good as the data "
        f"would score the training images' own value, so no second stage can lower the patch Fréchet "
        f"distance more than {per_seed(ceiling)} here."
    )


def refiner_blocks(out: Path, vae: list[dict[str, Any]], diff: list[dict[str, Any]], first: Path) -> list:
    """The second stage against the leaf decoders, and per-leaf class histograms (figure drawn here)."""
    from taxodiff.families.treevae.report import purity_figure

    held = {k: v["classes"] for k, v in vae[0]["tree_nodes"].items() if not v["children"]}
    hist = {
        "held-out images": held,
        "leaf decoders": vae[0]["generated"]["leaf_classes"],
        "second stage": diff[0]["generated"]["leaf_classes"],
    }
    purity_figure(hist, vae[0]["class_names"], out / "figures" / "leaf_classes.png")
    return [
        ("h2", "The second stage: a DDPM refining each leaf's decoding"),
        (
            "p",
            "Samples from the root (one leaf per sample, drawn by the generative routers), decoded by the leaf "
            "decoders alone and refined by the second stage, against the held-out images. The patch Fréchet "
            "distance and the pixel SWD compare local patches of a Laplacian pyramid, so they see blur; the "
            "classifier's features were trained to read the class through blur and noise, so they do not.",
        ),
        ("table", refiner_table(vae, diff)),
        ("p", refiner_gains(vae, diff)),
        ("img", (str(first / "figures" / f"samples_{diff[0]['tag']}.png"), "second-stage samples by leaf")),
        ("p", "The same root draws by the leaf decoders alone: the section above."),
        (
            "p",
            "Class histograms of every learned leaf (first seed): the held-out images it holds, its decoder's "
            "samples and the second stage's (domain classifier).",
        ),
        ("img", ("figures/leaf_classes.png", "per-leaf class histograms")),
    ]


def _train_seconds(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each method's training time (growth included, second stage excluded), mean ± sd over seeds."""
    return {
        m: _stat(
            [
                tree_seconds(Path(r["run_dir"]))
                for r in rows
                if r["model"] == m and r["request"] == "tree" and r["decoder"] == "vae"
            ],
            "{:.0f}",
        )
        for m in (TreeVAE.name, VAE.name)
    }


def _clustering_blocks(
    s: dict[str, Any], rows: list[dict[str, Any]], tree_rows: list[dict[str, Any]], first: Path
) -> list:
    seeds = sorted({r["seed"] for r in rows})
    train = _train_seconds(rows)
    leaves = ", ".join(f"{r['leaves']} (depth {r['depth']})" for r in tree_rows)
    gen = [r["generated"] for r in tree_rows]
    held_out = f"{held_out_count(Path(tree_rows[0]['run_dir'])):,}"
    return [
        ("h1", f"TreeVAE against Ward's clustering: {s['source']}"),
        (
            "p",
            f"Seeds {', '.join(map(str, seeds))}; mean ± sd over seeds; scored on the {held_out} held-out images "
            "and their labels (never trained on); labels are never used in training. Ward on the pixels is "
            f"deterministic on these images (no spread). Study time {s['seconds'] / 60:.1f} min.",
        ),
        ("table", s["table"]),
        (
            "p",
            f"Training (growth included, second stage excluded): TreeVAE {train[TreeVAE.name]} s, plain VAE "
            f"{train[VAE.name]} s (the same phases: steps, batch, learning-rate and KL schedules; the VAE trains on "
            f"all the images in every phase). Learned leaves per seed: {leaves}. The root's split against the "
            f"true categories (Hungarian accuracy of its two sides): "
            f"{_stat([r['top_split'] for r in tree_rows], '{:.3f}')}.",
        ),
        ("h2", "The learned tree (first seed): each node's share of the held-out images and their classes"),
        ("img", (str(first / "figures" / "tree.png"), "learned tree")),
        ("h2", "Samples from the root by the leaf decoders, by learned leaf (first seed)"),
        ("img", (str(first / "figures" / f"samples_{tree_rows[0]['tag']}.png"), "samples by leaf")),
        (
            "p",
            "Class purity of each leaf's samples (domain classifier) "
            f"{_stat([g['purity'] for g in gen], '{:.3f}')}; Fréchet distance to the held-out images "
            f"(classifier features) {_stat([g['frechet'] for g in gen], '{:.2f}')}.",
        ),
    ]


def _coarse_blocks(cats: list[dict[str, Any]]) -> list:
    kl = _stat([r["kl"] for r in cats], "{:.4f}")
    off = _stat([r["off_category"] for r in cats], "{:.3f}")
    f1 = _stat([float(np.mean(r["category_nodes"]["f1"])) for r in cats], "{:.3f}")
    return [
        ("h2", "The coarse request: each category from the learned node that matches it best"),
        (
            "p",
            f"Mean F1 of those nodes against the categories (training images) {f1}; KL of the generated "
            f"class proportions {kl}; off-category share {off}.",
        ),
    ]


def report(s: dict[str, Any], rows: list[dict[str, Any]], out: Path) -> list[tuple[str, Any]]:
    """The report's blocks (the second stage's figure drawn here)."""
    if "trend" in s:
        return budget.blocks({**s["trend"], "source": s["source"], "seconds": s["seconds"]}, out)
    mine = [r for r in rows if r["model"] == TreeVAE.name]
    tree_rows = [r for r in mine if r["request"] == "tree" and r["decoder"] == "vae"]
    refined = [r for r in mine if r["request"] == "tree" and r["decoder"] == "diffusion"]
    cats = [r for r in mine if r["request"] == "categories"]
    first = Path(os.path.relpath(tree_rows[0]["run_dir"], out))
    bl = _clustering_blocks(s, rows, tree_rows, first)
    if refined:
        bl += refiner_blocks(out, tree_rows, refined, first)
    return bl + (_coarse_blocks(cats) if cats else [])


STUDY = Study(
    name="treevae",
    help="TreeVAE (seed 003) against Ward on pixels and on a plain VAE's latents, over seeds",
    title="taxodiff TreeVAE study",
    kinds=("images",),
    presets=PRESETS,
    default_out="runs/study-treevae",
    jobs=jobs,
    summarise=summarise,
    report=report,
    defaults={"model": TreeVAE.name, "data.source": Digits.name},
)
