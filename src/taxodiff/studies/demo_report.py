"""The demo's report: a summary (JSON), Markdown and HTML with figures, made from its evaluations.

Every number in it is read from the evaluations; every sentence of the findings is chosen by comparing
measured numbers (and their intervals) with stated thresholds. Model names and descriptions come from the
family registry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taxodiff import config as config_mod
from taxodiff.config import RunConfig
from taxodiff.metrics.modes import KL_MATCHED as KL_OK
from taxodiff.report.pages import write_pages

MODE_KEYS = ("coverage", "kl", "entropy", "tv", "off_category")  # each with its bootstrap interval


def _row(r: dict[str, Any]) -> dict[str, Any]:
    img = r["images"]
    o = img["overall"]
    row = {
        "model": r["family"],
        "guidance": r["guidance"],
        "tag": r["tag"],
        "run_dir": r["run_dir"],
        "sampler": r["sample"]["sampler"],
        "sampling_steps": r["sample"]["steps"],
        "n": o["n"],
        "entropy_data": o["entropy_data"],
        **{k: o[k] for k in MODE_KEYS},
        **{f"{k}_ci": o["ci"][k] for k in MODE_KEYS},
        "categories": {
            c: {k: v[k] for k in ("subtypes", "p_data", "proportions", "coverage", "kl", "off_category", "n")}
            for c, v in img["categories"].items()
        },
        "train_seconds": r["train"]["seconds"],
        "train_steps": r["train"]["steps"],
        "parameters": r["train"]["parameters"],
        "grid": f"{r['run_dir']}/figures/samples_{r['tag']}.png",
    }
    if "features" in r:
        f = r["features"]
        row.update({k: f["overall"][k] for k in ("precision", "recall", "frechet")})
        if "pixels" in f:
            row["pixel_swd"], row["pixel_swd_data"] = f["pixels"]["swd"], f["pixels"]["swd_data"]
    if "fidelity" in r:
        row["fidelity"], row["fidelity_ci"] = r["fidelity"]["value"], r["fidelity"]["ci"]
        po = r["prior"]["overall"]
        row["prior"] = {
            "coverage": po["coverage"],
            "kl": po["kl"],
            "kl_ci": po["ci"]["kl"],
            "entropy": po["entropy"],
            "tv": po["tv"],
            "categories": {c: v["proportions"] for c, v in r["prior"]["categories"].items()},
        }
    return row


def summarise(cfg: RunConfig, results: list[dict[str, Any]], timings: dict[str, float]) -> dict[str, Any]:
    from taxodiff.data import get_source
    from taxodiff.families import get_family

    source = get_source(cfg.data.source)(cfg)
    h = source.hierarchy
    clf = results[0]["classifier"]
    names = list(dict.fromkeys(r["model"] for r in results))
    return {
        "families": {n: get_family(n).summary for n in names},
        "data": source.describe(),
        "hierarchy": config_mod.to_dict(h.to_spec()),
        "hierarchy_text": h.describe(),
        "entropy_data": h.entropy(),
        "config": config_mod.to_dict(cfg),
        "classifier": {
            "accuracy": clf["accuracy"],
            "style_r2": clf.get("style_r2"),
            "n_test": clf["n_test"],
            "classes": clf["classes"],
        },
        "settings": results[0]["images"]["settings"],
        "rows": [_row(r) for r in results],
        "timings_s": timings,
    }


# -- findings ---------------------------------------------------------------------------------------------
def _ci(v: float, ci: list[float], fmt: str = ".3f") -> str:
    return f"{v:{fmt}} [{ci[0]:{fmt}}, {ci[1]:{fmt}}]"


def findings(summary: dict[str, Any]) -> list[str]:
    """One sentence per row, chosen by the numbers."""
    out = []
    for r in summary["rows"]:
        head = f"{r['model'].capitalize()} model, guidance {r['guidance']:g}:"
        lost = {
            c: [
                s
                for s, q, p in zip(v["subtypes"], v["proportions"], v["p_data"], strict=True)
                if q < summary["settings"]["coverage_rel"] * p
            ]
            for c, v in r["categories"].items()
        }
        lost = {c: s for c, s in lost.items() if s}
        if lost:
            what = "; ".join(f"{', '.join(s)} in {c}" for c, s in lost.items())
            cov = _ci(r["coverage"], r["coverage_ci"], ".2f")
            text = f"{head} lost modes ({what}); coverage {cov}, KL {_ci(r['kl'], r['kl_ci'])} nats."
        elif r["kl_ci"][0] > KL_OK:
            text = (
                f"{head} generated every subtype but mis-weighted them: KL {_ci(r['kl'], r['kl_ci'])} nats "
                f"(interval above {KL_OK}), total variation {r['tv']:.3f}."
            )
        elif r["kl"] > KL_OK:
            kl = _ci(r["kl"], r["kl_ci"])
            text = f"{head} generated every subtype; KL {kl} nats (its interval reaches below {KL_OK})."
        else:
            text = (
                f"{head} did not lose modes: every subtype generated, KL {_ci(r['kl'], r['kl_ci'])} nats, "
                f"total variation {r['tv']:.3f}."
            )
        text += f" Off-category rate {r['off_category']:.3f}."
        if "fidelity" in r:
            fid = _ci(r["fidelity"], r["fidelity_ci"])
            text += f" Fidelity to the prior's z1 {fid}; the prior alone has KL {r['prior']['kl']:.4f}."
        if "pixel_swd" in r:
            text += (
                f" Pixel quality (patch SWD, lower is better): {r['pixel_swd']:.1f} against the data's own "
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
                _ci(r["coverage"], r["coverage_ci"], ".2f"),
                _ci(r["kl"], r["kl_ci"], ".4f"),
                _ci(r["entropy"], r["entropy_ci"]),
                _ci(r["tv"], r["tv_ci"]),
                _ci(r["off_category"], r["off_category_ci"]),
                _ci(r["fidelity"], r["fidelity_ci"]) if "fidelity" in r else "n/a",
                f"{r['prior']['kl']:.4f}" if "prior" in r else "n/a",
                f"{r['precision']:.3f} / {r['recall']:.3f}" if r.get("precision") is not None else "n/a",
                f"{r['pixel_swd']:.1f} ({r['pixel_swd_data']:.1f})" if "pixel_swd" in r else "n/a",
                f"`{r['run_dir']}`",
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


def blocks(summary: dict[str, Any], out: Path) -> list[tuple[str, Any]]:
    s = summary["settings"]
    t = summary["timings_s"]
    rows = summary["rows"]
    b: list[tuple[str, Any]] = [
        ("h1", "taxodiff demo: " + " vs ".join(summary["families"]) + " conditional diffusion"),
        ("p", "Hierarchy (p(z1 | z2) per category): " + "; ".join(summary["hierarchy_text"].splitlines()) + "."),
        (
            "p",
            "Models: " + "; ".join(f"{name}: {text}" for name, text in summary["families"].items()) + ". "
            f"Each is trained for {rows[0]['train_steps']} steps of batch {summary['config']['train']['batch_size']} "
            f"on {summary['data']}, with the same image network. Parameters: "
            + ", ".join(f"{m} {n:,}" for m, n in {r["model"]: r["parameters"] for r in rows}.items())
            + ". Sampler: "
            f"{rows[0]['sampler']} with {rows[0]['sampling_steps']} steps, {rows[0]['n']} samples per row.",
        ),
        ("h2", "Findings"),
        *[("p", f) for f in findings(summary)],
        ("h2", "Mode metrics (95% bootstrap intervals)"),
        ("table", _fmt_rows(summary)),
        (
            "p",
            f"Coverage: share of a category's subtypes generated at >= {s['coverage_rel']:g} x their data share. "
            f"KL(p_data || p_model) with {s['kl_smoothing']:g} added to every count. Entropy: H(z1_hat | z2). "
            "Off-category: share of samples the classifier puts in another category. Fidelity: share of the "
            "hierarchical model's images classified as the z1 anchor nearest to the prior sample they came from. "
            "Averages over categories weighted by p(z2).",
        ),
        (
            "p",
            f"Images are assigned to subtypes by a domain classifier trained on the data's ground truth: held-out "
            f"accuracy {summary['classifier']['accuracy']:.4f} on {summary['classifier']['n_test']:,} images"
            + (
                f"; its style head explains {summary['classifier']['style_r2']:.2f} of the variance of the style "
                "factors (held-out R^2), so its features see colour, size and position as well as shape."
                if summary["classifier"].get("style_r2") is not None
                else "."
            ),
        ),
        ("h2", "Subtype proportions"),
        ("img", ("figures/proportions.png", "subtype shares per category, data and models")),
        ("table", _proportion_rows(summary)),
        ("h2", "Samples (first 32 per category)"),
    ]
    for r in rows:
        b.append(("h3", f"{r['model']}, guidance {r['guidance']:g}"))
        b.append(("img", (os.path.relpath(r["grid"], out), f"{r['model']} samples, guidance {r['guidance']:g}")))
    b.append(("h2", "Time (seconds)"))
    b.append(("table", (["step", "seconds"], [[k, f"{v:g}"] for k, v in t.items()])))
    b.append(
        (
            "p",
            "Run directories: "
            + ", ".join(f"`{d}`" for d in dict.fromkeys(r["run_dir"] for r in rows))
            + ". Each holds config.yaml, metrics.jsonl, checkpoints/, samples/, figures/ and eval.json.",
        )
    )
    return b


def write_report(out: Path, summary: dict[str, Any]) -> tuple[Path, Path]:
    from taxodiff.report import figures

    out = Path(out)
    cats = {c: {"subtypes": v["subtypes"], "p_data": v["p_data"]} for c, v in summary["rows"][0]["categories"].items()}
    series = {
        f"{r['model']} g={r['guidance']:g}": {c: v["proportions"] for c, v in r["categories"].items()}
        for r in summary["rows"]
    }
    figures.proportions_chart(cats, series, out / "figures" / "proportions.png")
    return write_pages(out, blocks(summary, out), "taxodiff demo report")
