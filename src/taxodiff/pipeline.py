"""Run-level operations, callable from Python exactly as the CLI calls them.

train_run(cfg, run_dir)                 render the data, build the model, train (resuming)
sample_run(run_dir, sample_overrides)   load the EMA weights, sample every category, save + grid PNG
evaluate_run(run_dir, sample_overrides) reuse or make the samples, score them, merge into eval.json
preview(cfg, out)                       a PNG grid of training images per category
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from taxodiff import config as config_mod
from taxodiff import runs, seeds
from taxodiff.config import RunConfig
from taxodiff.errors import TaxodiffError


def training_data(cfg: RunConfig) -> Any:
    from taxodiff.data.images import make_images
    from taxodiff.evaluate import style_of

    h = cfg.build_hierarchy()
    return make_images(h, cfg.data.n_train, cfg.data.size, seeds.derive(cfg.seed, "data"), style_of(cfg))


def check_existing(cfg: Any, run_dir: Path, resume: bool, load: Callable[[dict[str, Any]], Any]) -> None:
    """An existing run continues only with the same config, save for the step count, the device and the
    sampling settings (which do not change training)."""
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return
    if not resume:
        raise TaxodiffError(f"run directory {str(run_dir)!r} already holds a run: pick another --run-dir or resume")
    try:
        old = load(config_mod.read_yaml(saved))
    except TaxodiffError:
        old = None  # a run of another kind
    same = old is not None and replace(
        old, train=replace(old.train, steps=cfg.train.steps), device=cfg.device, sample=cfg.sample
    )
    if old is None or same != cfg:
        raise TaxodiffError(
            f"run directory {str(run_dir)!r} holds a run with a different config: pick another --run-dir"
        )


def train_run(cfg: RunConfig, run_dir: Path, resume: bool = True, progress: bool = True) -> dict[str, Any]:
    import torch

    from taxodiff._malloc import tune_malloc
    from taxodiff.models import build_model

    tune_malloc()  # before the images are rendered
    check_existing(cfg, Path(run_dir), resume, config_mod.from_dict)
    h = cfg.build_hierarchy()
    data = training_data(cfg)
    torch.manual_seed(seeds.derive(cfg.seed, "init") % 2**31)
    model = build_model(cfg, h)
    return run_trainer(model, data, cfg, cfg.model, Path(run_dir), resume, progress)


def run_trainer(
    model: Any, data: Any, cfg: Any, family: str, run_dir: Path, resume: bool = True, progress: bool = True
) -> dict[str, Any]:
    """Train any model family with the one trainer; write config.yaml and train.json (rank 0). ``cfg`` is a
    run config with ``seed``, ``device`` and ``train``."""
    from taxodiff._malloc import tune_malloc
    from taxodiff.train import Trainer

    tune_malloc()
    state = {"config": config_mod.to_dict(cfg), "family": family}
    trainer = Trainer(model, data, cfg.train, run_dir, cfg.seed, cfg.device, state)
    if trainer.is_main:
        runs.atomic_write(run_dir / "config.yaml", config_mod.dump_yaml(cfg))
    result = trainer.train(resume=resume, progress=progress)
    n_params = sum(p.numel() for p in model.parameters())
    previous = runs.read_json(run_dir / "train.json") if (run_dir / "train.json").exists() else {}
    if result.resumed_from > 0 and result.step == result.resumed_from and previous.get("steps") == result.step:
        return previous | {"is_main": trainer.is_main}  # nothing left to train: the record stands
    earlier = previous.get("seconds", 0.0) if result.resumed_from > 0 else 0.0
    summary = {
        "run_dir": str(run_dir),
        "model": family,
        "steps": result.step,
        "resumed_from": result.resumed_from,
        "seconds": round(earlier + result.seconds, 1),  # all training calls of this run
        "parameters": n_params,
        "precision": trainer.acc.mixed_precision,
        "device": str(trainer.acc.device),
        "processes": result.processes,
        "weight_digests": list(result.weight_digests),
    }
    if trainer.is_main:
        runs.write_json(run_dir / "train.json", summary)
    return summary | {"is_main": trainer.is_main}


def stored_config(run_dir: Path) -> tuple[Path, RunConfig]:
    """(checkpoint directory, config) of a trained run, checked without importing torch."""
    ckpt = runs.resolve_checkpoint(run_dir)
    state = runs.read_json(ckpt / "state.json")
    if not isinstance(state, dict) or state.get("format") != runs.FORMAT:
        raise TaxodiffError(f"{str(ckpt)!r} is not a taxodiff checkpoint")
    check_family(ckpt, state, ("flat", "hierarchical"))
    return ckpt, config_mod.from_dict(state["config"])


def check_family(ckpt: Path, state: Any, families: tuple[str, ...]) -> None:
    """Refuse a checkpoint without a stored config, or of a model family this command does not take."""
    if "config" not in state:
        raise TaxodiffError(f"checkpoint {str(ckpt)!r} has no stored config: not a taxodiff model")
    family = state.get("family", "flat" if state["config"].get("model") == "flat" else "hierarchical")
    if family not in families:
        raise TaxodiffError(
            f"checkpoint {str(ckpt)!r} holds a {family!r} model: this command takes {', '.join(families)}"
        )


def sample_run(
    run_dir: Path,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Sample a trained run; returns (samples path, samples)."""
    run_dir = Path(run_dir)
    _, cfg = stored_config(run_dir)
    sc = sample_settings(cfg, overrides)  # bad values fail here, before torch is imported
    import torch

    from taxodiff import figures
    from taxodiff.sampling import generate, load_model, sample_tag, save_samples
    from taxodiff.train import resolve_device

    _, model, state = load_model(run_dir, resolve_device(device or "auto"))
    tag = sample_tag(sc, cfg.model)
    samples = generate(model, cfg, sc, seeds.derive(cfg.seed if seed is None else seed, "sample", tag), progress)
    samples["step"] = torch.tensor([int(state["step"])])  # which checkpoint drew them
    path = save_samples(run_dir, tag, samples)
    h = model.hierarchy
    figures.category_grid(
        samples["images"].numpy(),
        samples["z2"].numpy(),
        h.category_names,
        run_dir / "figures" / f"samples_{tag}.png",
        f"{cfg.model} model, {tag}",
    )
    return path, samples


