"""One pipeline for every model family and data source, callable from Python exactly as the CLI calls it.

    cfg = config.load("configs/digits.yaml")
    api.train(cfg, "runs/digits")                     # render or load the data, build, train (resuming)
    api.sample("runs/digits", {"guidance": 3})        # samples/<tag>.safetensors and a figure
    api.evaluate("runs/digits", {"guidance": 3})      # scores merged into eval.json under the tag

A run directory records its family and data source (config.yaml, and the config inside every checkpoint),
so sampling and evaluating need nothing but the directory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxodiff import config, runs, seeds
from taxodiff.config import RunConfig, legacy
from taxodiff.errors import TaxodiffError
from taxodiff.profiling import timed
from taxodiff.runs import stored_config

if TYPE_CHECKING:
    from taxodiff.families.base import Family, Parent


_MISSING = object()


@dataclass
class Loaded:
    cfg: RunConfig
    family: Family
    module: Any  # FamilyModule, in eval mode
    state: dict[str, Any]  # the checkpoint's state.json

    @property
    def step(self) -> int:
        return int(self.state["step"])


# -- configs of runs (stored_config: taxodiff.runs) -------------------------------------------------------
def sample_settings(cfg: RunConfig, overrides: dict[str, Any] | None) -> RunConfig:
    """The run's config with sampling overrides (None = keep), checked like any config."""
    kept = {f"sample.{k}": v for k, v in (overrides or {}).items() if v is not None}
    for key in kept:
        node = cfg.sample
        for part in key.split(".")[1:]:
            node = getattr(node, part, _MISSING)
        if node is _MISSING and key.split(".")[1] not in legacy.GUIDER_KEYS:
            allowed = ", ".join(f"sample.{f}" for f in config.to_dict(cfg.sample))
            raise TaxodiffError(f"{key} is not a sampling setting of a {cfg.model!r} run: allowed are {allowed}")
    return config.with_overrides(cfg, kept) if kept else cfg


def check_existing(cfg: RunConfig, run_dir: Path, resume: bool) -> None:
    """An existing run continues only with the same config, save for the step count, the device and the
    sampling settings (which do not change training)."""
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return
    if not resume:
        raise TaxodiffError(f"run directory {str(run_dir)!r} already holds a run: pick another --run-dir or resume")
    try:
        raw = config.read_yaml(saved)
    except TaxodiffError as e:
        raise TaxodiffError(f"run directory {str(run_dir)!r} has an unreadable config.yaml ({e})") from None
    try:
        old = config.resolve(raw)
    except TaxodiffError:
        old = None
    same = old is not None and replace(
        old, train=replace(old.train, steps=cfg.train.steps), device=cfg.device, sample=cfg.sample
    )
    if old is None or same != cfg:
        raise TaxodiffError(
            f"run directory {str(run_dir)!r} holds a run with a different config: pick another --run-dir"
        )


# -- training -------------------------------------------------------------------------------------------------
def train(cfg: RunConfig, run_dir: str | Path, resume: bool = True, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a run of any family; writes config.yaml, checkpoints, metrics.jsonl, train.json."""
    from taxodiff._malloc import tune_malloc
    from taxodiff.families import get_family
    from taxodiff.train.trainer import Trainer

    tune_malloc()  # before the data are made
    run_dir = Path(run_dir)
    check_existing(cfg, run_dir, resume)
    from taxodiff.train.distributed import resolve_device

    family = get_family(cfg.model)(cfg)
    latest = runs.latest_checkpoint(run_dir) if resume else None
    previous = runs.read_json(latest / "state.json") if latest else {}
    parent = load_parent(cfg, previous.get("parent"), resolve_device(cfg.device)) if cfg.parent else None
    module = build(family, previous.get("structure"), parent)
    with timed("data"):
        data = family.train_set()
    state: dict[str, Any] = {"config": config.to_dict(cfg), "family": cfg.model, "source": cfg.data.source}
    if parent is not None:
        state["parent"] = {"run_dir": str(parent.run_dir), "step": parent.step, "digest": parent.digest}
    trainer = Trainer(family, module, data, run_dir, state)
    if trainer.is_main:
        runs.atomic_write(run_dir / "config.yaml", config.dump_yaml(cfg))
    with timed("train"):
        result = trainer.train(resume=resume, progress=progress)
    return _summary(run_dir, cfg, trainer, result)


def build(family: Family, structure: dict[str, Any] | None = None, parent: Parent | None = None) -> Any:
    """The family's networks, initialised from the run's seed (the global generator is left as it was)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds.derive(family.cfg.seed, "init") % 2**31)
        return family.build(structure, parent)


