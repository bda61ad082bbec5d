"""Pixel quality: the sliced Wasserstein distance between the local patches of two image sets, level by level
of a Laplacian pyramid (Karras et al. 2018, "Progressive growing of GANs", section 5 and appendix D).

Why this measure: the domain classifier's features are trained to tell shapes apart and are nearly blind to
speckle, grain or a wrong shade inside a figure. Patch statistics of a Laplacian pyramid are not: the finest
level holds edges, grain and noise, the coarser levels hold blobs and colour. Every image is split into its
pyramid; from every level, ``per_image`` patches of ``patch`` x ``patch`` pixels (all channels) are cut at
random positions; the distance between the two sets of patches is the sliced Wasserstein distance (the mean,
over random unit directions, of the 1-D Wasserstein-1 distance between the projected sets). It needs no
trained network and works at any size (8x8 digits: one level), grey or colour.

One change from the paper: the paper whitens each set of patches by its own mean and standard deviation,
which hides a global shift of colour or contrast. Here both sets are normalised with the *reference's*
per-channel mean and standard deviation, so a colour error counts. Values are x 1e3 as in the paper. They
depend on the number of images, so a score is read beside the data's own value: the same count of training
images against the same reference (what a perfect generator would score).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


@dataclass(frozen=True)
class SWDSettings:
    patch: int = 7  # patch side at each level (capped by the level's size)
    per_image: int = 64  # patches cut from each image at each level
    directions: int = 128  # random projections per repeat
    repeats: int = 2  # independent sets of directions (their distances are averaged)
    min_size: int = 8  # the coarsest level is at least this many pixels on its shorter side
    seed: int = 0


def _blur(x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = torch.outer(_BINOMIAL, _BINOMIAL).to(x)[None, None].expand(c, 1, 5, 5)
    mode = "reflect" if min(x.shape[-2:]) > 2 else "replicate"
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode=mode), k, groups=c)


def laplacian_pyramid(x: torch.Tensor, min_size: int = 8) -> list[torch.Tensor]:
    """Band-pass levels of (N, C, H, W) images, finest first; the last is the low-pass residual.

    Levels halve the size while the next one keeps at least ``min_size`` pixels; the levels sum back to x
    (each level is the image minus its blurred, downsampled and upsampled copy)."""
    levels: list[torch.Tensor] = []
    g = x
    while min(g.shape[-2:]) // 2 >= min_size:
        low = _blur(g)[..., ::2, ::2]
        up = F.interpolate(low, size=g.shape[-2:], mode="bilinear", align_corners=False)
        levels.append(g - up)
        g = low
    levels.append(g)
    return levels


def patches(level: torch.Tensor, patch: int, per_image: int, gen: torch.Generator) -> torch.Tensor:
    """(N * per_image, C * p * p) patches of (N, C, H, W) cut at random positions (p capped by H and W)."""
    n, c, h, w = level.shape
    p = min(patch, h, w)
    ys = torch.randint(0, h - p + 1, (n, per_image), generator=gen)
    xs = torch.randint(0, w - p + 1, (n, per_image), generator=gen)
    offs = torch.arange(p)
    rows = (ys[..., None] + offs)[..., :, None].expand(n, per_image, p, p)  # (n, k, p, p)
    cols = (xs[..., None] + offs)[..., None, :].expand(n, per_image, p, p)
    flat = level.reshape(n, c, h * w)
    idx = (rows * w + cols).reshape(n, 1, per_image * p * p).expand(n, c, -1)
    out = flat.gather(2, idx).reshape(n, c, per_image, p * p)
    return out.permute(0, 2, 1, 3).reshape(n * per_image, c * p * p)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: int, repeats: int, gen: torch.Generator) -> float:
    """Mean over random unit directions of W1 between the projections of rows of a and b (equal counts)."""
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs two sets of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    total = 0.0
    for _ in range(repeats):
        d = torch.randn(a.shape[1], directions, generator=gen, dtype=a.dtype)
        d = d / d.norm(dim=0, keepdim=True)
        pa = np.sort((d.T @ a.T).numpy(), axis=1)  # numpy's sort: several times torch's on this CPU
        pb = np.sort((d.T @ b.T).numpy(), axis=1)
        total += float(np.abs(pa - pb).mean())
    return total / repeats


def normalised_patches(
    images: torch.Tensor, reference: torch.Tensor, s: SWDSettings, gen: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
    """Per pyramid level, finest first: (patches of ``images``, patches of ``reference``, the level's width),
    both normalised by the reference level's per-channel mean and standard deviation; as many images of each
    set (the smaller set decides), chosen and cut with ``gen`` (lazily: a caller may draw from it between
    levels)."""
    if images.shape[1:] != reference.shape[1:] or min(len(images), len(reference)) < 1:
        raise ValueError(
            f"pixel distances need two non-empty image sets of one shape, got {tuple(images.shape)}, "
            f"{tuple(reference.shape)}"
        )
    n = min(len(images), len(reference))
    a_img = images[torch.randperm(len(images), generator=gen)[:n]].float()
    b_img = reference[torch.randperm(len(reference), generator=gen)[:n]].float()
    for la, lb in zip(laplacian_pyramid(a_img, s.min_size), laplacian_pyramid(b_img, s.min_size), strict=True):
        pa, pb = patches(la, s.patch, s.per_image, gen), patches(lb, s.patch, s.per_image, gen)
        c = la.shape[1]
        ref = pb.reshape(len(pb), c, -1)
        mean = ref.mean(dim=(0, 2)).repeat_interleave(ref.shape[2])
        std = ref.std(dim=(0, 2)).clamp_min(1e-8).repeat_interleave(ref.shape[2])
        yield (pa - mean) / std, (pb - mean) / std, int(la.shape[-1])


def swd(images: torch.Tensor, reference: torch.Tensor, settings: SWDSettings | None = None) -> dict[str, object]:
    """Sliced Wasserstein distance (x 1e3) between two image sets in [-1, 1], per pyramid level and their mean.

    Both sets are cut into the same number of patches: the smaller set decides how many."""
    s = settings or SWDSettings()
    gen = torch.Generator().manual_seed(s.seed)
    values, sizes = [], []
    for pa, pb, width in normalised_patches(images, reference, s, gen):
        values.append(1e3 * sliced_wasserstein(pa, pb, s.directions, s.repeats, gen))
        sizes.append(width)
    n = min(len(images), len(reference))
    return {"swd": sum(values) / len(values), "levels": values, "sizes": sizes, "n_images": n}


def patch_frechet(images: torch.Tensor, reference: torch.Tensor, settings: SWDSettings | None = None) -> dict:
    """Fréchet distance between the same normalised pyramid patches of two image sets, per level and their mean:
    a Fréchet distance that sees blur and grain (each level's patches as a Gaussian; no network)."""
    from taxodiff.metrics.frechet import frechet_distance

    s = settings or SWDSettings()
    levels = list(normalised_patches(images, reference, s, torch.Generator().manual_seed(s.seed)))
    values = [frechet_distance(pb, pa) for pa, pb, _ in levels]
    return {"patch_fd": sum(values) / len(values), "levels": values, "sizes": [w for *_, w in levels]}
