"""Evaluations as types: what a family's ``evaluate()`` wrote to ``eval.json``, read back as a study's row and as
a terminal line.

A family names its evaluation type (``Family.evaluation``); the study runner calls ``to_row()`` on every
evaluation it makes, so a study reads the same flat keys whichever family it ran. Image families share
:class:`ImageEvaluation`; the RHM family's sequences and the TreeVAE's clusterings have their own types in
their folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

MODE_KEYS = ("kl", "coverage", "entropy", "tv", "off_category")  # each with its bootstrap interval
FEATURE_KEYS = ("precision", "recall", "density", "frechet", "vendi", "vendi_data", "within_subtype_ratio")
CATEGORY_KEYS = ("subtypes", "p_data", "proportions", "coverage", "kl", "off_category", "n")


class Evaluation(Protocol):
    data: dict[str, Any]  # the evaluation as eval.json holds it

    def to_row(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class ImageEvaluation:
    """Samples of an image family scored against the data: mode metrics per category, the domain classifier's
    features, pixel statistics and, where the family has them, its own extras (a prior's fidelity, classes)."""

    data: dict[str, Any]

    def to_row(self) -> dict[str, Any]:
        r = self.data
        o = r["images"]["overall"]
        row: dict[str, Any] = {
            "sampler": r["sample"].get("sampler"),
            "steps": r["sample"].get("steps"),
            "n": o["n"],
            "entropy_data": o["entropy_data"],
            "coverage_rel": r["images"]["settings"]["coverage_rel"],
            "kl_smoothing": r["images"]["settings"]["kl_smoothing"],
            "classifier_accuracy": r["classifier"]["accuracy"],
            "classifier_style_r2": r["classifier"].get("style_r2"),
            "classifier_n_test": r["classifier"]["n_test"],
            **{k: o[k] for k in MODE_KEYS},
            **{f"{k}_ci": o["ci"][k] for k in MODE_KEYS},
            "categories": {c: {k: v[k] for k in CATEGORY_KEYS} for c, v in r["images"]["categories"].items()},
        }
        return row | _extras(r)

    def describe(self) -> str:
        r = self.data
        o = r["images"]["overall"]
        line = (
            f"{r['model']} {r['tag']}: coverage {o['coverage']:.2f}  KL {o['kl']:.4f}  entropy {o['entropy']:.3f} "
            f"(data {o['entropy_data']:.3f})  TV {o['tv']:.3f}  off-category {o['off_category']:.3f}"
        )
        if "classes" in r:
            line += f"  class accuracy {r['classes']['accuracy']:.3f}"
        if "fidelity" in r:
            line += f"  fidelity {r['fidelity']['value']:.3f}  prior KL {r['prior']['overall']['kl']:.4f}"
        return line + _features_line(r) + f"  (classifier held-out accuracy {r['classifier']['accuracy']:.4f})"


def _extras(r: dict[str, Any]) -> dict[str, Any]:
    """The row's keys from the parts only some evaluations have: fidelity and prior, features, classes."""
    row: dict[str, Any] = {}
    if "fidelity" in r:
        row["fidelity"], row["fidelity_ci"] = r["fidelity"]["value"], r["fidelity"]["ci"]
        row["prior_kl"], row["prior_kl_ci"] = r["prior"]["overall"]["kl"], r["prior"]["overall"]["ci"]["kl"]
    if "classes" in r:
        row["class_accuracy"] = r["classes"]["accuracy"]
    f = r.get("features")
    if f:
        row |= {k: f["overall"].get(k) for k in FEATURE_KEYS}
        row["prdc_coverage"] = f["overall"].get("coverage")
        row["memorisation"] = f["memorisation"]["rate"]
        per_class = f.get("classes", {})
        row["class_frechet"], row["per_class"] = per_class.get("frechet_mean"), per_class.get("per_class")
        if "pixels" in f:
            row["pixel_swd"], row["pixel_swd_data"] = f["pixels"]["swd"], f["pixels"]["swd_data"]
    return row


def _features_line(r: dict[str, Any]) -> str:
    if "features" not in r:
        return ""
    f, line = r["features"], ""
    if f["overall"].get("precision") is not None:
        line += f"  precision {f['overall']['precision']:.3f}  recall {f['overall']['recall']:.3f}"
    line += f"  copies {f['memorisation']['rate']:.3f}"
    if f.get("classes", {}).get("frechet_mean") is not None:
        line += f"  class FD {f['classes']['frechet_mean']:.2f}"
    if "pixels" in f:
        line += f"  pixel SWD {f['pixels']['swd']:.1f} (data {f['pixels']['swd_data']:.1f})"
    return line
