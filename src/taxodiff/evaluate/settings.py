"""The ``eval:`` config sections. A data source picks (and may extend) one. No torch import."""

from __future__ import annotations

from dataclasses import dataclass

from taxodiff.config.fields import nonneg, positive, unit


@dataclass(frozen=True)
class ModeEval:
    coverage_rel: float = unit(0.25)  # a subtype is covered when its generated share >= coverage_rel * p_data
    kl_smoothing: float = nonneg(0.5)  # pseudo-count added to every subtype's generated count before the KL
    bootstrap: int = positive(1000)  # bootstrap resamples for the 95% intervals


@dataclass(frozen=True)
class ImageEval(ModeEval):
    classifier_epochs: int = positive(3)  # training epochs of the domain classifier
    features: bool = True  # also PRDC, Fréchet distance, Vendi scores and memorisation (classifier features)
    prdc_k: int = positive(5)  # neighbours for precision / recall / density / coverage
    memorisation_ratio: float = unit(1 / 3)  # a copy: d1 < ratio * d2 to its two nearest training images
