"""The RHM learning study: how validity (per level) and copying of training sequences evolve with the
training-set size P and with training time (Favero, Sclocchi et al. 2025, Fig. 2).

For every architecture and P, one run trains at a constant learning rate and is sampled at each of the
preset's step marks (training resumes between marks, so the marks lie on one trajectory). Every
evaluation is a row of ``<out>/results.jsonl`` naming its run directory. Exact sampling by belief
propagation is the reference: it is always valid and copies a training sequence with probability
P / (number of valid sequences). The report is written from the rows; every run lives in
``<out>/<arch>/P<size>/seed<k>/rhm``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taxodiff import config
from taxodiff.config import RunConfig, to_dict
from taxodiff.data.rhm.source import RHMSource
from taxodiff.studies import Preset, Study
from taxodiff.studies.jobs import Context, Job


@dataclass(frozen=True)
class LearningPreset(Preset):
    sizes: tuple[int, ...] = (256, 1024, 4096)  # training-set sizes P
    marks: tuple[int, ...] = (500, 1500, 4000)  # training steps at which each run is sampled and scored
    archs: tuple[str, ...] = ("tree_unet",)  # "tree_unet", "transformer"
    n_samples: int = 512


PRESETS = {
    "quick": LearningPreset("quick", "minutes on 2 CPU cores"),
    "full": LearningPreset(
        "full",
        "hours",
        sizes=(128, 256, 512, 1024, 2048, 4096, 8192),
        marks=(500, 1000, 2000, 4000, 8000, 16000, 32000),
        archs=("tree_unet", "transformer"),
        n_samples=2048,
    ),
}


def jobs(cfg: RunConfig, preset: LearningPreset, ctx: Context | None = None) -> list[Job]:
    """One training trajectory per (architecture, P), evaluated at every step mark (training resumes)."""
    out = []
    for arch in preset.archs:
        for size in preset.sizes:
            for mark in preset.marks:
                over = {
                    "net.arch": arch,
                    "data.n_train": size,
                    "train.steps": mark,
                    "sample.n_samples": preset.n_samples,
                }
                labels = {"arch": arch, "P": size, "step": mark}
                out.append(Job(f"{arch}/P{size}", cfg.seed, config.with_overrides(cfg, over), labels=labels))
    return out


def summarise(cfg: RunConfig, preset: LearningPreset, rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """The rows (with their epochs) and exact sampling's reference."""
    batch = cfg.train.batch_size
    rows = [r | {"epochs": round(r["step"] * batch / r["P"], 1)} for r in rows]
    return {"config": to_dict(cfg), "rows": rows, "reference": reference(cfg, preset)}


def reference(cfg: RunConfig, preset: LearningPreset) -> dict[str, Any]:
    """Exact sampling (belief propagation) from the grammar: validity and copies of each training set."""
    from taxodiff import seeds
    from taxodiff.data import get_source
    from taxodiff.metrics.rhm import copies

    g = get_source(cfg.data.source)(cfg).grammar
    tokens = g.sample(preset.n_samples, seed=seeds.derive(cfg.seed, "rhm-reference"), replace=True).tokens
    out = {"num_sequences": g.num_sequences, "chance": [g.chance_validity(k) for k in range(1, cfg.data.L + 1)]}
    out["copies"] = {}
    for size in preset.sizes:
        sized = config.with_overrides(cfg, {"data.n_train": size})
        train, _ = get_source(cfg.data.source)(sized).sequences()
        out["copies"][str(size)] = {"measured": copies(tokens, train)["copies"], "expected": size / g.num_sequences}
    return out


# -- report ---------------------------------------------------------------------------------------------
def findings(summary: dict[str, Any]) -> list[str]:
    rows, ref = summary["rows"], summary["reference"]
    out = []
    for arch in dict.fromkeys(r["arch"] for r in rows):
        for size in dict.fromkeys(r["P"] for r in rows if r["arch"] == arch):
            mine = [r for r in rows if r["arch"] == arch and r["P"] == size]
            last = mine[-1]
            best = max(mine, key=lambda r: r["validity"][-1])
            exp = ref["copies"][str(size)]["expected"]
            out.append(
                f"{arch}, P = {size:,}: after {last['step']:,} steps ({last['train_seconds']:.0f} s of training) "
                f"{last['validity'][-1]:.3f} of generated sequences are fully valid "
                f"(level 1: {last['validity'][0]:.3f}; "
                f"chance {ref['chance'][-1]:.1e}), best {best['validity'][-1]:.3f} at step {best['step']:,}; "
                f"{last['copies']:.3f} are copies of training sequences (exact sampling: {exp:.3f})."
            )
    return out


