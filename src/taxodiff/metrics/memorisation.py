"""Memorisation: the share of samples that are near-copies of one training image.

A sample counts as memorised when its nearest training image is much closer than the second nearest:
d1 < ratio * d2 (ratio 1/3, Yoon et al. 2023), Euclidean distances in pixel space. For a model that
generalises, a sample's two nearest training images are about equally far; for a copy, d1 ~ 0.
"""

from __future__ import annotations

import torch


def nearest_two(samples: torch.Tensor, train: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """(N, 2) distances from each sample to its nearest and second-nearest training row (flattened)."""
    if len(train) < 2:
        raise ValueError(f"memorisation needs at least 2 training images, got {len(train)}")
    s, t = samples.flatten(1).float(), train.flatten(1).float()
    if s.shape[1] != t.shape[1]:
        raise ValueError(f"samples have {s.shape[1]} values each, training images {t.shape[1]}")
    out = [torch.cdist(s[i : i + chunk], t).topk(2, dim=1, largest=False).values for i in range(0, len(s), chunk)]
    return torch.cat(out)


def memorisation(samples: torch.Tensor, train: torch.Tensor, ratio: float = 1 / 3) -> dict[str, float]:
    """Memorisation rate and the median nearest-neighbour distance ratio d1 / d2."""
    d = nearest_two(samples, train).double()
    r = d[:, 0] / d[:, 1].clamp_min(1e-12)
    return {"rate": float((r < ratio).double().mean()), "median_ratio": float(r.median()), "ratio": ratio}