def evaluate_run(
    run_dir: Path,
    overrides: dict[str, Any] | None = None,
    seed: int | None = None,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    ckpt, cfg = stored_config(run_dir)
    sc = sample_settings(cfg, overrides)
    from taxodiff.evaluate import evaluate
    from taxodiff.sampling import load_samples, sample_tag
    from taxodiff.train import resolve_device

    tag = sample_tag(sc, cfg.model)
    path = run_dir / "samples" / f"{tag}.safetensors"
    step = runs.read_json(ckpt / "state.json")["step"]
    samples = load_samples(path) if path.exists() and seed is None else None
    fresh = samples is not None and "step" in samples and int(samples["step"][0]) == step
    if not fresh or len(samples["z2"]) != sc.n_per_category * cfg.build_hierarchy().num_categories:
        _, samples = sample_run(run_dir, overrides, seed, device, progress)  # none saved, or from another checkpoint
    return evaluate(run_dir, cfg, sc, tag, samples, resolve_device(device or "auto"), progress)


def sample_settings(cfg: RunConfig, overrides: dict[str, Any] | None) -> Any:
    """The run's sampling settings with overrides (None = keep), checked like any config."""
    kept = {k: v for k, v in (overrides or {}).items() if v is not None}
    return config_mod.from_dict({"sample": kept}, base=cfg).sample


def preview(cfg: RunConfig, out: Path, n: int = 32, progress: bool = True) -> Path:
    from taxodiff import figures
    from taxodiff.data.images import make_images
    from taxodiff.evaluate import style_of

    h = cfg.build_hierarchy()
    batch = make_images(h, n * h.num_categories * 4, cfg.data.size, seeds.derive(cfg.seed, "preview"), style_of(cfg))
    images = ((batch.images + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    labels = [
        f"{name}: "
        + ", ".join(f"{h.leaf_names[i]} {p:.2f}" for i, p in zip(h.leaves_of(c), h.conditional(c), strict=True))
        for c, name in enumerate(h.category_names)
    ]
    return figures.category_grid(
        images,
        batch.z2.numpy(),
        h.category_names,
        Path(out),
        f"training data ({cfg.data.size}x{cfg.data.size})",
        per_category=n,
        labels=labels,
    )