def _plot(summary: dict[str, Any], out: Path) -> list[Path]:
    """The study's three figures (PNG under out/figures)."""
    from taxodiff.report.figures import pyplot

    plt = pyplot()
    rows = summary["rows"]
    archs = list(dict.fromkeys(r["arch"] for r in rows))
    sizes = list(dict.fromkeys(r["P"] for r in rows))
    colours = plt.cm.viridis([i / max(1, len(sizes) - 1) for i in range(len(sizes))])
    return [
        _plot_trajectories(summary, archs, sizes, colours, out / "figures" / "validity_and_copies.png"),
        _plot_against_size(summary, archs, sizes, out / "figures" / "validity_vs_P.png"),
        _plot_loss_by_time(summary, archs, sizes, colours, out / "figures" / "loss_by_time.png"),
    ]


def _plot_trajectories(summary: dict[str, Any], archs: list, sizes: list, colours: Any, path: Path) -> Path:
    """Validity and copies against training steps, one line per (architecture, P)."""
    from taxodiff.report.figures import pyplot, save

    rows, ref, L = summary["rows"], summary["reference"], summary["config"]["data"]["L"]
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4))
    for arch, style in zip(archs, ("-", "--"), strict=False):
        for size, col in zip(sizes, colours, strict=True):
            mine = [r for r in rows if r["arch"] == arch and r["P"] == size]
            if not mine:
                continue
            steps = [r["step"] for r in mine]
            axes[0].plot(
                steps, [r["validity"][-1] for r in mine], style, color=col, marker="o", label=f"{arch} P={size}"
            )
            axes[0].plot(steps, [r["validity"][0] for r in mine], style, color=col, alpha=0.35)
            axes[1].plot(steps, [r["copies"] for r in mine], style, color=col, marker="o", label=f"{arch} P={size}")
            axes[1].axhline(ref["copies"][str(size)]["expected"], color=col, ls=":", lw=1)
    axes[0].axhline(ref["chance"][-1], color="grey", ls=":", lw=1)
    axes[0].set(
        xscale="log",
        xlabel="training steps",
        ylabel="share valid",
        ylim=(-0.02, 1.02),
        title=f"validity: whole sequence (bold), level 1 (faint); L = {L}",
    )
    axes[1].set(
        xscale="log",
        xlabel="training steps",
        ylabel="share of copies",
        ylim=(-0.02, 1.02),
        title="copies of training sequences (dotted: exact sampling)",
    )
    marks = sorted({r["step"] for r in rows})
    for ax in axes:
        _log_ticks(ax, marks)
    axes[0].legend(fontsize=7)
    return save(fig, path)


def _plot_against_size(summary: dict[str, Any], archs: list, sizes: list, path: Path) -> Path:
    """Validity per level and copies against P after the last step."""
    from taxodiff.report.figures import pyplot, save

    rows, ref, L = summary["rows"], summary["reference"], summary["config"]["data"]["L"]
    fig, ax = pyplot().subplots(figsize=(5.5, 4))
    for arch, style in zip(archs, ("-", "--"), strict=False):
        finals = [
            [r for r in rows if r["arch"] == arch and r["P"] == s][-1]
            for s in sizes
            if any(r["arch"] == arch and r["P"] == s for r in rows)
        ]
        ps = [r["P"] for r in finals]
        for level in range(L):
            ax.plot(ps, [r["validity"][level] for r in finals], style, marker="o", label=f"{arch} level {level + 1}")
        ax.plot(ps, [r["copies"] for r in finals], style, color="black", marker="x", label=f"{arch} copies")
    ax.plot(
        sizes, [ref["copies"][str(p)]["expected"] for p in sizes], ":", color="black", label="copies, exact sampling"
    )
    ax.set(
        xscale="log",
        xlabel="training sequences P",
        ylabel="share",
        ylim=(-0.02, 1.02),
        title=f"after {max(r['step'] for r in rows):,} steps",
    )
    _log_ticks(ax, sizes)
    ax.legend(fontsize=7)
    return save(fig, path)


def _plot_loss_by_time(summary: dict[str, Any], archs: list, sizes: list, colours: Any, path: Path) -> Path:
    """Training and held-out loss per window of diffusion time, first architecture, last step."""
    from taxodiff.report.figures import pyplot, save

    rows = summary["rows"]
    fig, ax = pyplot().subplots(figsize=(5.5, 4))
    for size, col in zip(sizes, colours, strict=True):
        mine = [r for r in rows if r["arch"] == archs[0] and r["P"] == size]
        if not mine or not mine[-1]["loss_train"]:
            continue
        k = len(mine[-1]["loss_train"])
        centres = [(i + 0.5) / k for i in range(k)]
        ax.plot(centres, mine[-1]["loss_train"], "-", color=col, marker="o", ms=3, label=f"P={size} train")
        ax.plot(centres, mine[-1]["loss_test"], "--", color=col, marker="o", ms=3, label=f"P={size} held out")
    ax.set(
        yscale="log",
        xlabel="diffusion time t / T",
        ylabel="loss per token",
        title=f"{archs[0]}: loss by time window, last step",
    )
    ax.legend(fontsize=7)
    return save(fig, path)


