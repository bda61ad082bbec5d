"""Guidance rules: one class each, whose fields are its config section (``sample.guiders.<rule>``), with its tag
(what it adds to a samples file's name) and its behaviour: how a conditional and an unconditional prediction
become one, and, for two rules, when to guide and what condition the network reads.

Diffusers' ``guiders`` (0.42) implement the combination rules; we adapt them to this project's denoisers
rather than copy them. Every rule here is called in its "original formulation" (Ho & Salimans 2022):
scale w = 0 is the conditional model and ``cond + w (cond - uncond)`` is plain classifier-free guidance, so
the scales of all rules mean the same thing. What each rule is, and whose code it runs:

================  =========================================================  ===================  ============
rule              what it does                                               code                 acts on
================  =========================================================  ===================  ============
cfg               classifier-free guidance (Ho & Salimans 2022)              diffusers CFG        native
interval          CFG only while sigma_t is in an interval (Kynkäänniemi     ours (the gate) +    native
                  et al. 2024; diffusers windows by step fraction only)      diffusers CFG
cads              condition-annealed sampling (Sadat et al. 2024;            ours (the condition) native
                  not in diffusers)                                          + diffusers CFG
apg               adaptive projected guidance: the update's component        diffusers APG        x_0
                  parallel to the prediction scaled by eta, its norm
                  capped at r, momentum (Sadat et al. 2025)
cfg-zero-star     CFG with the unconditional prediction rescaled by the      diffusers CFG-Zero*  v
                  optimal s*, the first steps zeroed (Fan et al. 2025)
tcfg              tangential CFG: the unconditional prediction projected     diffusers TCFG       epsilon
                  on the conditional's principal direction (Kwon et al.
                  2025)
fdg               frequency-decoupled guidance: separate scales for the      diffusers FDG        x_0
                  high and low bands of a Laplacian pyramid (Sadat 2025)     (needs kornia)
mambo             magnitude-aware guidance: the scale damped by              diffusers MAMBO-G    epsilon
                  exp(-alpha |cond - uncond| / |uncond|) (arXiv
                  2508.03442)
================  =========================================================  ===================  ============

"acts on" is the prediction the rule sees by default (``sample.guidance_space`` chooses another): the network's
own for the linear rules (where it makes no difference), and for the others the space their paper works
in (APG and FDG on the denoised image x_0; CFG-Zero*'s velocity is v here; TCFG and MAMBO-G on the noise).
diffusers' auto-guidance, perturbed-attention, skip-layer and smoothed-energy guidance need a weakened
copy of the network (layers skipped, attention perturbed) rather than an unconditional pass, and are not
adapted. ``sample.guidance_window`` (start, stop) limits any diffusers rule to that fraction of the sampling
steps (diffusers' own start/stop).

Importing this module imports no torch: the rules' fields are config sections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import nonneg, pair, unit, within

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.noise import Noise
    from taxodiff.processes.gaussian import GaussianProcess


@dataclass(frozen=True)
class Rule:
    """A guidance rule: its settings are its fields."""

    name: ClassVar[str] = "cfg"
    space: ClassVar[str] = "native"  # the prediction it acts on: "native" (the network's) or a prediction kind
    images_only: ClassVar[bool] = False  # acts on (B, C, H, W) only
    flat: ClassVar[bool] = False  # hand the guider (B, N) rows: diffusers' MAMBO-G takes norms that fail on images
    needs_process: ClassVar[bool] = False  # reads the noise schedule
    needs_noise: ClassVar[bool] = False  # draws noise of its own

    def tag(self) -> str:
        """What the rule adds to the name of the samples it draws."""
        return ""

    def guider(self, scale: float, window: tuple[float, float]) -> Any:
        """The diffusers guider of this rule at ``scale`` (original formulation)."""
        return _guider("ClassifierFreeGuidance", window, guidance_scale=scale)

    def guides_at(self, net_t: Tensor, process: GaussianProcess | None) -> bool:
        """Whether a step at network time ``net_t`` (B,) takes the unconditional pass."""
        return True

    def condition(self, cond: Tensor, net_t: Tensor, process: GaussianProcess | None, noise: Noise | None) -> Tensor:
        """The condition the network reads at network time ``net_t`` (B,)."""
        return cond


@dataclass(frozen=True)
class CFG(Rule):
    """Classifier-free guidance (Ho & Salimans 2022)."""


@dataclass(frozen=True)
class Interval(Rule):
    """CFG only while the noise level sigma_t = sqrt((1 - abar_t) / abar_t) lies in (lo, hi] (Kynkäänniemi et al.
    2024); outside it the plain conditional model, with no unconditional pass. The paper's interval for
    ImageNet-512 is (0.28, 5.42]."""

    name: ClassVar[str] = "interval"
    needs_process: ClassVar[bool] = True
    sigma: tuple[float, ...] = pair((0.28, 5.42), 0.0, math.inf)

    def tag(self) -> str:
        return f"_interval{self.sigma[0]:g}-{self.sigma[1]:g}"

    def guides_at(self, net_t: Tensor, process: GaussianProcess | None) -> bool:
        sigma = float(_needs(process, self).sigma(process.process_time(net_t[:1]))[0])  # type: ignore[union-attr]
        return self.sigma[0] < sigma <= self.sigma[1]


@dataclass(frozen=True)
class CADS(Rule):
    """Condition-annealed sampling (Sadat et al. 2024): the condition is noised while sampling,
    c_t = sqrt(gamma) c + s sqrt(1 - gamma) n with n ~ N(0, I) fresh at every step, gamma = 1 for tau <= tau1,
    0 for tau >= tau2 and linear between, then rescaled to the mean and standard deviation of c and mixed back:
    psi * rescaled + (1 - psi) * c_t. tau is diffusers' timestep over T (t - 1 over T in process time; 1 at pure
    noise). It applies to the conditional pass only, at every scale (also 0)."""

    name: ClassVar[str] = "cads"
    needs_process: ClassVar[bool] = True
    needs_noise: ClassVar[bool] = True
    tau: tuple[float, ...] = pair((0.6, 0.9), 0.0, 1.0)  # (tau1, tau2): clean below tau1, pure noise above tau2
    noise: float = nonneg(0.25)  # s; the paper suggests 0.025 to 0.25
    psi: float = unit(1.0)  # mix of the rescaled and the raw noised condition

    def tag(self) -> str:
        return f"_cads{self.noise:g}_{self.tau[0]:g}-{self.tau[1]:g}" + (f"_psi{self.psi:g}" if self.psi != 1 else "")

    def condition(self, cond: Tensor, net_t: Tensor, process: GaussianProcess | None, noise: Noise | None) -> Tensor:
        tau = net_t[:1].float().cpu() / _needs(process, self).T
        gamma = cads_gamma(tau, self.tau[0], self.tau[1]).to(cond.device)
        return anneal_condition(cond, gamma, self.noise, self.psi, noise)  # type: ignore[arg-type]


@dataclass(frozen=True)
class APG(Rule):
    """Adaptive projected guidance (Sadat et al. 2025), diffusers' APG."""

    name: ClassVar[str] = "apg"
    space: ClassVar[str] = "sample"
    eta: float = nonneg(0.0)  # weight of the update parallel to the prediction (1 = CFG's; paper: 0)
    rescale: float = nonneg(0.0)  # cap r on the update's norm (0: none; the paper tunes it per model)
    momentum: float = within(-0.5, -1.0, 1.0)  # momentum of the update (0: none; the paper's is negative)

    def tag(self) -> str:
        return f"_apg{self.eta:g}_r{self.rescale:g}_m{self.momentum:g}"

    def guider(self, scale: float, window: tuple[float, float]) -> Any:
        out = _guider(
            "AdaptiveProjectedGuidance",
            window,
            guidance_scale=scale,
            eta=self.eta,
            adaptive_projected_guidance_momentum=self.momentum or None,
            adaptive_projected_guidance_rescale=self.rescale,
        )
        if self.momentum:  # diffusers makes the buffer in its pipeline's first step, which we do not call
            from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer

            out.momentum_buffer = MomentumBuffer(self.momentum)
        return out


