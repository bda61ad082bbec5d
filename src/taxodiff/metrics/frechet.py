"""Fréchet distance between real and generated feature sets (FID with our own domain classifier).

d^2 = |mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) between Gaussians fitted to the two sets.
torchmetrics computes it; we hand it feature vectors already extracted (an identity "network"), so it
needs neither Inception weights nor a download. Values are on the scale of the classifier's features,
comparable between runs scored by the same classifier, not with published FIDs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class _Features(nn.Identity):
    """Identity with the ``num_features`` attribute torchmetrics reads instead of probing with an image."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features


def frechet_distance(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between the rows of real (N, D) and fake (M, D); N, M >= 2."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    r = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    f = torch.as_tensor(np.asarray(fake), dtype=torch.float64)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1] or min(len(r), len(f)) < 2:
        shapes = f"{tuple(r.shape)}, {tuple(f.shape)}"
        raise ValueError(f"frechet_distance needs two (n >= 2, d) arrays of one width, got {shapes}")
    fid = FrechetInceptionDistance(feature=_Features(r.shape[1]))
    fid.update(r, real=True)
    fid.update(f, real=False)
    return max(float(fid.compute()), 0.0)
