"""The branched study (seed 004) on an image source with a class tree: branched diffusion against its
label-conditioned baseline of equal size, cached all-class sampling, continual learning and transmutation.

1. Over seeds: a branched run (its tree discovered on the training data), then a labelled run whose widths are
   matched to the branched run's parameter count, same steps, batch and data. Both answer the coarse request
   (each category, its classes drawn from p(class | category)), scored by the mode metrics, and a request of
   every class, scored per class (classifier accuracy, Fréchet distance in the classifier's features).
2. On the first seed's branched run: per-class against cached all-class sampling, same model and grid:
   network evaluations, wall clock, and the tree's theoretical ratio C / (sum of branch lengths).
3. Continual learning (first seed): both families trained without one class, then extended by it (branched:
   its new leaf branch only; labelled: fine-tuned on the new class alone and on all); old classes' samples
   compared bit for bit (branched) and a per-class table before and after.
4. Transmutation (first seed's branched run): every ordered pair of classes, the share the classifier puts in
   the target class and the share that stays the source, against the pair's branch time.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from taxodiff import config, runs
from taxodiff.config import RunConfig
from taxodiff.errors import TaxodiffError
from taxodiff.studies import Study
from taxodiff.studies.grid import Job, run_jobs

PRESETS = {
    "default": "3 seeds at the config's budget, 64 samples per class (digits: about 40 min on 2 CPU cores)",
    "quick": "1 seed, 32 samples per class, no transmutation sweep beyond 8 images per pair",
}
SEEDS = {"default": 3, "quick": 1}
PER_CLASS = {"default": 64, "quick": 32}
REQUESTS = ({"request": "categories"}, {"request": "classes"})
TRANSMUTE_SCALES = (1.0, 0.5, 0.25)  # images noised to the branch time, and to a half and a quarter of it


def _cfg(cfg: RunConfig, model: str, seed: int, extra: dict[str, Any] | None = None) -> RunConfig:
    """The user's config for another family and seed (keys of the other family are set aside, not lost)."""
    return config.with_overrides(cfg, {"model": model, "seed": seed, **(extra or {})})


