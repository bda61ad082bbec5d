"""Precision, recall, density and coverage of generated samples in a feature space.

Precision and recall as k-nearest-neighbour manifolds (Kynkäänniemi et al. 2019), density and coverage
(Naeem et al. 2020). With real features R (N rows), fake features F (M rows) and r_k(x) the distance
from x to its k-th nearest neighbour in its own set (itself excluded):

  precision = 1/M sum_j [ exists i: |f_j - r_i| <= r_k(r_i) ]         (fakes inside the real manifold)
  recall    = 1/N sum_i [ exists j: |r_i - f_j| <= r_k(f_j) ]         (reals inside the fake manifold)
  density   = 1/(kM) sum_j sum_i [ |f_j - r_i| <= r_k(r_i) ]           (how crowded, ~1 when matched)
  coverage  = 1/N sum_i [ min_j |r_i - f_j| <= r_k(r_i) ]              (real neighbourhoods hit)

Distances are Euclidean, computed in float64.
"""

from __future__ import annotations

import numpy as np
import torch

PRDC_KEYS = ("precision", "recall", "density", "coverage")


def _as64(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def kth_neighbour_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from every row of x to its k-th nearest other row."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # the 1st smallest is the row itself (0)


def prdc(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 5) -> dict[str, float]:
    """The four metrics above. real: (N, D), fake: (M, D); needs N > k and M > k."""
    r, f = _as64(real), _as64(fake)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"prdc needs two (n, d) arrays of one width, got {tuple(r.shape)} and {tuple(f.shape)}")
    if min(len(r), len(f)) <= k:
        raise ValueError(f"prdc with k={k} needs more than {k} real and fake samples, got {len(r)} and {len(f)}")
    real_radii, fake_radii = kth_neighbour_radii(r, k), kth_neighbour_radii(f, k)
    d = torch.cdist(r, f)  # (N, M)
    inside_real = d <= real_radii[:, None]  # fake j inside the ball of real i
    return {
        "precision": float(inside_real.any(dim=0).double().mean()),
        "recall": float((d <= fake_radii[None, :]).any(dim=1).double().mean()),
        "density": float(inside_real.double().sum() / (k * len(f))),
        "coverage": float((d.min(dim=1).values <= real_radii).double().mean()),
    }
