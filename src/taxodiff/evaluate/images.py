"""Scoring generated images: the domain classifier assigns each to a leaf of the class tree; then the mode
metrics per category (coverage, entropy, KL, TV, off-category, with bootstrap intervals) and, in the
classifier's feature space against held-out ground truth of the same categories, precision / recall /
density / coverage, Fréchet distance and Vendi scores; and memorisation of the training images.

Works for every image source: synthetic renders or real labelled images, RGB or grey-scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from taxodiff.data.base import DataSource, ImageBatch, as_float
from taxodiff.evaluate.classifier import domain_classifier, embed, predict
from taxodiff.metrics.features import feature_metrics
from taxodiff.metrics.memorisation import memorisation
from taxodiff.metrics.modes import ModeSettings, mode_metrics
from taxodiff.metrics.swd import swd
from taxodiff.profiling import timed

to_unit = as_float  # uint8 images -> float in [-1, 1], as the training data's bytes are read


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8."""
    return ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


CLASS_REFERENCE = 1000  # held-out images per category behind the per-class Fréchet distances


def settings(source: DataSource, seed: int = 0) -> ModeSettings:
    e = source.cfg.eval
    return ModeSettings(e.coverage_rel, e.kl_smoothing, e.bootstrap, seed)


def score(
    source: DataSource, samples: dict[str, torch.Tensor], device: torch.device, progress: bool = True
) -> tuple[dict[str, Any], np.ndarray]:
    """(metrics of the images in ``samples``: uint8 "images" and asked categories "z2", assigned leaves)."""
    with timed("classifier"):
        classifier, info = domain_classifier(source, device, progress)
    h = source.hierarchy
    images = to_unit(samples["images"])
    with timed("assign classes"):
        pred = predict(classifier, images).numpy()
    z2 = samples["z2"].numpy()
    with timed("modes (bootstrap)"):
        modes = mode_metrics(h, z2, pred, settings(source))
    out: dict[str, Any] = {
        "classifier": info,
        "images": modes,
        "predicted": np.bincount(pred, minlength=h.num_leaves).tolist(),
    }
    asked = samples["leaf"].numpy() if "leaf" in samples else None
    if asked is not None:
        out["classes"] = {"accuracy": float((pred == asked).mean())}
    if source.cfg.eval.features:
        out["features"] = sample_set_metrics(source, z2, images, pred, classifier, asked)
    return out, pred


def sample_set_metrics(
    source: DataSource,
    z2: np.ndarray,
    images: torch.Tensor,
    pred: np.ndarray,
    net: Any,
    asked: np.ndarray | None = None,
) -> dict[str, Any]:
    """Feature-space metrics against held-out ground truth, and memorisation of the run's training images;
    given the class ``asked`` of every sample, per class: the share the classifier puts there and the Fréchet
    distance to the held-out images of that class."""
    h = source.hierarchy
    with timed("reference images"):
        ref = source.reference(np.bincount(z2, minlength=h.num_categories).tolist())
    with timed("embed"):
        fake, real = embed(net, images).numpy(), embed(net, ref.images).numpy()
    with timed("features (PRDC, Frechet, Vendi)"):
        out = feature_metrics(h, fake, z2, pred, real, ref.z2.numpy(), ref.z1.numpy(), source.cfg.eval.prdc_k)
    if asked is not None:
        # a reference that does not depend on what was asked: up to CLASS_REFERENCE held-out images per category
        with timed("per-class Frechet"):
            own = source.reference([CLASS_REFERENCE] * h.num_categories)
            own_features = embed(net, own.images).numpy()
            out["classes"] = per_class(h.leaf_names, asked, pred, fake, own_features, own.z1.numpy())
    with timed("training images"):
        train = source.train_set()
    with timed("memorisation"):
        out["memorisation"] = memorisation(images, train.images, source.cfg.eval.memorisation_ratio)
    with timed("pixel SWD"):
        out["pixels"] = pixel_quality(images, z2, ref, train)
    return out


def per_class(
    names: list[str], asked: np.ndarray, pred: np.ndarray, fake: np.ndarray, real: np.ndarray, real_leaf: np.ndarray
) -> dict[str, Any]:
    """For every asked class: samples, classifier accuracy, Fréchet distance to that class's held-out features
    (None under 2 images on a side); and the mean of the distances."""
    from taxodiff.metrics.frechet import frechet_distance

    rows: dict[str, Any] = {}
    for leaf in np.unique(asked).tolist():
        mine, ref = asked == leaf, real_leaf == leaf
        fd = frechet_distance(real[ref], fake[mine]) if min(mine.sum(), ref.sum()) >= 2 else None
        rows[names[leaf]] = {"n": int(mine.sum()), "accuracy": float((pred[mine] == leaf).mean()), "frechet": fd}
    fds = [r["frechet"] for r in rows.values() if r["frechet"] is not None]
    return {"per_class": rows, "frechet_mean": float(np.mean(fds)) if fds else None}


def pixel_quality(images: torch.Tensor, z2: np.ndarray, ref: ImageBatch, train: ImageBatch) -> dict[str, Any]:
    """Patch sliced Wasserstein distance of the samples to the reference images, beside the data's own value:
    as many training images of each category as there are samples, against the same reference."""
    gen = torch.Generator().manual_seed(0)
    picks = []
    for c, n in enumerate(np.bincount(z2).tolist()):
        rows = torch.nonzero(train.z2 == c).flatten()
        picks.append(rows[torch.randperm(len(rows), generator=gen)[: min(n, len(rows))]])
    data = train.rows(torch.cat(picks))
    model, own = swd(images, ref.images), swd(data, ref.images)
    return {**model, "swd_data": own["swd"], "levels_data": own["levels"]}