def record(job: Job, setting: dict[str, Any], train: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    o, f = ev["images"]["overall"], ev.get("features", {})
    fo, px = f.get("overall", {}), f.get("pixels", {})
    per = f.get("classes", {})
    return {
        "request": setting["request"],
        "parameters": train["parameters"],
        "train_seconds": train["seconds"],
        "kl": o["kl"],
        "coverage": o["coverage"],
        "off_category": o["off_category"],
        "class_accuracy": ev["classes"]["accuracy"],
        "precision": fo.get("precision"),
        "recall": fo.get("recall"),
        "frechet": fo.get("frechet"),
        "class_frechet": per.get("frechet_mean"),
        "per_class": per.get("per_class"),
        "pixel_swd": px.get("swd"),
        "pixel_swd_data": px.get("swd_data"),
    }


def compare(cfg: RunConfig, out: Path, seeds: int, per_class: int, progress: bool) -> list[dict[str, Any]]:
    """Branched and its equal-size labelled baseline over seeds (part 1)."""
    rows = []
    sampling = {"sample.n_per_class": per_class}
    for k in range(seeds):
        s = cfg.seed + k
        bcfg = _cfg(cfg, "branched", s, sampling)
        [br, *_] = run_jobs([Job({"seed": s, "model": "branched"}, bcfg, out / f"branched-seed{s}", REQUESTS)],
                            out / "jobs-branched", record, progress)  # fmt: skip
        lcfg = _cfg(cfg, "labelled", s, sampling | {"net.match_parameters": br["parameters"]})
        job = Job({"seed": s, "model": "labelled"}, lcfg, out / f"labelled-seed{s}", REQUESTS)
        rows += runs.read_jsonl(out / "jobs-branched" / "results.jsonl")[-2:]
        rows += run_jobs([job], out / "jobs-labelled", record, progress)
    return rows


def speed(run_dir: Path, per_class: int, progress: bool) -> dict[str, Any]:
    """Per-class against cached all-class sampling of one branched run, same grid (part 2)."""
    from taxodiff import api

    run = api.load(run_dir)
    fam, module = run.family, run.module
    names, tree = fam.hierarchy.leaf_names, module.tree
    sc = replace(run.cfg.sample, n_per_class=per_class)
    grid = fam.grid(sc)
    out: dict[str, Any] = {"n_classes": len(names), "per_class": per_class, "steps": sc.steps}
    fam.generate(module, replace(sc, request="classes-cached", n_per_class=2), 0, False)  # warm-up, not timed
    for request in ("classes", "classes-cached"):
        calls = [0]
        forward = module.net.forward

        def counted(x: Any, t: Any, head: Any, forward: Any = forward, calls: list[int] = calls) -> Any:
            calls[0] += len(x)
            return forward(x, t, head)

        module.net.forward = counted
        t0 = time.perf_counter()
        fam.generate(module, replace(sc, request=request), 0, progress)
        out[request] = {"seconds": time.perf_counter() - t0, "evaluations": calls[0]}
        module.net.forward = forward
    out["evaluation_ratio"] = out["classes"]["evaluations"] / out["classes-cached"]["evaluations"]
    out["time_ratio"] = out["classes"]["seconds"] / out["classes-cached"]["seconds"]
    out["theory"] = len(names) / tree.total_length()
    out["grid_theory"] = len(names) * (len(grid) - 1) / sum(len(tree.grid_steps(grid, b)) for b in tree.branches)
    out["tree"] = tree.to_json()
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
    """Continual learning on the first seed (part 3)."""
    from taxodiff import api

    label, under = held_out_class(cfg)
    spec = config.to_dict(cfg)["hierarchy"]
    without = {k: [c for c in v if c != label] if isinstance(v, list) else v for k, v in spec.items()}
    steps = max(1, cfg.train.steps // 2)
    sampling = {"sample.n_per_class": per_class, "sample.request": "classes"}
    runs_dirs = {"branched before": out / "continual" / "branched-before"}
    api.train(_cfg(cfg, "branched", cfg.seed, sampling | {"hierarchy": without}), runs_dirs["branched before"],
              progress=progress)  # fmt: skip
    params = runs.read_json(runs_dirs["branched before"] / "train.json")["parameters"]
    lcfg = _cfg(cfg, "labelled", cfg.seed, sampling | {"net.match_parameters": params, "hierarchy": without})
    runs_dirs["labelled before"] = out / "continual" / "labelled-before"
    api.train(lcfg, runs_dirs["labelled before"], progress=progress)
    children = {
        "branched after": ("branched before", {}),
        "labelled, new class only": ("labelled before", {"train.continual_data": "new"}),
        "labelled, all classes": ("labelled before", {"train.continual_data": "all"}),
    }
    for name, (parent, extra) in children.items():
        child = api.add_class_config(runs_dirs[parent], label, under, {"train.steps": steps, **extra})
        runs_dirs[name] = out / "continual" / name.replace(",", "").replace(" ", "-")
        api.train(child, runs_dirs[name], progress=progress)
    result: dict[str, Any] = {"class": label, "under": under, "steps": steps, "runs": {}}
    judge = api.load(runs_dirs["branched after"]).family  # every run scored on the full tree, one classifier
    for name, run_dir in runs_dirs.items():
        _, samples = api.sample(run_dir, {"request": "classes", "n_per_class": per_class}, progress=progress)
        ev = score_on(judge, samples, api.load(run_dir).family.hierarchy.leaf_names, progress)
        result["runs"][name] = {
            "accuracy": ev["classes"]["accuracy"],
            "per_class": ev.get("features", {}).get("classes", {}).get("per_class"),
        }
    result["bit_identical"] = _identical(runs_dirs["branched before"], runs_dirs["branched after"])
    return result


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

    a = runs.load_samples(next((before / "samples").glob("*classes*.safetensors")))
    b = runs.load_samples(next((after / "samples").glob("*classes*.safetensors")))
    from taxodiff import api

    old, new = api.load(before).family.hierarchy.leaf_names, api.load(after).family.hierarchy.leaf_names
    return all(
        torch.equal(a["images"][a["leaf"] == i], b["images"][b["leaf"] == new.index(name)])
        for i, name in enumerate(old)
    )


def _run(cfg: RunConfig, preset: str, out: Path, progress: bool = True, seeds: int | None = None) -> dict[str, Any]:
    from taxodiff import api
    from taxodiff.families.branched import transmute
    from taxodiff.families.branched.study_report import write_report

    out = Path(out)
    per_class = PER_CLASS[preset]
    t0 = time.perf_counter()
    rows = compare(cfg, out, seeds or SEEDS[preset], per_class, progress)
    first = out / f"branched-seed{cfg.seed}"
    summary: dict[str, Any] = {"rows": rows, "speed": speed(first, per_class, progress)}
    try:
        summary["continual"] = continual(cfg, out, per_class, progress)
    except TaxodiffError as e:  # a class tree written as mappings: no class to leave out and add back
        summary["continual"] = {"skipped": str(e)}
    loaded, n = api.load(first), 16 if preset == "default" else 8
    tms = [transmute.transmute(loaded, n=n, scale=scale, progress=progress) for scale in TRANSMUTE_SCALES]
    transmute.write(tms, out)
    summary["transmute"] = [{"scale": tm["scale"], "pairs": tm["pairs"]} for tm in tms]
    summary["seconds"] = time.perf_counter() - t0
    runs.write_json(out / "summary.json", summary)
    write_report(out, summary, first)
    return summary


STUDY = Study(
    name="branched",
    help="branched diffusion vs its equal-size labelled baseline; cached sampling, continual learning, transmutation",
    presets=PRESETS,
    default_out="runs/study-branched",
    run=_run,
    options=("seeds",),
    defaults={"model": "branched"},
)