def _summary(run_dir: Path, cfg: RunConfig, trainer: Any, result: Any) -> dict[str, Any]:
    previous = runs.read_json(run_dir / "train.json") if (run_dir / "train.json").exists() else {}
    if result.resumed_from > 0 and result.step == result.resumed_from and previous.get("steps") == result.step:
        return previous | {"is_main": trainer.is_main}  # nothing left to train: the record stands
    earlier = previous.get("seconds", 0.0) if result.resumed_from > 0 else 0.0
    seconds = result.total_seconds if result.total_seconds is not None else earlier + result.seconds
    summary = {
        "run_dir": str(run_dir),
        "model": cfg.model,
        "source": cfg.data.source,
        "steps": result.step,
        "resumed_from": result.resumed_from,
        "seconds": round(seconds, 3),  # every training call of this run, a killed one up to its last checkpoint
        "parameters": sum(p.numel() for p in trainer.raw.parameters()),
        "networks": {name: sum(p.numel() for p in net.parameters()) for name, net in trainer.raw.named_children()},
        "precision": trainer.acc.mixed_precision,
        "device": str(trainer.acc.device),
        "processes": result.processes,
        "weight_digests": list(result.weight_digests),
    }
    if trainer.is_main:
        runs.write_json(run_dir / "train.json", summary)
    return summary | {"is_main": trainer.is_main}


# -- loading ------------------------------------------------------------------------------------------------
def load(run_dir: str | Path, device: Any = "cpu", cfg: RunConfig | None = None, ema: bool = True) -> Loaded:
    """A trained run's networks with their (EMA) weights, bound to its family (``cfg``: the run's config with
    other sampling settings)."""
    from taxodiff.families import get_family

    ckpt, stored, state = stored_config(run_dir)
    cfg = cfg or stored
    tensors, _ = runs.load_checkpoint(ckpt, ("model", "ema"))
    family = get_family(cfg.model)(cfg)
    parent = load_parent(cfg, state.get("parent"), device) if cfg.parent else None
    module = build(family, state.get("structure"), parent)
    weights = dict(tensors["model"])
    if ema:
        weights.update(tensors["ema"])
    missing, unexpected = module.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise TaxodiffError(
            f"checkpoint {str(ckpt)!r} does not match a {cfg.model!r} model "
            f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)"
        )
    return Loaded(cfg, family, module.to(device).eval(), state)


def load_parent(cfg: RunConfig, expected: dict[str, Any] | None = None, device: Any = "cpu") -> Parent:
    """The parent run a config names, frozen, on ``device``; refused if it changed since the child (``expected``:
    the child's record of it) was trained on it."""
    from taxodiff.families.base import Parent

    ckpt = runs.resolve_checkpoint(cfg.parent)  # type: ignore[arg-type]
    digest = hashlib.sha256((ckpt / "model.safetensors").read_bytes()).hexdigest()[:16]
    if expected is not None and expected.get("digest") != digest:
        raise TaxodiffError(
            f"parent run {cfg.parent!r} changed since this run was trained on it (checkpoint step "
            f"{expected.get('step')} then): restore it or train this run again"
        )
    loaded = load(cfg.parent, device)  # type: ignore[arg-type]
    for p in loaded.module.parameters():
        p.requires_grad_(False)
    return Parent(Path(cfg.parent), loaded.step, digest, loaded.module, loaded.family)  # type: ignore[arg-type]


# -- sampling and evaluation ----------------------------------------------------------------------------------
def sample_tag(family: Family, seed: int | None) -> str:
    tag = family.sample_tag(family.cfg.sample)
    return tag if seed is None or seed == family.cfg.seed else f"{tag}_seed{seed}"


