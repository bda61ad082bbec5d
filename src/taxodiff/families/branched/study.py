"""The branched study (seed 004) on an image source with a class tree: branched diffusion against its
label-conditioned baseline of equal size, cached all-class sampling, continual learning and transmutation.

1. Over seeds: a branched run (its tree discovered on the training data; every seed's before any baseline) and
   a labelled run whose widths are matched to its parameter count, same steps, batch and data. Both answer the
   coarse request (each category, its classes drawn from p(class | category)), scored by the mode metrics, and a
   request of every class, scored per class (classifier accuracy, Fréchet distance in the classifier's features).
2. On the first seed's branched run: per-class against cached all-class sampling, same model and grid:
   network evaluations, wall clock, and the tree's theoretical ratio C / (sum of branch lengths).
3. Continual learning (first seed): both families trained without one class, then extended by it (branched:
   its new leaf branch only; labelled: fine-tuned on the new class alone and on all); old classes' samples
   compared bit for bit (branched) and a per-class table before and after.
4. Transmutation (first seed's branched run): every ordered pair of classes, the share the classifier puts in
   the target class and the share that stays the source, against the pair's branch time.

The ``seeds`` preset runs part 1 alone: a variant (``net.head_levels``, ``net.branch_network``) against its
baseline at a fraction of the cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from taxodiff import config, runs
from taxodiff.config import RunConfig
from taxodiff.errors import TaxodiffError
from taxodiff.families.branched.family import Branched
from taxodiff.families.labelled.family import Labelled
from taxodiff.studies import Preset, Study
from taxodiff.studies.jobs import Context, Job, Measure, config_digest, run_dir

REQUESTS = ({"request": "categories"}, {"request": "classes"})
TRANSMUTE_SCALES = (1.0, 0.5, 0.25)  # images noised to the branch time, and to a half and a quarter of it
PARTS = ("speed", "continual", "transmute")  # parts 2-4, on the first seed's branched run


@dataclass(frozen=True)
class BranchedPreset(Preset):
    per_class: int = 64  # samples per class of the class requests
    transmute_n: int = 16  # images per ordered pair of classes
    parts: tuple[str, ...] = PARTS  # what runs on the first seed after the runs over seeds


PRESETS = {
    "default": BranchedPreset(
        "default",
        "3 seeds at the config's budget, 64 samples per class (about 40 min on 2 CPU cores for sklearn's 8x8 images)",
        3,
    ),
    "quick": BranchedPreset("quick", "1 seed, 32 samples per class, 8 images per transmuted pair", 1, {}, 32, 8),
    "seeds": BranchedPreset(
        "seeds",
        "3 seeds of the branched run and its equal-size baseline only: no sampling speed, continual learning or "
        "transmutation (a variant's comparison at a third of the default preset's cost)",
        3,
        parts=(),
    ),
}


def _cfg(cfg: RunConfig, model: str, seed: int, extra: dict[str, Any] | None = None) -> RunConfig:
    """The user's config for another family and seed (keys of the other family are set aside, not lost)."""
    return config.with_overrides(cfg, {"model": model, "seed": seed, **(extra or {})})


