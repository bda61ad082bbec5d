"""Aggregation over training seeds, shared by every study.

Rows of one group differ only by training seed. A group's value is the mean over seeds. With one seed its
interval is that seed's 95% bootstrap interval (over samples); with several, ``<m>_sd`` is the standard
deviation over seeds, ``<m>_ci`` the [min, max] over seeds and ``<m>_boot`` the seeds' bootstrap intervals
averaged bound by bound. Displayed numbers read "mean ± sd [bootstrap]" for several seeds and
"value [bootstrap]" for one (:func:`mean_sd` for a plain list of per-seed values). Every verdict is chosen by
comparing those numbers with stated thresholds.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from taxodiff.metrics.modes import KL_MATCHED as KL_OK
from taxodiff.metrics.modes import chance_lost

METRICS = (
    "kl",
    "coverage",
    "entropy",
    "tv",
    "off_category",
    "fidelity",
    "prior_kl",
    "precision",
    "recall",
    "density",
    "prdc_coverage",
    "frechet",
    "vendi",
    "within_subtype_ratio",
    "memorisation",
    "pixel_swd",
    "pixel_swd_data",
    "class_accuracy",
)


def interval_note(n_seeds: int) -> str:
    """What the displayed intervals are, in words."""
    if n_seeds == 1:
        return "one training seed; in brackets the 95% bootstrap interval over samples"
    return (
        f"mean ± sd over {n_seeds} training seeds; in brackets the seeds' 95% bootstrap intervals over samples, "
        "averaged bound by bound"
    )


def band(g: dict[str, Any], m: str) -> tuple[float, float]:
    """A figure's error band: mean ± sd over several seeds, the bootstrap interval for one (none: the value)."""
    v = g[m]
    if f"{m}_sd" in g:
        return v - g[f"{m}_sd"], v + g[f"{m}_sd"]
    ci = g.get(f"{m}_ci") or [v, v]
    return ci[0], ci[1]


def band_note(n_seeds: int, what: str = "bands") -> str:
    """What a figure's ``what`` (bands, error bars) show, in words."""
    return f"95% bootstrap {what}, one seed" if n_seeds == 1 else f"{what}: ± 1 sd over {n_seeds} seeds"


