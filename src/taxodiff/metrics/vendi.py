"""The Vendi score (Friedman & Dieng 2023): the effective number of distinct samples.

VS = exp(-sum_i lambda_i log lambda_i), lambda the eigenvalues of K / n for a similarity kernel K with
K(x, x) = 1. We use the cosine kernel on feature vectors (rows L2-normalised), whose non-zero
eigenvalues are those of X^T X / n: a (D, D) problem, so thousands of samples cost nothing. VS is 1
for n copies of one sample and n for n orthogonal samples.

Computed per predicted subtype it measures *within-mode* diversity, which tells a model that drops
modes (fewer subtypes, each varied) from one that collapses inside a mode (every subtype present, each
nearly one image).
"""

from __future__ import annotations

import numpy as np


def vendi_score(x: np.ndarray) -> float:
    """Vendi score of the rows of x (n, d) under the cosine kernel. Rows of zeros are not allowed."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"vendi_score needs a non-empty (n, d) array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("vendi_score: a feature vector is all zeros (the cosine kernel is undefined)")
    x = x / norms
    lam = np.linalg.eigvalsh(x.T @ x / len(x))
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def vendi_by_group(x: np.ndarray, groups: np.ndarray, num_groups: int, min_size: int = 2) -> list[float | None]:
    """Vendi score of the rows of each group (None where a group has fewer than min_size rows)."""
    x, groups = np.asarray(x), np.asarray(groups)
    return [vendi_score(x[groups == g]) if (groups == g).sum() >= min_size else None for g in range(num_groups)]
