"""The demo's report (the mode-collapse study's ``demo`` preset): its summary, blocks and figure, made from
its rows.

Every number in it is read from the evaluations; over several training seeds a number is the mean, shown
with its sd over seeds beside the bootstrap interval over samples (taxodiff.studies.seeds). Every sentence of
the findings is chosen by comparing measured numbers (and their intervals) with stated thresholds. Model
names and descriptions come from the family registry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taxodiff import config as config_mod
from taxodiff.config import RunConfig
from taxodiff.studies import seeds
from taxodiff.studies.seeds import shown


def _group(g: dict[str, Any], first: dict[str, Any]) -> dict[str, Any]:
    """A (family, guidance) group over seeds, with the settings every seed shares and the first seed's grid."""
    same = ("sampler", "steps", "n", "train_steps", "parameters", "run_dir")
    grid = f"{first['run_dir']}/figures/samples_{first['tag']}.png"
    return {**g, **{k: first[k] for k in same}, "grid": grid}


def summarise(cfg: RunConfig, preset: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The demo's summary from its rows (one per family, seed and guidance scale)."""
    from taxodiff.data import get_source
    from taxodiff.families import get_family

    source = get_source(cfg.data.source)(cfg)
    h = source.hierarchy
    groups = seeds.group_rows(rows, ("model", "guidance"))
    first = {(r["model"], r["guidance"]): r for r in reversed(rows)}  # the first seed's row of each group
    names = list(dict.fromkeys(r["model"] for r in rows))
    seed_list = list(dict.fromkeys(r["seed"] for r in rows))
    r0 = rows[0]
    return {
        "short_report": True,
        "families": {n: get_family(n).summary for n in names},
        "data": source.describe(),
        "hierarchy": config_mod.to_dict(h.to_spec()),
        "hierarchy_text": h.describe(),
        "entropy_data": h.entropy(),
        "config": config_mod.to_dict(cfg),
        "classifier": {k: r0[f"classifier_{k}"] for k in ("accuracy", "style_r2", "n_test")},
        "settings": {"coverage_rel": r0["coverage_rel"], "kl_smoothing": r0["kl_smoothing"]},
        "seeds": seed_list,
        "interval": seeds.interval_note(len(seed_list)),
        "rows": [_group(g, first[(g["model"], g["guidance"])]) for g in groups],
        "timings_s": _timings(rows, len(seed_list) > 1),
    }


def _timings(rows: list[dict[str, Any]], by_seed: bool) -> dict[str, float]:
    """Training seconds of every run and sampling-and-scoring seconds of every evaluation."""
    out: dict[str, float] = {}
    for r in rows:
        suffix = f"_seed{r['seed']}" if by_seed else ""
        out[f"train_{r['model']}{suffix}"] = r["train_seconds"]
        out[f"sample_eval_{r['model']}_g{r['guidance']:g}{suffix}"] = r["eval_seconds"]
    return out


# -- findings ---------------------------------------------------------------------------------------------
def findings(summary: dict[str, Any]) -> list[str]:
    """One sentence per (family, guidance), chosen by the numbers (seeds.verdict)."""
    out = []
    for r in summary["rows"]:
        said = seeds.verdict(r)
        text = f"{r['model'].capitalize()} model, guidance {r['guidance']:g}: {said}."
        text += "" if "off-category" in said else f" Off-category rate {shown(r, 'off_category')}."
        if "fidelity" in r:
            prior = shown(r, "prior_kl", ".4f")
            text += f" Fidelity to the prior's z1 {shown(r, 'fidelity')}; the prior alone has KL {prior}."
        if "pixel_swd" in r:
            text += (
                f" Pixel quality (patch SWD, lower is better): {shown(r, 'pixel_swd', '.1f')} against the data's own "
                f"{r['pixel_swd_data']:.1f} ({r['pixel_swd'] / r['pixel_swd_data']:.2f}x)."
            )
        out.append(text)
    return out


# -- blocks -----------------------------------------------------------------------------------------------
def _fmt_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "model",
        "guidance",
        "coverage",
        "KL (nats)",
        "entropy (data {:.3f})".format(summary["entropy_data"]),
        "TV",
        "off-category",
        "fidelity",
        "prior KL",
        "precision / recall",
        "pixel SWD (data)",
        "run directory",
    ]
    body = []
    for r in summary["rows"]:
        body.append(
            [
                r["model"],
                f"{r['guidance']:g}",
                shown(r, "coverage", ".2f"),
                shown(r, "kl", ".4f"),
                shown(r, "entropy"),
                shown(r, "tv"),
                shown(r, "off_category"),
                shown(r, "fidelity"),
                shown(r, "prior_kl", ".4f"),
                f"{r['precision']:.3f} / {r['recall']:.3f}" if r.get("precision") is not None else "n/a",
                f"{shown(r, 'pixel_swd', '.1f')} ({r['pixel_swd_data']:.1f})" if "pixel_swd" in r else "n/a",
                ", ".join(f"`{d}`" for d in r["run_dirs"]),
            ]
        )
    return head, body