def group_rows(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Aggregate seeds: mean, sd and intervals per metric, mean subtype proportions, the seeds' run dirs."""
    by: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[tuple(r.get(k) for k in keys)].append(r)
    return [_group(dict(zip(keys, key, strict=True)), rs) for key, rs in by.items()]


def _group(g: dict[str, Any], rs: list[dict[str, Any]]) -> dict[str, Any]:
    g["seeds"] = [r["seed"] for r in rs]
    g["run_dirs"] = [r["run_dir"] for r in rs]
    g["tag"] = rs[0]["tag"]
    g["entropy_data"] = rs[0]["entropy_data"]
    for m in METRICS:
        vals = [r[m] for r in rs if r.get(m) is not None]
        if not vals:
            continue
        g[m] = float(np.mean(vals))
        if len(vals) == 1:  # one seed, or one seed that has the metric: its bootstrap interval
            g[f"{m}_ci"] = next(r.get(f"{m}_ci") for r in rs if r.get(m) is not None)
        else:
            g[f"{m}_ci"] = [float(min(vals)), float(max(vals))]
            g[f"{m}_sd"] = float(np.std(vals, ddof=1))
        boots = [r[f"{m}_ci"] for r in rs if r.get(f"{m}_ci")]
        if boots:
            g[f"{m}_boot"] = [float(np.mean([b[0] for b in boots])), float(np.mean([b[1] for b in boots]))]
    g["categories"] = {
        c: {
            "subtypes": v["subtypes"],
            "p_data": v["p_data"],
            "proportions": np.mean([r["categories"][c]["proportions"] for r in rs], axis=0).tolist(),
            "lost_in_seeds": [_lost(v, r["categories"][c]["proportions"], r["coverage_rel"]) for r in rs],
        }
        for c, v in rs[0]["categories"].items()
    }
    g["chance_lost"] = _chance_lost(rs[0])
    return g


def _chance_lost(r: dict[str, Any]) -> float | None:
    """How often a seed of an exact sampler, asked for as many samples a category as row ``r``, loses a class by
    chance (None for rows that do not record their samples a category)."""
    cats = r["categories"].values()
    if "coverage_rel" not in r or any("n" not in v for v in cats):
        return None
    kept = np.prod([1.0 - chance_lost(v["p_data"], int(v["n"]), r["coverage_rel"]) for v in cats])
    return float(1.0 - kept)


def _lost(cat: dict[str, Any], proportions: list[float], coverage_rel: float) -> list[str]:
    return [s for s, q, p in zip(cat["subtypes"], proportions, cat["p_data"], strict=True) if q < coverage_rel * p]


def mean_sd(values: list[float | None], fmt: str) -> str:
    """ "mean ± sd" over seeds (sample sd; the mean alone for one value; "-" for none), missing values skipped."""
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    return fmt.format(np.mean(v)) + (f" ± {fmt.format(np.std(v, ddof=1))}" if len(v) > 1 else "")


def find(groups: list[dict[str, Any]], **want: Any) -> dict[str, Any] | None:
    for g in groups:
        if all(g.get(k) == v for k, v in want.items()):
            return g
    return None


def shown(g: dict[str, Any], m: str, fmt: str = ".3f") -> str:
    """A group's metric as displayed: "mean ± sd [bootstrap]" over several seeds, "value [bootstrap]" for one."""
    if m not in g:
        return "n/a"
    if f"{m}_sd" in g:
        boot = g.get(f"{m}_boot")
        return f"{g[m]:{fmt}} ± {g[f'{m}_sd']:{fmt}}" + (f" [{boot[0]:{fmt}}, {boot[1]:{fmt}}]" if boot else "")
    ci = g.get(f"{m}_ci")
    return f"{g[m]:{fmt}}" + (f" [{ci[0]:{fmt}}, {ci[1]:{fmt}}]" if ci else "")


def verdict(g: dict[str, Any]) -> str:
    """Lost modes / mis-weighted / matched, from the group's numbers (a mode is lost in a seed when its share
    falls below coverage_rel x its data share; mis-weighted when the KL's lower bound, the bootstrap one for one
    seed and every seed's value for several, is above KL_MATCHED)."""
    lost: dict[str, set[str]] = {}
    for c, v in g["categories"].items():
        for seed_lost in v["lost_in_seeds"]:
            if seed_lost:
                lost.setdefault(c, set()).update(seed_lost)
    n = len(g["seeds"])
    if lost:
        seeds_with = sum(any(v["lost_in_seeds"][i] for v in g["categories"].values()) for i in range(n))
        what = "; ".join(f"{', '.join(sorted(s))} in {c}" for c, s in lost.items())
        return f"lost modes ({what}; in {seeds_with} of {n} seed{'s' * (n > 1)}), KL {shown(g, 'kl')}" + _quality(g)
    lo = (g.get("kl_ci") or [g["kl"]])[0]
    bound = "every seed" if n > 1 else "interval"
    if lo > KL_OK:
        text = f"kept every mode but mis-weighted them: KL {shown(g, 'kl')} ({bound} above {KL_OK})"
    elif g["kl"] > KL_OK:
        not_all = "not every seed is" if n > 1 else "its interval does not exclude the data's"
        text = f"kept every mode; KL {shown(g, 'kl')} is above {KL_OK} but {not_all}"
        text += f" above {KL_OK}" if n > 1 else ""
    else:
        text = f"kept every mode with proportions consistent with the data: KL {shown(g, 'kl')}"
    return text + _quality(g)


def _quality(g: dict[str, Any]) -> str:
    """Off-category rate and (where there is one) fidelity when they show failed images, not modes."""
    bad = []
    if g.get("off_category", 0) > 0.02:
        bad.append(f"off-category {shown(g, 'off_category')}")
    if g.get("fidelity", 1) < 0.95:
        bad.append(f"fidelity {shown(g, 'fidelity')}")
    return f"; images failed: {', '.join(bad)}" if bad else ""
