"""The domain classifier: a CNN that tells which leaf of the class tree an image shows, trained on the data
source's ground truth and scored on images it never saw. Generated images are assigned to leaves by it, and
its penultimate features are the space of the sample-set metrics (PRDC, Fréchet distance, Vendi).

Where the data has style factors (synthetic images), a second head regresses them from the same features, so
those features see colour, size and position as well as the class. Training augments with pixel noise and
blur (generated images carry such artefacts; the classifier must judge the class, not the polish). It is
cached on disk keyed by everything that defines it, as safetensors plus JSON. ``TAXODIFF_CACHE`` sets the
cache folder (default ``~/.cache/taxodiff``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from taxodiff import runs, seeds
from taxodiff.data.base import DataSource, ImageBatch
from taxodiff.nets.classifier import ClassifierConfig, ConvClassifier

VERSION = 4
BATCH = 128


@dataclass
class ClassifierData:
    """What a domain classifier learns from and is scored on, and what defines it (the cache key)."""

    train: ImageBatch  # labels: z1 (leaf index)
    test: ImageBatch
    classes: list[str]  # leaf labels, in leaf order
    key: dict[str, Any]
    epochs: int
    style: Callable[[ImageBatch], torch.Tensor] | None = None  # style regression targets (N, k), if any
    width: int = 16
    seed: int = 0

    def digest(self) -> str:
        blob = json.dumps({"v": VERSION, "width": self.width, "seed": self.seed, **self.key}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def classifier_data(source: DataSource) -> ClassifierData:
    train, test, key = source.classifier_sets()
    style = getattr(source, "style_targets", None) if train.z0 is not None else None
    return ClassifierData(
        train, test, list(source.hierarchy.leaf_labels), key, source.cfg.eval.classifier_epochs, style
    )


def _net_config(d: ClassifierData) -> ClassifierConfig:
    style_dim = 0 if d.style is None else int(d.style(d.train.subset(torch.arange(1))).shape[1])
    return ClassifierConfig(
        in_channels=d.train.shape[0], num_classes=len(d.classes), width=d.width, style_dim=style_dim
    )


def train_classifier(d: ClassifierData, device: torch.device, progress: bool = True) -> tuple[ConvClassifier, dict]:
    """Train on ``d.train`` (cross-entropy, plus the style regression where there is one); returns the network
    and its held-out accuracy (and style R^2)."""
    from tqdm.auto import tqdm

    n = len(d.train)
    bs = min(BATCH, n)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds.derive(d.seed, "classifier", "init") % 2**31)
        net = ConvClassifier(_net_config(d)).to(device)
    targets = d.style(d.train) if d.style is not None else None
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    gen = seeds.generator(d.seed, "classifier", "batches")
    steps = d.epochs * (n // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    bar = tqdm(total=steps, desc="domain classifier", unit="step", disable=not progress, dynamic_ncols=True)
    for _ in range(d.epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(n // bs):
            idx = perm[i * bs : (i + 1) * bs]
            feats = net.embed(corrupt(d.train.rows(idx), gen).to(device))
            loss = F.cross_entropy(net.head(feats), d.train.z1[idx].to(device))
            if targets is not None:
                loss = loss + F.mse_loss(net.style_head(feats), targets[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    bar.close()
    net.eval()
    scores = {"accuracy": float((predict(net, d.test.images) == d.test.z1).float().mean())}
    if d.style is not None:
        with torch.no_grad():
            pred = torch.cat(
                [net.style(d.test.rows(slice(i, i + 512)).to(device)).cpu() for i in range(0, len(d.test), 512)]
            )
        truth = d.style(d.test)
        scores["style_r2"] = float((1 - ((pred - truth) ** 2).mean(0) / truth.var(0)).mean())
    return net, scores


def corrupt(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Training augmentation: per-image pixel noise (std up to 0.15) and, for half the images, a 3x3 blur."""
    n = x.shape[0]
    blurred = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    use_blur = (torch.rand(n, 1, 1, 1, generator=gen) < 0.5).float()
    x = use_blur * blurred + (1 - use_blur) * x
    std = 0.15 * torch.rand(n, 1, 1, 1, generator=gen)
    return x + std * torch.randn(x.shape, generator=gen)


@torch.no_grad()
def predict(net: ConvClassifier, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """Leaf index of every image (N, C, H, W) in [-1, 1]."""
    device = next(net.parameters()).device
    return torch.cat([net(images[i : i + batch].to(device)).argmax(1).cpu() for i in range(0, len(images), batch)])


@torch.no_grad()
def embed(net: ConvClassifier, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """Penultimate features (N, feature_dim) of images (N, C, H, W) in [-1, 1]: the space of PRDC, FD, Vendi."""
    device = next(net.parameters()).device
    return torch.cat([net.embed(images[i : i + batch].to(device)).cpu() for i in range(0, len(images), batch)])


def _cached(folder: Path, cfg: ClassifierConfig, device: torch.device) -> tuple[ConvClassifier, dict] | None:
    from safetensors.torch import load_file

    if not ((folder / "info.json").exists() and (folder / "model.safetensors").exists()):
        return None
    net = ConvClassifier(cfg)
    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    return net.to(device).eval(), runs.read_json(folder / "info.json") | {"cached": True}


def load_or_train(d: ClassifierData, device: torch.device, progress: bool = True) -> tuple[ConvClassifier, dict]:
    """The cached classifier for ``d`` or a newly trained (and cached) one; info holds its held-out accuracy."""
    from safetensors.torch import save_file

    key = d.digest()
    folder = runs.cache_dir() / "classifiers" / key
    cfg = _net_config(d)
    found = _cached(folder, cfg, device)  # read without the lock: a read-only cache serves as before
    if found:
        return found
    with runs.locked(folder.parent / f".{key}.lock"):  # one process trains it, the others wait and load it
        found = _cached(folder, cfg, device)
        if found:
            return found
        net, scores = train_classifier(d, device, progress)
        info = {
            **scores,
            "classes": d.classes,
            "n_test": len(d.test),
            "n_train": len(d.train),
            "key": key,
            "spec": d.key,
        }
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".model.{os.getpid()}.tmp"
        save_file({k: v.cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp))
        os.replace(tmp, folder / "model.safetensors")
        runs.write_json(folder / "info.json", info)
    return net, info | {"cached": False}


def domain_classifier(source: DataSource, device: torch.device, progress: bool = True) -> tuple[ConvClassifier, dict]:
    """The domain classifier of a run's data source (see :func:`load_or_train`)."""
    return load_or_train(classifier_data(source), device, progress)
