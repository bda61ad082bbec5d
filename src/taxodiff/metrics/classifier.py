"""The domain classifier: a CNN trained on ground-truth renders to tell which leaf an image shows.

A second head regresses the style z0 (offset, scale, hue, brightness, detail) from the same features, so
that the features the sample-set metrics use (PRDC, Fréchet, Vendi) see style as well as shape: a model
that paints every dog the same colour is less diverse in this space, not only in pixels.

It is trained on images with uniform leaf probabilities (so it has no prior favouring frequent
subtypes), tested on a held-out set, and cached on disk keyed by everything that defines it (shapes,
size, style, settings, seed), as safetensors plus JSON. ``TAXODIFF_CACHE`` sets the cache folder
(default ``~/.cache/taxodiff``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from taxodiff import runs, seeds
from taxodiff.data.images import StyleConfig, make_images
from taxodiff.hierarchy import Hierarchy
from taxodiff.nets.classifier import ClassifierConfig, ConvClassifier

VERSION = 3
STYLE_DIM = 7


@dataclass(frozen=True)
class DomainSpec:
    shapes: tuple[str, ...]  # class i draws shapes[i]
    size: int
    style: StyleConfig
    n_train: int = 8000
    n_test: int = 2000
    epochs: int = 3
    width: int = 16
    seed: int = 0

    def key(self) -> str:
        blob = json.dumps({"v": VERSION, **asdict(self)}, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("TAXODIFF_CACHE", Path.home() / ".cache" / "taxodiff"))


def _uniform(shapes: Sequence[str]) -> Hierarchy:
    return Hierarchy.from_spec({"all": {f"c{i}": {"shape": s} for i, s in enumerate(shapes)}})


def train_classifier(spec: DomainSpec, device: torch.device, progress: bool = True) -> tuple[ConvClassifier, dict]:
    """Train from scratch; returns the classifier, its held-out accuracy and the style head's held-out R^2."""
    from tqdm.auto import tqdm

    h = _uniform(spec.shapes)
    train = make_images(h, spec.n_train, spec.size, seeds.derive(spec.seed, "classifier", "train"), spec.style)
    test = make_images(h, spec.n_test, spec.size, seeds.derive(spec.seed, "classifier", "test"), spec.style)
    torch.manual_seed(seeds.derive(spec.seed, "classifier", "init") % 2**31)
    net = ConvClassifier(_net_config(spec)).to(device)
    targets = style_targets(train.z0, spec.style)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    gen = seeds.generator(spec.seed, "classifier", "batches")
    bs = 128
    steps = spec.epochs * (spec.n_train // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    bar = tqdm(total=steps, desc="domain classifier", unit="step", disable=not progress, dynamic_ncols=True)
    for _ in range(spec.epochs):
        perm = torch.randperm(spec.n_train, generator=gen)
        for i in range(spec.n_train // bs):
            idx = perm[i * bs : (i + 1) * bs]
            x = corrupt(train.images[idx], gen).to(device)
            feats = net.embed(x)
            loss = F.cross_entropy(net.head(feats), train.z1[idx].to(device))
            loss = loss + F.mse_loss(net.style_head(feats), targets[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    bar.close()
    net.eval()
    acc = float((predict(net, test.images) == test.z1).float().mean())
    with torch.no_grad():
        pred = torch.cat([net.style(test.images[i : i + 512].to(device)).cpu() for i in range(0, len(test), 512)])
    truth = style_targets(test.z0, spec.style)
    r2 = 1 - ((pred - truth) ** 2).mean(0) / truth.var(0)
    return net, {"accuracy": acc, "style_r2": float(r2.mean())}


def _net_config(spec: DomainSpec) -> ClassifierConfig:
    return ClassifierConfig(num_classes=len(spec.shapes), width=spec.width, style_dim=STYLE_DIM)


def style_targets(z0: torch.Tensor, style: StyleConfig) -> torch.Tensor:
    """z0 (N, 6) -> (N, 7) regression targets in about [-1, 1]: offsets, scale, hue on the circle, brightness,
    detail."""
    lo_s, hi_s = style.scale
    lo_b, hi_b = style.brightness
    off = z0[:, :2] / max(style.max_offset, 1e-6)
    scale = 2 * (z0[:, 2] - lo_s) / max(hi_s - lo_s, 1e-6) - 1
    hue = 2 * torch.pi * z0[:, 3]
    bright = 2 * (z0[:, 4] - lo_b) / max(hi_b - lo_b, 1e-6) - 1
    detail = 2 * z0[:, 5] - 1
    return torch.stack([off[:, 0], off[:, 1], scale, hue.cos(), hue.sin(), bright, detail], dim=1)


def corrupt(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Training augmentation: per-image pixel noise (std up to 0.15) and, for half the images, a 3x3 blur.

    Generated images carry such artefacts; the classifier must judge the subtype, not the render's polish.
    """
    n = x.shape[0]
    blurred = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    use_blur = (torch.rand(n, 1, 1, 1, generator=gen) < 0.5).float()
    x = use_blur * blurred + (1 - use_blur) * x
    std = 0.15 * torch.rand(n, 1, 1, 1, generator=gen)
    return x + std * torch.randn(x.shape, generator=gen)


@torch.no_grad()
def predict(net: ConvClassifier, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """Leaf index of every image (N, 3, H, W) in [-1, 1]."""
    device = next(net.parameters()).device
    return torch.cat([net(images[i : i + batch].to(device)).argmax(1).cpu() for i in range(0, len(images), batch)])


@torch.no_grad()
def embed(net: ConvClassifier, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """Penultimate features (N, feature_dim) of images (N, 3, H, W) in [-1, 1]: the space of PRDC, FD, Vendi."""
    device = next(net.parameters()).device
    return torch.cat([net.embed(images[i : i + batch].to(device)).cpu() for i in range(0, len(images), batch)])


def domain_classifier(spec: DomainSpec, device: torch.device, progress: bool = True) -> tuple[ConvClassifier, dict]:
    """Load the cached classifier for ``spec`` or train and cache it. Returns (net, info with accuracy)."""
    from safetensors.torch import load_file, save_file

    folder = cache_dir() / "classifiers" / spec.key()
    cfg = _net_config(spec)
    if (folder / "info.json").exists() and (folder / "model.safetensors").exists():
        info = runs.read_json(folder / "info.json")
        net = ConvClassifier(cfg)
        net.load_state_dict(load_file(str(folder / "model.safetensors")))
        return net.to(device).eval(), info | {"cached": True}
    net, scores = train_classifier(spec, device, progress)
    info = {
        **scores,
        "classes": list(spec.shapes),
        "n_test": spec.n_test,
        "key": spec.key(),
        "spec": json.loads(json.dumps(asdict(spec), default=list)),
    }
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".model.{os.getpid()}.tmp"
    save_file({k: v.cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp))
    os.replace(tmp, folder / "model.safetensors")
    runs.write_json(folder / "info.json", info)
    return net, info | {"cached": False}