def _proportion_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["category", "subtype", "data"] + [f"{r['model']} g={r['guidance']:g}" for r in summary["rows"]]
    body = []
    first = summary["rows"][0]["categories"]
    for cat, info in first.items():
        for j, sub in enumerate(info["subtypes"]):
            body.append(
                [cat, sub, f"{info['p_data'][j]:.2f}"]
                + [f"{r['categories'][cat]['proportions'][j]:.3f}" for r in summary["rows"]]
            )
    return head, body


def _intro(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    rows = summary["rows"]
    params = ", ".join(f"{m} {n:,}" for m, n in {r["model"]: r["parameters"] for r in rows}.items())
    return [
        ("h1", "taxodiff demo: " + " vs ".join(summary["families"]) + " conditional diffusion"),
        ("p", "Hierarchy (p(z1 | z2) per category): " + "; ".join(summary["hierarchy_text"].splitlines()) + "."),
        (
            "p",
            "Models: " + "; ".join(f"{name}: {text}" for name, text in summary["families"].items()) + ". "
            f"Each is trained for {rows[0]['train_steps']} steps of batch {summary['config']['train']['batch_size']} "
            f"on {summary['data']}, with the same image network. Parameters: {params}. Sampler: "
            f"{rows[0]['sampler']} with {rows[0]['steps']} steps, {rows[0]['n']} samples per row.",
        ),
    ]


def _reading(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """What the mode metrics mean, and how images are assigned to subtypes."""
    s, clf = summary["settings"], summary["classifier"]
    style = (
        f"; its style head explains {clf['style_r2']:.2f} of the variance of the style factors (held-out R^2), so "
        "its features see colour, size and position as well as shape."
        if clf.get("style_r2") is not None
        else "."
    )
    return [
        (
            "p",
            f"Coverage: share of a category's subtypes generated at >= {s['coverage_rel']:g} x their data share. "
            f"KL(p_data || p_model) with {s['kl_smoothing']:g} added to every count. Entropy: H(z1_hat | z2). "
            "Off-category: share of samples the classifier puts in another category. Fidelity (a family with a "
            "prior over z1): share of its images classified as the z1 anchor nearest to the prior sample they came "
            "from. Averages over categories weighted by p(z2).",
        ),
        (
            "p",
            f"Images are assigned to subtypes by a domain classifier trained on the data's ground truth: held-out "
            f"accuracy {clf['accuracy']:.4f} on {clf['n_test']:,} images{style}",
        ),
    ]


def _grids_and_time(summary: dict[str, Any], out: Path) -> list[tuple[str, Any]]:
    rows = summary["rows"]
    b: list[tuple[str, Any]] = [("h2", f"Samples (seed {summary['seeds'][0]}, first 32 per category)")]
    for r in rows:
        b.append(("h3", f"{r['model']}, guidance {r['guidance']:g}"))
        b.append(("img", (os.path.relpath(r["grid"], out), f"{r['model']} samples, guidance {r['guidance']:g}")))
    total = [["study (every call)", f"{summary['seconds']:g}"]]
    times = [[k, f"{v:g}"] for k, v in summary["timings_s"].items()] + total
    dirs = ", ".join(f"`{d}`" for d in dict.fromkeys(d for r in rows for d in r["run_dirs"]))
    return b + [
        ("h2", "Time (seconds)"),
        ("table", (["step", "seconds"], times)),
        (
            "p",
            f"Run directories: {dirs}. Each holds config.yaml, metrics.jsonl, checkpoints/, samples/, figures/ "
            "and eval.json.",
        ),
    ]


def blocks(summary: dict[str, Any], out: Path) -> list[tuple[str, Any]]:
    return [
        *_intro(summary),
        ("h2", "Findings"),
        *[("p", f) for f in findings(summary)],
        ("h2", "Mode metrics"),
        ("p", f"Training seeds {summary['seeds']}: {summary['interval']}."),
        ("table", _fmt_rows(summary)),
        *_reading(summary),
        ("h2", "Subtype proportions"),
        ("img", ("figures/proportions.png", "subtype shares per category, data and models")),
        ("table", _proportion_rows(summary)),
        *_grids_and_time(summary, out),
    ]


def report(summary: dict[str, Any], out: Path) -> list[tuple[str, Any]]:
    """The proportions figure (under ``out/figures``) and the blocks of the report."""
    from taxodiff.report import figures

    out = Path(out)
    cats = {c: {"subtypes": v["subtypes"], "p_data": v["p_data"]} for c, v in summary["rows"][0]["categories"].items()}
    series = {
        f"{r['model']} g={r['guidance']:g}": {c: v["proportions"] for c, v in r["categories"].items()}
        for r in summary["rows"]
    }
    figures.proportions_chart(cats, series, out / "figures" / "proportions.png")
    return blocks(summary, out)