def sample(
    run_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Sample a trained run; returns (samples path, samples). ``seed`` (default: the run's) picks the noise."""
    run = _open(Path(run_dir), overrides, device)
    return _draw(run, Path(run_dir), seed, progress)


def _open(run_dir: Path, overrides: dict[str, Any] | None, device: str | None) -> Loaded:
    """A run loaded with sampling overrides (checked first: bad values fail before torch is imported)."""
    _, stored, _ = stored_config(run_dir)
    cfg = sample_settings(stored, overrides)
    from taxodiff.train.distributed import resolve_device

    return load(run_dir, resolve_device(device or "auto"), cfg)


def _draw(run: Loaded, run_dir: Path, seed: int | None, progress: bool) -> tuple[Path, dict[str, Any]]:
    import torch

    fam = run.family
    root = seeds.derive(run.cfg.seed if seed is None else seed, "sample")
    with _Cost(run.module) as cost, timed("sample"):
        samples = fam.generate(run.module, run.cfg.sample, root, progress)
    samples["step"] = torch.tensor([run.step])  # which checkpoint drew them
    cost.per_image(_count(samples))
    tag = sample_tag(fam, seed)
    path = runs.save_samples(run_dir, tag, samples, _settings(run.cfg), cost.record)
    with timed("figures"):
        fam.figures(run.module, run_dir, samples, tag)
    return path, samples


def evaluate(
    run_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score a run's samples (reusing saved ones from its current checkpoint); merged into eval.json."""
    run_dir = Path(run_dir)
    evals = _evaluations(run_dir)  # an unreadable eval.json is refused before any work
    run = _open(run_dir, overrides, device)
    tag = sample_tag(run.family, seed)
    path = run_dir / "samples" / f"{tag}.safetensors"
    same = path.exists() and runs.samples_settings(path) == _settings(run.cfg)
    samples = runs.load_samples(path) if same else None
    fresh = samples is not None and "step" in samples and int(samples["step"][0]) == run.step
    expected = run.family.sample_count(run.cfg.sample)  # None: it depends on the trained model
    if not fresh or (expected is not None and expected != _count(samples)):
        path, samples = _draw(run, run_dir, seed, progress)  # none saved, or from another checkpoint
    with timed("evaluate"):
        result = {"tag": tag, **run.family.evaluate(run.module, samples, progress)}
    result["cost"] = runs.samples_cost(path)  # seconds and network calls per image of drawing them
    evals["evaluations"][tag] = result
    runs.write_json(run_dir / "eval.json", evals)
    return result


class _Cost:
    """What drawing a set of samples cost: seconds, and every network's calls (rows evaluated) per image."""

    def __init__(self, module: Any) -> None:
        self.nets = dict(module.named_children())
        self.rows = dict.fromkeys(self.nets, 0)
        self.record: dict[str, Any] = {}

    def __enter__(self) -> _Cost:
        import time

        self.hooks = [net.register_forward_hook(self._counter(name)) for name, net in self.nets.items()]
        self.t0 = time.perf_counter()
        return self

    def _counter(self, name: str) -> Any:
        def count(net: Any, args: tuple, output: Any) -> None:
            self.rows[name] += len(args[0])

        return count

    def __exit__(self, *exc: Any) -> None:
        import time

        self.record["seconds"] = round(time.perf_counter() - self.t0, 3)
        for h in self.hooks:
            h.remove()

    def per_image(self, n: int) -> None:
        self.record["images"] = n
        self.record["evaluations_per_image"] = {k: v / max(n, 1) for k, v in self.rows.items() if v}


def _evaluations(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "eval.json"
    evals = runs.read_json(path) if path.exists() else {"evaluations": {}}
    if not isinstance(evals.get("evaluations"), dict):
        raise TaxodiffError(f"{str(path)!r} is not a taxodiff evaluation file (no 'evaluations' mapping)")
    return evals


def _settings(cfg: RunConfig) -> str:
    """What decides the samples beyond the tag: every sampling setting but the batch size (samples do not
    depend on it), as JSON."""
    import json

    kept = {k: v for k, v in config.to_dict(cfg.sample).items() if k != "batch_size"}
    return json.dumps(kept, sort_keys=True)


def _count(samples: dict[str, Any] | None) -> int:
    if not samples:
        return -1
    return len(next(v for k, v in samples.items() if k != "step"))


def describe(result: dict[str, Any], model: str) -> str:
    """One terminal line of an evaluation, as the run's family's evaluation type writes it."""
    from taxodiff.families import get_family

    return get_family(model).evaluation(result).describe()


# -- samples of any generator ---------------------------------------------------------------------------------
def audit(
    cfg: RunConfig, samples: str | Path, out: str | Path, device: str | None = None, progress: bool = True
) -> dict:
    """Score images any generator made (a folder per asked category, or a safetensors file) against ``cfg``'s
    labelled source: ``out/eval.json``, a grid and a report, written after every check and the scoring."""
    from taxodiff.data import get_source
    from taxodiff.evaluate import audit as audit_mod
    from taxodiff.evaluate.images import score
    from taxodiff.report import figures, pages
    from taxodiff.train.distributed import resolve_device

    source_cls = get_source(cfg.data.source)
    if source_cls.kind != "images":
        raise TaxodiffError(
            f"data.source = {cfg.data.source!r} is invalid for an audit: allowed are image sources with labels"
        )
    source = source_cls(cfg)
    source.check()
    h = source.hierarchy
    found = audit_mod.read_samples(Path(samples), h, source.image_shape())
    result, _ = score(source, found, resolve_device(device or "auto"), progress)
    result = {"tag": Path(samples).name, "model": "audit", "samples": str(Path(samples).resolve()), **result}
    out = Path(out)
    grid = figures.category_grid(
        found["images"].numpy(),
        found["z2"].numpy(),
        h.category_names,
        out / "figures" / "samples.png",
        "audited samples",
    )
    runs.write_json(out / "eval.json", {"evaluations": {"audit": result}})
    blocks = audit_mod.report(result, h, str(samples), str(grid.relative_to(out)), source.describe())
    pages.write_pages(out, blocks, "taxodiff audit")
    return result


def export(run_dir: str | Path, tag: str | None, out: str | Path) -> tuple[Path, int]:
    """A run's samples (``tag``, default: the run's only or default samples) as the audit's folder layout."""
    from taxodiff.evaluate.audit import export_samples
    from taxodiff.families import get_family

    run_dir = Path(run_dir)
    _, cfg, _ = stored_config(run_dir)
    tags = sorted(p.stem for p in (run_dir / "samples").glob("*.safetensors"))
    if not tags:
        raise TaxodiffError(f"run {str(run_dir)!r} has no samples: draw them first (taxodiff sample or evaluate)")
    if tag is None:
        default = sample_tag(get_family(cfg.model)(cfg), None)
        tag = default if default in tags else (tags[0] if len(tags) == 1 else None)
        if tag is None:
            raise TaxodiffError(
                f"run {str(run_dir)!r} has several samples files: choose one with --tag ({', '.join(tags)})"
            )
    if tag not in tags:
        raise TaxodiffError(f"--tag {tag!r} is not a samples file of {str(run_dir)!r}: allowed are {', '.join(tags)}")
    samples = runs.load_samples(run_dir / "samples" / f"{tag}.safetensors")
    if "images" not in samples or "z2" not in samples:
        raise TaxodiffError(
            f"samples {tag!r} of {str(run_dir)!r} are not images asked by category (no 'images' and 'z2'): allowed "
            "are image samples of a category request"
        )
    h = get_family(cfg.model)(cfg).hierarchy
    return Path(out), export_samples(samples, h, Path(out))


# -- data ---------------------------------------------------------------------------------------------------
def preview(cfg: RunConfig, out: str | Path, n: int = 32) -> Path:
    """A PNG grid of training images per category, labelled with p(z1 | z2)."""
    from taxodiff.data import get_source
    from taxodiff.report import figures

    source = get_source(cfg.data.source)(cfg)
    if source.kind != "images":
        raise TaxodiffError(f"data preview draws images; data.source = {source.name!r} holds {source.kind}")
    h = source.hierarchy
    batch = source.preview(n)
    images = ((batch.images + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    labels = [
        f"{name}: "
        + ", ".join(f"{h.leaf_names[i]} {p:.2f}" for i, p in zip(h.leaves_of(c), h.conditional(c), strict=True))
        for c, name in enumerate(h.category_names)
    ]
    c, height, width = source.image_shape()
    return figures.category_grid(
        images,
        batch.z2.numpy(),
        h.category_names,
        Path(out),
        f"training data ({height}x{width})",
        per_category=n,
        labels=labels,
    )


# -- continual learning -------------------------------------------------------------------------------------
def add_class_config(parent: str | Path, label: str, under: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """A trained run's config with class ``label`` added to category ``under`` of its class tree and ``parent``
    naming the run: what :func:`train` needs to extend it (families that extend a parent: branched, labelled)."""
    from taxodiff.families import extending, get_family

    _, cfg, _ = stored_config(parent)
    if not get_family(cfg.model).extends_parent:
        takers = " or ".join(f.name for f in extending())
        raise TaxodiffError(f"adding a class extends a {takers} run: {str(parent)!r} is a {cfg.model!r} run")
    spec = config.to_dict(cfg).get("hierarchy")
    if not spec:
        raise TaxodiffError(
            f"run {str(parent)!r} uses its source's own class tree: write the tree with the new class into a config "
            f"and train it with --set parent={parent}"
        )
    if under not in spec:
        raise TaxodiffError(f"category {under!r} is not in the class tree: allowed are {', '.join(spec)}")
    if not isinstance(spec[under], list):
        raise TaxodiffError(
            f"category {under!r} is not a list of classes: write the tree with the new class into a config and "
            f"train it with --set parent={parent}"
        )
    leaves = [x for v in spec.values() if isinstance(v, list) for x in v]
    if label in leaves:
        raise TaxodiffError(f"class {label!r} is already in the class tree of {str(parent)!r}")
    raw = config.to_dict(cfg) | {"hierarchy": {**spec, under: [*spec[under], label]}, "parent": str(parent)}
    child = config.resolve(raw)
    return config.with_overrides(child, overrides) if overrides else child
