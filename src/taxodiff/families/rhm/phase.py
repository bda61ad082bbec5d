"""The RHM phase-transition study (Sclocchi, Favero, Wyart, PNAS 2025): noise a valid sequence to time t,
denoise it, and ask what survived.

For each t on a grid of fractions of T, held-out sequences are noised to x_t and denoised twice: by exact
posterior sampling (belief propagation draws x_0 ~ p(x_0 | x_t)) and by the trained model (its reverse
chain from t). Measured: the probability that the root class is kept, the share of tokens changed, the
share of symbols changed at every level of the tree, and the validity of the result. The class is kept
almost surely below a threshold time and is lost (down to chance, 1/n) above it, sharply, while the
share of changed tokens grows smoothly; deeper grammars sharpen the drop. Belief propagation alone is
also run on deeper grammars (same v, n, m, s) to show that.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from taxodiff import config, seeds
from taxodiff.config import RunConfig, to_dict
from taxodiff.data.rhm.source import RHMSource
from taxodiff.studies import Preset, Study
from taxodiff.studies.jobs import Context, Job, Measure, config_digest, run_dir


def _grid(fine: int, coarse: int, knee: float = 0.4) -> tuple[float, ...]:
    """``fine`` points up to ``knee`` (where the class is lost under the seed's schedule), ``coarse`` above."""
    low = [knee * (i + 1) / fine for i in range(fine)]
    high = [knee + (1 - knee) * (i + 1) / coarse for i in range(coarse)]
    return tuple(round(f, 4) for f in low + high)


@dataclass(frozen=True)
class PhasePreset(Preset):
    fractions: tuple[float, ...] = _grid(16, 6)  # t / T
    n_sequences: int = 512  # held-out sequences noised at every t
    depths: tuple[int, ...] = (3, 5, 7)  # belief propagation alone on grammars of these depths
    train_steps: int = 4000  # steps of the model trained when no run directory is given
    run_dir: Path | None = None  # a trained run to use (None: train one under the study's folder)


PRESETS = {
    "quick": PhasePreset("quick", "minutes on 2 CPU cores"),
    "full": PhasePreset(
        "full", "hours", fractions=_grid(40, 12), n_sequences=2048, depths=(3, 4, 5, 6, 7, 8), train_steps=16000
    ),
}


def process_time(family: Any, fraction: float) -> int:
    """The process time (1..T) of a fraction of T."""
    return max(1, round(fraction * family.process.T))


def measure(family: Any, module: Any, x0: Any, t: int, noise: Any, denoiser: str) -> dict[str, Any]:
    """Noise ``x0`` (B, N) to time ``t``, denoise with ``denoiser`` ("bp": one exact draw of x_0 from
    p(x_0 | x_t); "model": the trained reverse chain from t), compare with ``x0``."""
    import torch

    g = family.grammar
    xt = family.noise_to(x0, t, noise)
    if denoiser == "bp":
        out = family.exact_x0(xt, torch.full((len(x0),), t, dtype=torch.long, device=x0.device), noise)
    else:
        out = family.denoise(module, xt, t, noise, "model")
    before, after = g.parse(x0.cpu()), g.parse(out.cpu())
    changed = [float((a != b).float().mean()) for a, b in zip(after.symbols, before.symbols, strict=True)]
    return {
        "class_kept": float((after.classes == before.classes).float().mean()),
        "tokens_changed": changed[-1],
        "symbols_changed": changed,  # level 0 (the class) .. L (the tokens); invalid parses count as changed
        "valid": float((after.classes >= 0).float().mean()),
    }


def jobs(cfg: RunConfig, preset: PhasePreset, ctx: Context) -> list[Job | Measure]:
    """The model (trained unless the preset names a run), then one measurement per (depth, t, denoiser): the
    trained model and exact denoising on the config's grammar, exact denoising alone on the deeper ones."""
    out: list[Job | Measure] = []
    cfg = _base(cfg, preset)
    model_cfg = config.with_overrides(cfg, {"train.steps": preset.train_steps})
    where = preset.run_dir or run_dir(ctx.out, "model", cfg.seed, model_cfg.model)
    if preset.run_dir is None:
        out.append(Job("model", cfg.seed, model_cfg, settings=()))
    digest = f"{config_digest(model_cfg)}-{where}-{preset.n_sequences}-seed{cfg.seed}"
    model = _Model(where, cfg)
    for f in preset.fractions:
        for denoiser in ("bp", "model"):
            key = {"L": cfg.data.L, "fraction": f, "denoiser": denoiser}
            out.append(Measure(key, partial(model.measure, f, denoiser, preset.n_sequences), digest))
    for depth in preset.depths:
        if depth != cfg.data.L:
            deep = _Deep(cfg, depth, preset.n_sequences)
            out += [
                Measure({"L": depth, "fraction": f, "denoiser": "bp"}, partial(deep.measure, f), digest)
                for f in preset.fractions
            ]
    return out


def _base(cfg: RunConfig, preset: PhasePreset) -> RunConfig:
    """The study's config: a given run's own (its grammar and network) with the study's seed and device, or the
    user's."""
    if preset.run_dir is None:
        return cfg
    from taxodiff import runs

    _, stored, _ = runs.stored_config(preset.run_dir)
    return config.with_overrides(stored, {"seed": cfg.seed, "device": cfg.device})


class _Model:
    """The trained run, loaded at its first measurement; its held-out sequences."""

    def __init__(self, where: Path, cfg: RunConfig) -> None:
        self.where, self.seed, self.device = where, cfg.seed, cfg.device  # the study's seed picks its noise
        self.run: Any = None

    def measure(self, fraction: float, denoiser: str, n: int) -> dict[str, Any]:
        import torch

        from taxodiff import api
        from taxodiff.noise import Noise
        from taxodiff.train.distributed import resolve_device

        if self.run is None:
            self.run = api.load(self.where, resolve_device(self.device))
        fam = self.run.family
        _, test = fam.source.sequences()
        t = process_time(fam, fraction)
        with torch.no_grad():
            noise = Noise.from_seed(self.seed, "phase", denoiser, t)
            r = measure(fam, self.run.module, test[:n].to(self.run.module.device), t, noise, denoiser)
        return {"t": t, "checkpoint_step": self.run.step, **r}


class _Deep:
    """Exact denoising alone on a deeper grammar (same v, n, m, s): no network."""

    def __init__(self, cfg: RunConfig, depth: int, n: int) -> None:
        self.cfg, self.depth, self.n, self.family, self.clean = cfg, depth, n, None, None

    def measure(self, fraction: float) -> dict[str, Any]:
        from taxodiff.families import get_family
        from taxodiff.noise import Noise

        if self.family is None:
            deep = config.with_overrides(self.cfg, {"data.L": self.depth, "net.depth": 0})
            self.family = get_family(deep.model)(deep)
            seed = seeds.derive(self.cfg.seed, "phase-deep", self.depth)
            self.clean = self.family.grammar.sample(self.n, seed=seed, replace=True).tokens
        t = process_time(self.family, fraction)
        noise = Noise.from_seed(self.cfg.seed, "phase", "bp", self.depth, t)
        return {"t": t, **measure(self.family, None, self.clean, t, noise, "bp")}


def summarise(cfg: RunConfig, preset: PhasePreset, rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    cfg = _base(cfg, preset)
    model = next((r for r in rows if r["denoiser"] == "model"), {})
    where = preset.run_dir or run_dir(out, "model", cfg.seed, cfg.model)
    rows = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    return {
        "config": to_dict(cfg),
        "run_dir": str(where),
        "checkpoint_step": model.get("checkpoint_step"),
        "rows": rows,
        "thresholds": thresholds(rows, cfg.data.n),
    }


def thresholds(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Per (depth, denoiser): the t/T at which the class-kept probability first falls below the midpoint
    between 1 and chance 1/n (linear interpolation between grid points), or None if it never does."""
    level = (1 + 1 / n) / 2
    out = []
    for key in dict.fromkeys((r["L"], r["denoiser"]) for r in rows):
        curve = sorted((r["fraction"], r["class_kept"]) for r in rows if (r["L"], r["denoiser"]) == key)
        at = None
        for (f0, p0), (f1, p1) in zip(curve, curve[1:], strict=False):
            if p0 >= level > p1:
                at = f0 + (p0 - level) / (p0 - p1) * (f1 - f0)
                break
        changed = None
        if at is not None:  # the share of tokens changed at the threshold, interpolated the same way
            tc = sorted((r["fraction"], r["tokens_changed"]) for r in rows if (r["L"], r["denoiser"]) == key)
            for (f0, c0), (f1, c1) in zip(tc, tc[1:], strict=False):
                if f0 <= at <= f1:
                    changed = c0 + (at - f0) / (f1 - f0) * (c1 - c0)
                    break
        out.append(
            {"L": key[0], "denoiser": key[1], "midpoint": level, "threshold_fraction": at, "tokens_changed": changed}
        )
    return out


def _plot(summary: dict[str, Any], out: Path) -> list[Path]:
    from taxodiff.report.figures import pyplot, save

    plt = pyplot()
    rows, L, n = summary["rows"], summary["config"]["data"]["L"], summary["config"]["data"]["n"]
    paths = []
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for denoiser, style in (("bp", "-"), ("model", "--")):
        mine = [r for r in rows if r["L"] == L and r["denoiser"] == denoiser]
        fs = [r["fraction"] for r in mine]
        name = "exact (BP)" if denoiser == "bp" else "trained model"
        ax.plot(fs, [r["class_kept"] for r in mine], style, color="C0", marker="o", ms=3, label=f"class kept, {name}")
        ax.plot(
            fs,
            [r["tokens_changed"] for r in mine],
            style,
            color="C3",
            marker="s",
            ms=3,
            label=f"tokens changed, {name}",
        )
    ax.axhline(1 / n, color="grey", ls=":", lw=1, label="chance 1/n")
    ax.set(
        xlabel="noise time t / T",
        ylabel="probability / share",
        ylim=(-0.02, 1.02),
        title=f"noise to t, denoise: what survives (L = {L})",
    )
    ax.legend(fontsize=7)
    paths.append(save(fig, out / "figures" / "phase_transition.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    mine = [r for r in rows if r["L"] == L and r["denoiser"] == "bp"]
    fs = [r["fraction"] for r in mine]
    for level in range(L + 1):
        axes[0].plot(
            fs,
            [r["symbols_changed"][level] for r in mine],
            marker="o",
            ms=3,
            label="class" if level == 0 else ("tokens" if level == L else f"level {level}"),
        )
    axes[0].set(xlabel="t / T", ylabel="share changed", ylim=(-0.02, 1.02), title="exact denoising: changes per level")
    axes[0].legend(fontsize=7)
    depths = sorted({r["L"] for r in rows})
    cols = plt.cm.viridis([i / max(1, len(depths) - 1) for i in range(len(depths))])
    for depth, col in zip(depths, cols, strict=True):
        d = [r for r in rows if r["L"] == depth and r["denoiser"] == "bp"]
        axes[1].plot(
            [r["fraction"] for r in d], [r["class_kept"] for r in d], color=col, marker="o", ms=3, label=f"L = {depth}"
        )
    axes[1].axhline(1 / n, color="grey", ls=":", lw=1)
    axes[1].set(xlabel="t / T", ylabel="class kept", ylim=(-0.02, 1.02), title="exact denoising: deeper grammars")
    axes[1].legend(fontsize=7)
    paths.append(save(fig, out / "figures" / "levels_and_depths.png"))
    return paths


def report(summary: dict[str, Any], rows: list[dict[str, Any]], out: Path) -> list[tuple[str, Any]]:
    """The figures (under ``out/figures``) and the report's blocks."""
    _plot(summary, out)
    g, d = summary["config"]["data"], summary["config"]["diffusion"]
    L = g["L"]
    found = []
    for th in summary["thresholds"]:
        who = "exact denoising" if th["denoiser"] == "bp" else "the trained model"
        at = th["threshold_fraction"]
        found.append(
            f"L = {th['L']}, {who}: the class-kept probability falls below {th['midpoint']:.3f} at t/T = {at:.3f}, "
            f"when {th['tokens_changed']:.2f} of the tokens have changed."
            if at is not None
            else f"L = {th['L']}, {who}: the class-kept probability stays above {th['midpoint']:.3f} over the grid."
        )
    rows = [r for r in summary["rows"] if r["L"] == L]
    head = ["t/T", "t", "denoiser", "class kept", "tokens changed", "valid"] + [f"changed l{k}" for k in range(1, L)]
    body = [
        [
            f"{r['fraction']:.3f}",
            str(r["t"]),
            r["denoiser"],
            f"{r['class_kept']:.3f}",
            f"{r['tokens_changed']:.3f}",
            f"{r['valid']:.3f}",
        ]
        + [f"{x:.3f}" for x in r["symbols_changed"][1:L]]
        for r in rows
    ]
    bl: list[tuple[str, Any]] = [
        ("h1", "taxodiff study rhm-phase-transition"),
        (
            "p",
            f"Grammar v = {g['v']}, n = {g['n']}, m = {g['m']}, s = {g['s']}, L = {L}; {d['process']} process, "
            f"T = {d['num_steps']}. Trained model: `{summary['run_dir']}` at step {summary['checkpoint_step']:,}. "
            f"Held-out sequences noised at each t; preset {summary['preset']}, {summary['seconds']:.0f} s.",
        ),
        ("h2", "Findings"),
        *[("p", f) for f in found],
        ("img", ("figures/phase_transition.png", "class kept and tokens changed against t")),
        ("img", ("figures/levels_and_depths.png", "changes per level; class kept for deeper grammars")),
        (
            "p",
            "class kept: share of denoised sequences that parse to the original root class (an invalid result "
            "counts as lost). tokens changed: share of leaves that differ. changed l: share of level-l symbols "
            "that differ (invalid parses count as changed). Exact denoising draws x_0 from p(x_0 | x_t) by "
            "belief propagation; the trained model runs its reverse chain from t.",
        ),
        ("h2", f"Every measurement (L = {L})"),
        ("table", (head, body)),
    ]
    return bl


STUDY = Study(
    name="rhm-phase-transition",
    help="RHM: noise to t, denoise (BP and a model), class kept vs t",
    title="taxodiff rhm-phase-transition report",
    kinds=("sequences",),
    presets=PRESETS,
    default_out="runs/study-rhm-phase",
    jobs=jobs,
    summarise=summarise,
    report=report,
    defaults={"data.source": RHMSource.name},
)
