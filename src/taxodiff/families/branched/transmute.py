"""Transmutation with a branched run: forward-diffuse images of class A to the time where the paths of A and B
part, then denoise them down B's branches. Scored by the domain classifier: the share of outputs it puts in B
(the target) and the share that stays A, for every ordered pair of classes, against the pair's branch time.
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path
from typing import Any

import torch

from taxodiff import runs, seeds
from taxodiff.errors import TaxodiffError


def transmute(
    run: Any,
    pairs: list[tuple[str, str]] | None = None,
    n: int = 16,
    scale: float = 1.0,
    progress: bool = True,
    seed: int | None = None,
) -> dict[str, Any]:
    """Transmute ``n`` training images of A into B for every pair (default: all ordered pairs) of a loaded
    branched run (:func:`taxodiff.api.load`); ``scale`` multiplies each pair's branch time (1: the branch point);
    ``seed`` (default: the run's) picks the images and the noise.
    Returns {"pairs": [...rows], "examples": {pair: (sources, outputs)}}."""
    from taxodiff.evaluate.classifier import domain_classifier, predict
    from taxodiff.evaluate.images import to_uint8, to_unit

    fam, module = run.family, run.module
    seed = run.cfg.seed if seed is None else seed
    pairs = _pairs(run, pairs)
    names, train = fam.hierarchy.leaf_names, fam.source.train_set()
    classifier, _ = domain_classifier(fam.source, module.device, progress)
    rows, examples = [], {}
    for a, b in pairs:
        t = min(max(round(module.tree.meet(a, b) * scale), 1), fam.process.T)
        mine = torch.nonzero(train.z1 == names.index(a)).flatten()
        pick = mine[torch.randperm(len(mine), generator=seeds.generator(seed, "transmute", a))[:n]]
        x0 = train.rows(pick).to(module.device)
        images = to_uint8(_down(run, x0, b, t, seed, a).clamp(-1, 1)).cpu()
        pred = predict(classifier, to_unit(images))
        share = {c: float((pred == names.index(c)).float().mean()) for c in (a, b)}
        rows.append(
            {
                "from": a,
                "to": b,
                "t": t / fam.process.T,
                "n": len(pick),
                "share_target": share[b],
                "share_source": share[a],
            }
        )
        examples[(a, b)] = (to_uint8(x0.cpu()), images)
    return {"scale": scale, "pairs": rows, "examples": examples}


def _pairs(run: Any, pairs: list[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """The ordered pairs asked (default: all), refused in one line unless the run is branched and each pair is
    two different classes of its tree."""
    from taxodiff.families.branched.module import BranchedModule

    if not isinstance(run.module, BranchedModule):
        raise TaxodiffError(f"transmutation follows a branched tree: this run's model is {run.family.name!r}")
    names = run.family.hierarchy.leaf_names
    pairs = pairs or list(permutations(names, 2))
    for a, b in pairs:
        for c in (a, b):
            if c not in names:
                raise TaxodiffError(f"class {c!r} is not in this run's tree: allowed are {', '.join(names)}")
        if a == b:
            raise TaxodiffError(f"transmuting {a!r} into itself: allowed are two different classes")
    return pairs


def _down(run: Any, x0: torch.Tensor, target: str, t: int, seed: int, source: str) -> torch.Tensor:
    """Images ``x0`` of class ``source`` noised to process time t, then denoised down ``target``'s branches on the
    run's sampling grid."""
    from taxodiff.noise import Noise

    fam, module = run.family, run.module
    process = fam.process
    noise = Noise.per_sample(seed, [("transmute", source, target, k) for k in range(len(x0))])
    heads = module.table[torch.full((len(x0),), fam.hierarchy.leaf_names.index(target), device=module.device)]
    times = [t, *[g for g in fam.grid(run.cfg.sample) if g < t]]

    def denoiser(y: torch.Tensor, tn: torch.Tensor) -> torch.Tensor:
        return module.net(y, tn, heads.gather(1, process.process_time(tn)[:, None]).squeeze(1))

    with torch.no_grad():
        xt = process.add_noise(x0, torch.full((len(x0),), t, device=module.device), noise)
        return process.sample(denoiser, xt, noise, t_from=t, t_to=0, grid=times)


def write(results: list[dict[str, Any]], out: Path, shown: int = 6) -> Path:
    """transmute.json (every scale's rows) and figures/transmute.png: the shares against the time the images were
    noised to (branch time x scale), and, for a few pairs at the first scale, sources above outputs."""
    from taxodiff.report.figures import pyplot, save

    out.mkdir(parents=True, exist_ok=True)
    runs.write_json(out / "transmute.json", [{k: v for k, v in r.items() if k != "examples"} for r in results])
    plt = pyplot()
    examples = results[0]["examples"]
    keys = list(examples)
    pairs = keys[:: max(1, len(keys) // shown)][:shown]
    fig = plt.figure(figsize=(10, 3.4 + 1.25 * len(pairs)))
    grid = fig.add_gridspec(1 + len(pairs), 1, height_ratios=[3.0] + [1.0] * len(pairs), hspace=0.7)
    ax = fig.add_subplot(grid[0])
    for r, marker in zip(results, "ovsd^", strict=False):
        t = [p["t"] for p in r["pairs"]]
        ax.scatter(
            t,
            [p["share_target"] for p in r["pairs"]],
            s=16,
            marker=marker,
            color="C0",
            label=f"the target B (scale {r['scale']:g})",
        )
        ax.scatter(
            t,
            [p["share_source"] for p in r["pairs"]],
            s=16,
            marker=marker,
            color="C1",
            facecolors="none",
            label=f"still the source A (scale {r['scale']:g})",
        )
    ax.set_xlabel("time the images were noised to (the pair's branch time x scale), t / T")
    ax.set_ylabel("share of outputs")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("transmutation A -> B: noised, then denoised down B's branches")
    for i, (a, b) in enumerate(pairs):
        src, dst = examples[(a, b)]
        k = min(12, len(src))
        strip = torch.cat([torch.cat(list(src[:k]), dim=-1), torch.cat(list(dst[:k]), dim=-1)], dim=-2)
        img = strip.permute(1, 2, 0).numpy()
        axi = fig.add_subplot(grid[1 + i])
        axi.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axi.set_axis_off()
        axi.set_title(f"{a} -> {b} at scale {results[0]['scale']:g}: sources (top), outputs (bottom)", fontsize=8)
    return save(fig, out / "figures" / "transmute.png")
