"""Load a trained model from its run directory and generate labelled samples from it.

Samples are stored as ``samples/<tag>.safetensors`` (uint8 images, the asked category z2 and, for the
hierarchical model, the prior's z1 samples and their nearest anchors) so that evaluation and reports
can be redone without sampling again.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from taxodiff import config as config_mod
from taxodiff import runs, seeds
from taxodiff.config import RunConfig, SampleConfig
from taxodiff.errors import TaxodiffError
from taxodiff.models import build_model


def load_model(path: str | Path, device: torch.device, ema: bool = True) -> tuple[RunConfig, nn.Module, dict]:
    """Rebuild a model from a run (or checkpoint) directory: its stored config and (EMA) weights."""
    ckpt = runs.resolve_checkpoint(path)
    tensors, state = runs.load_checkpoint(ckpt, ("model", "ema"))
    from taxodiff.pipeline import check_family

    check_family(ckpt, state, ("flat", "hierarchical"))
    cfg = config_mod.from_dict(state["config"])
    model = build_model(cfg, cfg.build_hierarchy())
    weights = dict(tensors["model"])
    if ema:
        weights.update(tensors["ema"])
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise TaxodiffError(
            f"checkpoint {str(ckpt)!r} does not match a {cfg.model} model "
            f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)"
        )
    return cfg, model.to(device).eval(), state


def sample_tag(sc: SampleConfig, family: str) -> str:
    tag = f"{sc.sampler}{sc.steps}_g{sc.guidance:g}"
    if family == "hierarchical":
        tag += f"_pg{sc.prior_guidance:g}"
    if sc.guidance_method == "interval":
        tag += f"_interval{sc.guidance_interval[0]:g}-{sc.guidance_interval[1]:g}"
    elif sc.guidance_method == "cads":
        tag += f"_cads{sc.cads_noise:g}_{sc.cads_tau[0]:g}-{sc.cads_tau[1]:g}"
        tag += f"_psi{sc.cads_psi:g}" if sc.cads_psi != 1 else ""
    return tag


def asked_categories(num_categories: int, n_per_category: int) -> Tensor:
    return torch.arange(num_categories).repeat_interleave(n_per_category)


def generate(model: nn.Module, cfg: RunConfig, sc: SampleConfig, seed: int, progress: bool = True) -> dict[str, Tensor]:
    """n_per_category samples of every category, in batches; deterministic in ``seed``."""
    from tqdm.auto import tqdm

    z2 = asked_categories(model.hierarchy.num_categories, sc.n_per_category)
    per_batch = sc.steps * (1 if sc.guidance == 0 else 2)
    bar = tqdm(
        total=len(z2) * per_batch,
        desc=f"sample {cfg.model} g={sc.guidance:g}",
        unit="img-eval",
        unit_scale=True,
        disable=not progress,
        dynamic_ncols=True,
    )
    parts: list[dict[str, Tensor]] = []
    for i, start in enumerate(range(0, len(z2), sc.batch_size)):
        chunk = z2[start : start + sc.batch_size]
        gen = seeds.generator(seed, "sample", i)
        evals = len(chunk) * (per_batch // sc.steps)
        out = model.sample(chunk, sc, gen, progress=lambda n, e=evals: bar.update(n * e))
        parts.append({k: v.cpu() for k, v in out.items()})
    bar.close()
    result = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    result["images"] = ((result["images"] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    result["z2"] = z2
    return result


def save_samples(run_dir: Path, tag: str, samples: dict[str, Tensor]) -> Path:
    from safetensors.torch import save

    path = run_dir / "samples" / f"{tag}.safetensors"
    runs.atomic_write(path, save({k: v.contiguous() for k, v in samples.items()}))
    return path


def load_samples(path: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))