@dataclass(frozen=True)
class CFGZeroStar(Rule):
    """CFG-Zero* (Fan et al. 2025), diffusers' ClassifierFreeZeroStarGuidance."""

    name: ClassVar[str] = "cfg-zero-star"
    space: ClassVar[str] = "v_prediction"
    zero_init: int = nonneg(1)  # first steps zeroed (the authors: the first 4% of them)

    def tag(self) -> str:
        return f"_zero-star{self.zero_init}"

    def guider(self, scale: float, window: tuple[float, float]) -> Any:
        return _guider("ClassifierFreeZeroStarGuidance", window, guidance_scale=scale, zero_init_steps=self.zero_init)


@dataclass(frozen=True)
class TCFG(Rule):
    """Tangential CFG (Kwon et al. 2025), diffusers' TangentialClassifierFreeGuidance."""

    name: ClassVar[str] = "tcfg"
    space: ClassVar[str] = "epsilon"

    def tag(self) -> str:
        return "_tcfg"

    def guider(self, scale: float, window: tuple[float, float]) -> Any:
        return _guider("TangentialClassifierFreeGuidance", window, guidance_scale=scale)


@dataclass(frozen=True)
class FDG(Rule):
    """Frequency-decoupled guidance (Sadat 2025), diffusers' FrequencyDecoupledGuidance (needs kornia)."""

    name: ClassVar[str] = "fdg"
    space: ClassVar[str] = "sample"
    images_only: ClassVar[bool] = True
    low: float = unit(0.5)  # the low band's scale as a share of the high band's (authors: 5 / 10)

    def tag(self) -> str:
        return f"_fdg{self.low:g}"

    def guider(self, scale: float, window: tuple[float, float]) -> Any:
        from diffusers.utils import is_kornia_available

        if not is_kornia_available():
            raise ValueError("guidance method 'fdg' needs kornia (pip install kornia)")
        return _guider("FrequencyDecoupledGuidance", window, guidance_scales=[scale, scale * self.low])


