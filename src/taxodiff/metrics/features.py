"""Sample-set metrics in the domain classifier's feature space, per category and overall.

Given features of generated samples and of fresh ground-truth renders of the same categories
(the reference), and the subtype each was assigned to: precision / recall / density / coverage,
the Fréchet distance, the Vendi score of each set, and the within-subtype Vendi score of generated
images relative to the reference's (1 = as varied inside each mode as the data; well below 1 =
collapse inside modes even when every mode is present).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from taxodiff.hierarchy import Hierarchy
from taxodiff.metrics.frechet import frechet_distance
from taxodiff.metrics.prdc import prdc
from taxodiff.metrics.vendi import vendi_by_group, vendi_score
from taxodiff.profiling import timed


def _set_metrics(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float | None]:
    out: dict[str, float | None] = {key: None for key in ("precision", "recall", "density", "coverage")}
    with timed("PRDC"):
        if min(len(real), len(fake)) > k:
            out.update(prdc(real, fake, k))
    with timed("Frechet"):
        out["frechet"] = frechet_distance(real, fake) if min(len(real), len(fake)) >= 2 else None
    with timed("Vendi"):
        out["vendi"] = vendi_score(fake) if len(fake) else None
        out["vendi_data"] = vendi_score(real) if len(real) else None
    return out


def within_subtype(
    fake: np.ndarray, fake_leaf: np.ndarray, real: np.ndarray, real_leaf: np.ndarray, leaves: list[int]
) -> dict[str, Any]:
    """Vendi score inside each subtype (generated, by assigned leaf; data, by true leaf) and their ratio.

    The ratio averages generated/data over the subtypes with at least 2 samples on both sides
    (None when there is none)."""
    n = max(leaves) + 1
    gen = vendi_by_group(fake, fake_leaf, n)
    dat = vendi_by_group(real, real_leaf, n)
    ratios = [gen[i] / dat[i] for i in leaves if gen[i] is not None and dat[i] is not None]
    return {
        "vendi": [gen[i] for i in leaves],
        "vendi_data": [dat[i] for i in leaves],
        "ratio": float(np.mean(ratios)) if ratios else None,
    }


def feature_metrics(
    h: Hierarchy,
    fake: np.ndarray,
    fake_z2: np.ndarray,
    fake_leaf: np.ndarray,
    real: np.ndarray,
    real_z2: np.ndarray,
    real_leaf: np.ndarray,
    k: int = 5,
) -> dict[str, Any]:
    """Per-category and overall (all categories pooled) feature-space metrics; see the module doc."""
    cats: dict[str, Any] = {}
    for c, name in enumerate(h.category_names):
        f, r = fake_z2 == c, real_z2 == c
        if not f.any():
            continue
        cats[name] = _set_metrics(real[r], fake[f], k)
        cats[name]["within_subtype"] = within_subtype(fake[f], fake_leaf[f], real[r], real_leaf[r], h.leaves_of(c))
    overall = _set_metrics(real, fake, k)
    ratios = [v["within_subtype"]["ratio"] for v in cats.values() if v["within_subtype"]["ratio"] is not None]
    overall["within_subtype_ratio"] = float(np.mean(ratios)) if ratios else None
    return {"categories": cats, "overall": overall, "k": k}
