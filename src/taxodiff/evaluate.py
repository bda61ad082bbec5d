"""Score a run's samples: assign each image to a leaf with the domain classifier, then mode metrics.

For the hierarchical model also: fidelity (share of images classified as the z1 anchor nearest to the
prior sample they were decoded from) and the mode metrics of the prior's own z1 samples (nearest anchor).
Results are merged into ``<run>/eval.json`` under the sampling tag.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taxodiff import runs, seeds
from taxodiff.config import RunConfig, SampleConfig
from taxodiff.data.images import StyleConfig
from taxodiff.hierarchy import Hierarchy
from taxodiff.metrics.classifier import DomainSpec, domain_classifier, embed, predict
from taxodiff.metrics.memorisation import memorisation
from taxodiff.metrics.modes import ModeSettings, fidelity, mode_metrics
from taxodiff.metrics.samples import feature_metrics


def style_of(cfg: RunConfig) -> StyleConfig:
    d = cfg.data
    return StyleConfig(
        max_offset=d.max_offset,
        scale=(d.scale_min, d.scale_max),
        brightness=(d.brightness_min, d.brightness_max),
        background=d.background,
    )


def domain_spec(cfg: RunConfig, h: Hierarchy) -> DomainSpec:
    e = cfg.eval
    return DomainSpec(
        shapes=tuple(leaf.shape or leaf.name for leaf in h.leaves),
        size=cfg.data.size,
        style=style_of(cfg),
        n_train=e.classifier_train,
        n_test=e.classifier_test,
        epochs=e.classifier_epochs,
    )


def score_samples(
    cfg: RunConfig, h: Hierarchy, samples: dict[str, torch.Tensor], classifier: torch.nn.Module, seed: int = 0
) -> dict[str, Any]:
    """Metrics of one set of samples (see module doc)."""
    settings = ModeSettings(cfg.eval.coverage_rel, cfg.eval.kl_smoothing, cfg.eval.bootstrap, seed)
    images = samples["images"].float() / 127.5 - 1
    pred = predict(classifier, images).numpy()
    z2 = samples["z2"].numpy()
    out: dict[str, Any] = {
        "images": mode_metrics(h, z2, pred, settings),
        "predicted": np.bincount(pred, minlength=h.num_leaves).tolist(),
    }
    if "z1_anchor" in samples:
        anchor = samples["z1_anchor"].numpy()
        out["prior"] = mode_metrics(h, z2, anchor, settings)
        out["fidelity"] = fidelity(anchor, pred, cfg.eval.bootstrap, seed)
        dist = torch.cdist(samples["z1"].float(), torch.tensor(h.anchors())).min(dim=1).values
        out["prior_anchor_distance"] = {"mean": float(dist.mean()), "p95": float(dist.quantile(0.95))}
    if cfg.eval.features:
        out["features"] = sample_set_metrics(cfg, h, samples, images, pred, classifier)
    return out


def reference_images(cfg: RunConfig, h: Hierarchy, z2: np.ndarray) -> Any:
    """Fresh ground-truth renders, as many of each category as there are samples of it (held-out seed)."""
    from taxodiff.data.images import ImageBatch, make_images

    parts = [
        make_images(h, int(n), cfg.data.size, seeds.derive(cfg.seed, "reference", c), style_of(cfg), category=c)
        for c, n in enumerate(np.bincount(z2, minlength=h.num_categories))
        if n > 0
    ]
    return ImageBatch(*(torch.cat([getattr(p, f) for p in parts]) for f in ("images", "z2", "z1", "z0")))


def sample_set_metrics(
    cfg: RunConfig, h: Hierarchy, samples: dict[str, torch.Tensor], images: torch.Tensor, pred: np.ndarray, net: Any
) -> dict[str, Any]:
    """Feature-space metrics against fresh renders, and memorisation of the run's training images."""
    from taxodiff.pipeline import training_data

    z2 = samples["z2"].numpy()
    ref = reference_images(cfg, h, z2)
    out = feature_metrics(
        h,
        embed(net, images).numpy(),
        z2,
        pred,
        embed(net, ref.images).numpy(),
        ref.z2.numpy(),
        ref.z1.numpy(),
        cfg.eval.prdc_k,
    )
    out["memorisation"] = memorisation(images, training_data(cfg).images, cfg.eval.memorisation_ratio)
    return out


def evaluate(
    run_dir: Path,
    cfg: RunConfig,
    sc: SampleConfig,
    tag: str,
    samples: dict[str, torch.Tensor],
    device: torch.device,
    progress: bool = True,
) -> dict[str, Any]:
    """Score samples and merge the result into ``eval.json`` under ``tag``."""
    h = cfg.build_hierarchy()
    spec = domain_spec(cfg, h)
    classifier, info = domain_classifier(spec, device, progress)
    result = {
        "tag": tag,
        "model": cfg.model,
        "checkpoint_step": int(samples["step"][0]),
        "sample": asdict(sc),
        "classifier": info,
        **score_samples(cfg, h, samples, classifier),
    }
    path = run_dir / "eval.json"
    current = runs.read_json(path) if path.exists() else {"evaluations": {}}
    current["evaluations"][tag] = result
    runs.write_json(path, current)
    return result