def _matched(trained: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The labelled baseline's widths matched to the branched run's parameter count."""
    return {"net.match_parameters": trained[Branched.name]["parameters"]}


def jobs(cfg: RunConfig, preset: BranchedPreset, ctx: Context) -> list[Job | Measure]:
    """Over seeds: a branched run and its equal-size labelled baseline (part 1); on the first seed: cached
    sampling's speed, continual learning and transmutation (parts 2-4)."""
    out: list[Job | Measure] = []
    sampling = {"sample.n_per_class": preset.per_class}
    seeds = range(cfg.seed, cfg.seed + preset.seeds)
    for seed in seeds:  # every branched run first: a study stopped early has the variant over every seed
        out.append(Job("reference", seed, _cfg(cfg, Branched.name, seed, sampling), REQUESTS))
    for seed in seeds:
        labelled = _cfg(cfg, Labelled.name, seed, sampling)
        out.append(Job("reference", seed, labelled, REQUESTS, needs=(Branched.name,), configure=_matched))
    first = run_dir(ctx.out, "reference", cfg.seed, Branched.name)
    digest = f"{config_digest(_cfg(cfg, Branched.name, cfg.seed, sampling))}-{preset.per_class}-{preset.transmute_n}"

    def continual_part() -> dict[str, Any]:
        try:
            return continual(cfg, ctx.out / "continual" / f"seed{cfg.seed}", preset.per_class, ctx.progress)
        except TaxodiffError as e:  # a class tree written as mappings: no class to leave out and add back
            return {"skipped": str(e)}

    parts = {
        "tree": lambda: {"tree": tree_of(first)},
        "speed": lambda: {"speed": speed(first, preset.per_class, ctx.progress)},
        "continual": lambda: {"continual": continual_part()},
        "transmute": lambda: {"transmute": transmutations(first, preset, ctx)},
    }
    chosen = ("tree", *preset.parts)
    return out + [Measure({"part": name}, parts[name], digest) for name in chosen]


def tree_of(where: Path) -> dict[str, Any]:
    """The branched run's tree (discovered on its training data), for the report's figure."""
    from taxodiff import api

    return api.load(where).module.tree.to_json()


def speed(where: Path, per_class: int, progress: bool) -> dict[str, Any]:
    """Per-class against cached all-class sampling of one branched run, same grid (part 2): network
    evaluations (counted by a forward hook on the network) and seconds."""
    from taxodiff import api

    run = api.load(where)
    fam, module = run.family, run.module
    names, tree = fam.hierarchy.leaf_names, module.tree
    sc = replace(run.cfg.sample, n_per_class=per_class)
    grid = fam.grid(sc)
    out: dict[str, Any] = {"n_classes": len(names), "per_class": per_class, "steps": sc.steps}
    fam.generate(module, replace(sc, request="classes-cached", n_per_class=2), 0, False)  # warm-up, not timed
    for request in ("classes", "classes-cached"):
        rows: list[int] = []  # the batch size of every network call
        hook = module.net.register_forward_hook(lambda net, args, output, rows=rows: rows.append(len(args[0])))
        t0 = time.perf_counter()
        fam.generate(module, replace(sc, request=request), 0, progress)
        out[request] = {"seconds": time.perf_counter() - t0, "evaluations": sum(rows)}
        hook.remove()
    out["evaluation_ratio"] = out["classes"]["evaluations"] / out["classes-cached"]["evaluations"]
    out["time_ratio"] = out["classes"]["seconds"] / out["classes-cached"]["seconds"]
    out["theory"] = len(names) / tree.total_length()
    out["grid_theory"] = len(names) * (len(grid) - 1) / sum(len(tree.grid_steps(grid, b)) for b in tree.branches)
    return out


def held_out_class(cfg: RunConfig) -> tuple[str, str]:
    """(class, category) left out and added back in the continual part: the last class of the last category."""
    spec = config.to_dict(cfg).get("hierarchy") or {}
    lists = [(k, v) for k, v in spec.items() if isinstance(v, list) and len(v) > 1]
    if not lists:
        raise TaxodiffError("the continual-learning part needs a class tree written as lists of classes per category")
    category, classes = lists[-1]
    return str(classes[-1]), category


def continual(cfg: RunConfig, out: Path, per_class: int, progress: bool) -> dict[str, Any]:
    """Continual learning on the first seed (part 3): both families trained without one class, then extended by
    it; every run's class samples scored by the full tree's classifier."""
    from taxodiff import api

    label, under = held_out_class(cfg)
    where = continual_runs(cfg, out, label, under, progress)
    result: dict[str, Any] = {"class": label, "under": under, "steps": max(1, cfg.train.steps // 2), "runs": {}}
    judge = api.load(where[f"{Branched.name} after"]).family  # every run scored on the full tree, one classifier
    for name, path in where.items():
        _, samples = api.sample(path, {"request": "classes", "n_per_class": per_class}, progress=progress)
        ev = score_on(judge, samples, api.load(path).family.hierarchy.leaf_names, progress)
        result["runs"][name] = {
            "accuracy": ev["classes"]["accuracy"],
            "per_class": ev.get("features", {}).get("classes", {}).get("per_class"),
        }
    result["bit_identical"] = _identical(where[f"{Branched.name} before"], where[f"{Branched.name} after"])
    return result


def continual_runs(cfg: RunConfig, out: Path, label: str, under: str, progress: bool) -> dict[str, Path]:
    """The five runs of the continual part (trained, or resumed), by name."""
    from taxodiff import api

    spec = config.to_dict(cfg)["hierarchy"]
    without = {k: [c for c in v if c != label] if isinstance(v, list) else v for k, v in spec.items()}
    sampling = {"sample.request": "classes", "hierarchy": without}
    b, lab = Branched.name, Labelled.name
    where = {f"{b} before": out / f"{b}-before", f"{lab} before": out / f"{lab}-before"}
    api.train(_cfg(cfg, b, cfg.seed, sampling), where[f"{b} before"], progress=progress)
    params = runs.read_json(where[f"{b} before"] / "train.json")["parameters"]
    lcfg = _cfg(cfg, lab, cfg.seed, sampling | {"net.match_parameters": params})
    api.train(lcfg, where[f"{lab} before"], progress=progress)
    children = {
        f"{b} after": (f"{b} before", {}),
        f"{lab}, new class only": (f"{lab} before", {"train.continual_data": "new"}),
        f"{lab}, all classes": (f"{lab} before", {"train.continual_data": "all"}),
    }
    steps = max(1, cfg.train.steps // 2)
    for name, (parent, extra) in children.items():
        child = api.add_class_config(where[parent], label, under, {"train.steps": steps, **extra})
        where[name] = out / name.replace(",", "").replace(" ", "-")
        api.train(child, where[name], progress=progress)
    return where


def score_on(family: Any, samples: dict[str, Any], names: list[str], progress: bool) -> dict[str, Any]:
    """Samples of a run with classes ``names`` scored by ``family`` (whose tree holds those classes and more):
    its classifier and references, so runs before and after adding a class are measured alike."""
    import torch

    from taxodiff.families import images

    h = family.hierarchy
    leaf = torch.tensor([h.leaf_names.index(names[i]) for i in samples["leaf"].tolist()])
    moved = {**samples, "leaf": leaf, "z2": torch.tensor(h.leaf_category())[leaf]}
    result, _ = images.evaluation(family, moved, "cpu", progress)
    return result


def _identical(before: Path, after: Path) -> bool:
    """Whether every old class's samples are the same bytes in both runs (request classes, same seed)."""
    import torch

    from taxodiff import api

    a = runs.load_samples(next((before / "samples").glob("*classes*.safetensors")))
    b = runs.load_samples(next((after / "samples").glob("*classes*.safetensors")))
    old, new = api.load(before).family.hierarchy.leaf_names, api.load(after).family.hierarchy.leaf_names
    return all(
        torch.equal(a["images"][a["leaf"] == i], b["images"][b["leaf"] == new.index(name)])
        for i, name in enumerate(old)
    )


def transmutations(first: Path, preset: BranchedPreset, ctx: Context) -> list[dict[str, Any]]:
    """Transmutation of the first seed's branched run at every scale (part 4); transmute.json and its figure."""
    from taxodiff import api
    from taxodiff.families.branched import transmute

    loaded = api.load(first)
    tms = [transmute.transmute(loaded, n=preset.transmute_n, scale=s, progress=ctx.progress) for s in TRANSMUTE_SCALES]
    transmute.write(tms, ctx.out)
    return [{"scale": tm["scale"], "pairs": tm["pairs"]} for tm in tms]


def summarise(cfg: RunConfig, preset: BranchedPreset, rows: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    parts = {k: r[k] for r in rows for k in ("tree", *PARTS) if k in r}
    return {"rows": [r for r in rows if "part" not in r], **parts}


def report(summary: dict[str, Any], rows: list[dict[str, Any]], out: Path) -> list[Any]:
    from taxodiff.families.branched.study_report import blocks

    return blocks(summary, out)


STUDY = Study(
    name="branched",
    help="branched diffusion vs its equal-size label-conditioned baseline; cached sampling, continual learning, "
    "transmutation",
    title="taxodiff branched study",
    kinds=("images",),
    presets=PRESETS,
    default_out="runs/study-branched",
    jobs=jobs,
    summarise=summarise,
    report=report,
    defaults={"model": Branched.name},
)