def _log_ticks(ax: Any, values: list[int]) -> None:
    """Label a log axis at the given values only, written out in full."""
    ax.set_xticks(values)
    ax.set_xticklabels([f"{v:,}" for v in values])
    ax.minorticks_off()


def report(summary: dict[str, Any], rows: list[dict[str, Any]], out: Path) -> list[tuple[str, Any]]:
    """The figures (under ``out/figures``) and the report's blocks."""
    _plot(summary, out)
    return blocks(summary)


def _table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    L = summary["config"]["data"]["L"]
    head = ["arch", "P", "step", "train s"] + [f"valid l{k}" for k in range(1, L + 1)]
    head += ["copies", "distinct", "class KL", "run"]
    body = [
        [r["arch"], f"{r['P']:,}", f"{r['step']:,}", f"{r['train_seconds']:.0f}"]
        + [f"{x:.3f}" for x in r["validity"]]
        + [
            f"{r['copies']:.3f}",
            f"{r['distinct']:.3f}",
            "" if r["class_kl"] is None else f"{r['class_kl']:.4f}",
            f"`{r['run_dir']}`",
        ]
        for r in summary["rows"]
    ]
    return head, body


def blocks(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    cfg, rows, ref = summary["config"], summary["rows"], summary["reference"]
    g = cfg["data"]
    L = g["L"]
    chance_seq = [p ** (g["s"] ** (L - k)) for k, p in enumerate(ref["chance"], start=1)]
    exact = ", ".join(
        f"P = {int(k):,}: {v['measured']:.3f} (expected {v['expected']:.3f})" for k, v in ref["copies"].items()
    )
    return [
        ("h1", "taxodiff study rhm-learning"),
        (
            "p",
            f"Grammar: v = {g['v']}, n = {g['n']}, m = {g['m']}, s = {g['s']}, L = {L} "
            f"(rules seed {g['seed_rules']}): {ref['num_sequences']:,} valid sequences of {g['s'] ** L} tokens. "
            f"Process: {cfg['diffusion']['process']}, T = {cfg['diffusion']['num_steps']}; "
            f"batch {cfg['train']['batch_size']}, learning rate {cfg['train']['lr']:g} "
            f"({cfg['train']['lr_schedule']}); {rows[0]['n'] if rows else 0} samples per evaluation. Preset "
            f"{summary['preset']}, {summary['seconds']:.0f} s.",
        ),
        ("h2", "Findings"),
        *[("p", f) for f in findings(summary)],
        ("img", ("figures/validity_and_copies.png", "validity and copies against training steps")),
        ("img", ("figures/validity_vs_P.png", "validity per level and copies against P")),
        ("img", ("figures/loss_by_time.png", "training and held-out loss by diffusion time window")),
        (
            "p",
            "Loss by time window: the training loss of the last checkpoint on training sequences and on held-out "
            "ones, with t drawn inside each tenth of [0, T]. Where the two part, the model has memorised "
            "rather than learned the rules at that noise level.",
        ),
        ("h2", "Every evaluation"),
        ("table", _table(summary)),
        (
            "p",
            "valid l: share of generated sequences whose every subtree spanning l levels is a valid derivation "
            "(l = L: the whole sequence). Chance for random tokens, per sequence: "
            + ", ".join(f"l{k} {p:.2e}" for k, p in enumerate(chance_seq, start=1))
            + ". copies: share equal to a training sequence; distinct: share of distinct sequences among the "
            "samples. class KL: KL(uniform || generated class frequencies) over valid samples (0.5 added to "
            "each count).",
        ),
        (
            "p",
            "Exact sampling by belief propagation, the reference: every sample valid; copies of the training set "
            f"{exact}.",
        ),
    ]


STUDY = Study(
    name="rhm-learning",
    help="RHM: validity per level and copies against P and training time",
    title="taxodiff rhm-learning report",
    kinds=("sequences",),
    presets=PRESETS,
    default_out="runs/study-rhm-learning",
    jobs=jobs,
    summarise=summarise,
    report=report,
    defaults={"data.source": RHMSource.name},
)
