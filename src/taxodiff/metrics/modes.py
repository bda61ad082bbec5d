"""How much of each mode is generated: proportions, coverage, entropy, KL, total variation.

Inputs are integer labels: for each generated sample, the category it was asked for (z2) and the leaf
(z1) it was assigned to (by the domain classifier for images, by the nearest anchor for prior samples).
Within a category, proportions are over that category's own subtypes; samples assigned to a leaf of
another category are counted apart, as the off-category rate (failures or hybrids, not a mode).

Definitions (natural logs):
  coverage  = share of the category's subtypes whose generated share >= coverage_rel * p_data(z1 | z2)
  entropy   = H(z1_hat | z2 = c) = -sum q log q over the in-category proportions q
  KL        = KL(p_data(. | c) || q_s), q_s = (count + alpha) / (n + alpha * K)  (additive smoothing alpha)
  TV        = 1/2 sum |p_data - q|
Conditional quantities over all categories are averaged with weights p_data(z2).

A rare subtype can fall under its coverage threshold by sampling noise alone: :func:`chance_lost` is how often
a sampler that draws the data's proportions exactly loses one at a given number of samples, the false-alarm
rate against which "a class lost in k of n seeds" is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taxodiff.hierarchy import Hierarchy

EXACT_UP_TO, MONTE_CARLO = 2000, 100_000  # chance_lost: exact up to this many samples, then seeded draws
KL_MATCHED = 0.02  # nats: reports call proportions matched below this (an interval entirely above: mis-weighted)


@dataclass(frozen=True)
class ModeSettings:
    coverage_rel: float = 0.25
    kl_smoothing: float = 0.5
    bootstrap: int = 1000
    seed: int = 0


def entropy(q: np.ndarray) -> float:
    q = q[q > 0]
    return float(-(q * np.log(q)).sum())


def kl(p: np.ndarray, q: np.ndarray) -> float:
    m = p > 0
    return float((p[m] * np.log(p[m] / q[m])).sum()) if np.all(q[m] > 0) else float("inf")


def category_stats(
    pred: np.ndarray, p_data: np.ndarray, leaves: list[int], s: ModeSettings
) -> dict[str, float | list[float]]:
    """Metrics for one category. pred: (n,) assigned leaf of each sample asked for this category."""
    n = len(pred)
    counts = np.array([(pred == leaf).sum() for leaf in leaves], dtype=np.float64)
    inside = counts.sum()
    q = counts / inside if inside > 0 else np.zeros_like(counts)
    smoothed = (counts + s.kl_smoothing) / (inside + s.kl_smoothing * len(leaves))
    return {
        "n": n,
        "proportions": q.tolist(),
        "off_category": float(1 - inside / n) if n else float("nan"),
        "coverage": float(np.mean(q >= s.coverage_rel * p_data)) if inside > 0 else 0.0,
        "entropy": entropy(q),
        "kl": kl(p_data, smoothed),
        "tv": float(0.5 * np.abs(p_data - q).sum()),
    }


SCALARS = ("off_category", "coverage", "entropy", "kl", "tv")


def mode_metrics(h: Hierarchy, z2: np.ndarray, pred: np.ndarray, s: ModeSettings | None = None) -> dict:
    """Per-category and overall metrics with bootstrap 95% intervals (resampling within each category)."""
    s = s or ModeSettings()
    z2, pred = np.asarray(z2), np.asarray(pred)
    rng = np.random.default_rng(s.seed)
    weights = np.array(h.category_probs())
    per_cat, boot = {}, {k: np.zeros((s.bootstrap, h.num_categories)) for k in SCALARS}
    for c, name in enumerate(h.category_names):
        leaves, p_data = h.leaves_of(c), np.array(h.conditional(c))
        mine = pred[z2 == c]
        if len(mine) == 0:
            continue
        stats = category_stats(mine, p_data, leaves, s)
        stats["subtypes"] = [h.leaf_names[i] for i in leaves]
        stats["p_data"] = p_data.tolist()
        stats["entropy_data"] = entropy(p_data)
        draws = rng.integers(0, len(mine), size=(s.bootstrap, len(mine)))
        for b in range(s.bootstrap):
            st = category_stats(mine[draws[b]], p_data, leaves, s)
            for k in SCALARS:
                boot[k][b, c] = st[k]
        stats["ci"] = {k: _interval(boot[k][:, c]) for k in SCALARS}
        per_cat[name] = stats
    present = [c for c, name in enumerate(h.category_names) if name in per_cat]
    w = weights[present] / weights[present].sum()
    overall = {k: float(sum(w[i] * per_cat[h.category_names[c]][k] for i, c in enumerate(present))) for k in SCALARS}
    overall["ci"] = {k: _interval(boot[k][:, present] @ w) for k in SCALARS}
    overall["entropy_data"] = h.entropy()
    overall["n"] = int(len(pred))
    return {"categories": per_cat, "overall": overall, "settings": s.__dict__}


def fidelity(
    asked: np.ndarray, pred: np.ndarray, bootstrap: int = 1000, seed: int = 0
) -> dict[str, float | list[float]]:
    """Share of samples assigned to the leaf they were generated from, with a bootstrap 95% interval."""
    hit = (np.asarray(asked) == np.asarray(pred)).astype(np.float64)
    rng = np.random.default_rng(seed)
    means = hit[rng.integers(0, len(hit), size=(bootstrap, len(hit)))].mean(axis=1)
    return {"value": float(hit.mean()), "ci": _interval(means)}


def chance_lost(p_data: list[float], n: int, coverage_rel: float) -> float:
    """The probability that n draws from p_data (multinomial) leave some subtype's share under coverage_rel x its
    p_data: how often an exact sampler loses a subtype of this category by chance. Exact, by dynamic programming
    over the subtypes (each count binomial given those before it): O(K n^2) time and n^2 memory, so above
    EXACT_UP_TO samples it is estimated from MONTE_CARLO seeded draws instead (standard error under 0.002)."""
    from scipy.stats import binom

    p = np.asarray(p_data, dtype=np.float64)
    if n > EXACT_UP_TO:
        return _chance_lost_drawn(p, n, coverage_rel)
    counts = np.arange(n + 1)
    need = [int(np.argmax(counts / max(n, 1) >= coverage_rel * pk)) for pk in p]  # the fewest draws kept
    m, c = np.meshgrid(counts, counts, indexing="ij")  # m draws left, c of them to this subtype
    kept = (counts >= need[-1]).astype(np.float64)  # the last subtype takes every draw left
    for k in range(len(p) - 2, -1, -1):
        rest = p[k:].sum()
        pmf = binom.pmf(c, m, p[k] / rest if rest > 0 else 0.0) * (c >= need[k])
        kept = (pmf * np.where(c <= m, kept[np.clip(m - c, 0, n)], 0.0)).sum(axis=1)
    return float(min(max(1.0 - kept[n], 0.0), 1.0))


def _chance_lost_drawn(p: np.ndarray, n: int, coverage_rel: float) -> float:
    draws = np.random.default_rng(0).multinomial(n, p / p.sum(), size=MONTE_CARLO)
    return float((draws / n < coverage_rel * p).any(axis=1).mean())


def chance_in_seeds(p_seed: float, k: int, seeds: int) -> float:
    """The probability that at least k of ``seeds`` independent seeds lose a class, each with probability p_seed."""
    from scipy.stats import binom

    return float(binom.sf(k - 1, seeds, p_seed)) if k > 0 else 1.0


def _interval(x: np.ndarray) -> list[float]:
    lo, hi = np.percentile(x, [2.5, 97.5])
    return [float(lo), float(hi)]