@dataclass(frozen=True)
class MAMBO(Rule):
    """Magnitude-aware guidance (arXiv 2508.03442), diffusers' MagnitudeAwareGuidance."""

    name: ClassVar[str] = "mambo"
    space: ClassVar[str] = "epsilon"
    flat: ClassVar[bool] = True
    alpha: float = nonneg(8.0)  # damping strength alpha

    def tag(self) -> str:
        return f"_mambo{self.alpha:g}"

    def guider(self, scale: float, window: tuple[float, float]) -> Any:
        return _guider("MagnitudeAwareGuidance", window, guidance_scale=scale, alpha=self.alpha)


RULES: dict[str, type[Rule]] = {r.name: r for r in (CFG, Interval, CADS, APG, CFGZeroStar, TCFG, FDG, MAMBO)}


@dataclass(frozen=True)
class Guiders:
    """``sample.guiders``: the settings of every rule that has some, one section each."""

    interval: Interval = field(default_factory=Interval)
    cads: CADS = field(default_factory=CADS)
    apg: APG = field(default_factory=APG)
    cfg_zero_star: CFGZeroStar = field(default_factory=CFGZeroStar)
    fdg: FDG = field(default_factory=FDG)
    mambo: MAMBO = field(default_factory=MAMBO)

    def rule(self, name: str) -> Rule:
        """The rule called ``name`` with its settings."""
        if name not in RULES:
            raise ValueError(f"guidance method {name!r} is not one of {', '.join(RULES)}")
        return getattr(self, name.replace("-", "_"), None) or RULES[name]()


def _needs(process: GaussianProcess | None, rule: Rule) -> GaussianProcess:
    if process is None:
        raise ValueError(f"guidance method {rule.name!r} needs the process (its noise schedule)")
    return process


def _guider(kind: str, window: tuple[float, float], **settings: Any) -> Any:
    """A diffusers guider in the original formulation, its experimental-API warning silenced (one per batch is
    noise)."""
    from diffusers import guiders
    from diffusers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return getattr(guiders, kind)(use_original_formulation=True, start=window[0], stop=window[1], **settings)
    finally:
        logging.set_verbosity(level)


def cads_gamma(tau: Tensor, tau1: float, tau2: float) -> Tensor:
    """CADS schedule: 1 (clean condition) for tau <= tau1, 0 for tau >= tau2, linear in between."""
    return ((tau2 - tau) / (tau2 - tau1)).clamp(0.0, 1.0)


def anneal_condition(cond: Tensor, gamma: Tensor, scale: float, psi: float, noise: Noise) -> Tensor:
    """CADS' noised condition for a batch (B, D) at one step (gamma: scalar tensor)."""
    n = noise.randn(cond.shape, cond.device)
    c = gamma.sqrt() * cond + scale * (1 - gamma).sqrt() * n
    if psi == 0 or cond.shape[1] < 2:
        return c
    mean, std = cond.mean(dim=1, keepdim=True), cond.std(dim=1, keepdim=True)
    rescaled = (c - c.mean(dim=1, keepdim=True)) / c.std(dim=1, keepdim=True).clamp_min(1e-8) * std + mean
    return psi * rescaled + (1 - psi) * c


def check(rule: Rule, shape: tuple[int, ...]) -> None:
    """Refuse a rule on data it cannot act on (FDG's pyramid needs images)."""
    if rule.images_only and len(shape) != 4:
        raise ValueError(f"guidance method {rule.name!r} acts on images (B, C, H, W), not on shape {tuple(shape)}")
