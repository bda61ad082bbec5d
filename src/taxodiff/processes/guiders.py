"""Guidance rules: how a conditional and an unconditional prediction become one, per rule, and where each
rule's code lives.

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

"acts on" is the prediction the rule sees by default (``guidance_space`` chooses another): the network's
own for the linear rules (where it makes no difference), and for the others the space their paper works
in (APG and FDG on the denoised image x_0; CFG-Zero*'s velocity is v here; TCFG and MAMBO-G on the noise).
diffusers' auto-guidance, perturbed-attention, skip-layer and smoothed-energy guidance need a weakened
copy of the network (layers skipped, attention perturbed) rather than an unconditional pass, and are not
adapted. ``guidance_window`` (start, stop) limits any diffusers rule to that fraction of the sampling steps
(diffusers' own start/stop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from taxodiff.processes.predictions import convert


@dataclass(frozen=True)
class Rule:
    space: str  # "native" or a prediction kind
    images_only: bool = False
    flat: bool = False  # hand the guider (B, N) rows: diffusers' MAMBO-G takes norms that fail on (B, C, H, W)


RULES: dict[str, Rule] = {
    "cfg": Rule("native"),
    "interval": Rule("native"),
    "cads": Rule("native"),
    "apg": Rule("sample"),
    "cfg-zero-star": Rule("v_prediction"),
    "tcfg": Rule("epsilon"),
    "fdg": Rule("sample", images_only=True),
    "mambo": Rule("epsilon", flat=True),
}


def diffusers_guider(g: Any) -> Any:
    """The diffusers guider of a :class:`taxodiff.processes.guidance.Guidance` (original formulation)."""
    from diffusers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()  # each guider warns that the API is experimental; one per batch is noise
    try:
        return _guider(g)
    finally:
        logging.set_verbosity(level)


def _guider(g: Any) -> Any:
    from diffusers import guiders

    common: dict[str, Any] = {"use_original_formulation": True, "start": g.window[0], "stop": g.window[1]}
    w = g.scale
    if g.method in ("cfg", "interval", "cads"):
        return guiders.ClassifierFreeGuidance(guidance_scale=w, **common)
    if g.method == "apg":
        out = guiders.AdaptiveProjectedGuidance(
            guidance_scale=w, adaptive_projected_guidance_momentum=g.apg_momentum or None,
            adaptive_projected_guidance_rescale=g.apg_rescale, eta=g.apg_eta, **common,
        )  # fmt: skip
        if g.apg_momentum:  # diffusers makes the buffer in its pipeline's first step, which we do not call
            from diffusers.guiders.adaptive_projected_guidance import MomentumBuffer

            out.momentum_buffer = MomentumBuffer(g.apg_momentum)
        return out
    if g.method == "cfg-zero-star":
        return guiders.ClassifierFreeZeroStarGuidance(guidance_scale=w, zero_init_steps=g.zero_init_steps, **common)
    if g.method == "tcfg":
        return guiders.TangentialClassifierFreeGuidance(guidance_scale=w, **common)
    if g.method == "fdg":
        from diffusers.utils import is_kornia_available

        if not is_kornia_available():
            raise ValueError("guidance method 'fdg' needs kornia (pip install kornia)")
        return guiders.FrequencyDecoupledGuidance(guidance_scales=[w, w * g.fdg_low], **common)
    if g.method == "mambo":
        return guiders.MagnitudeAwareGuidance(guidance_scale=w, alpha=g.mambo_alpha, **common)
    raise ValueError(f"guidance method {g.method!r} is not one of {', '.join(RULES)}")


class Combiner:
    """One sampling chain's guider: per step, whether it needs the unconditional pass, and the combination
    of the two predictions in the rule's space. Stateful (step count, APG's momentum): make one per chain."""

    def __init__(self, g: Any, prediction: str, alphas_cumprod: Tensor | None, steps: int) -> None:
        rule = RULES[g.method]
        self.flat = rule.flat
        self.guider = diffusers_guider(g)
        self.prediction = prediction
        self.space = prediction if (g.space == "auto" and rule.space == "native") else g.space
        if self.space == "auto":
            self.space = rule.space
        if self.space != prediction and alphas_cumprod is None:
            raise ValueError(f"guidance in the {self.space!r} space needs the process' alphas_cumprod")
        self.alphas_cumprod = alphas_cumprod
        self.steps = max(int(steps), 1)
        self.step = -1

    def next_step(self, t: Tensor) -> bool:
        """Advance to the next denoiser call (at network time ``t``): whether it needs the unconditional pass."""
        self.step += 1
        self.guider.set_state(self.step, self.steps, t[:1])
        return self.guider.num_conditions > 1

    def combine(self, cond: Tensor, uncond: Tensor | None) -> Tensor:
        if not self.flat:
            return self.guider.forward(cond, uncond).pred
        flat = self.guider.forward(cond.flatten(1), None if uncond is None else uncond.flatten(1)).pred
        return flat.reshape(cond.shape)

    def __call__(self, x: Tensor, t: Tensor, cond: Tensor, uncond: Tensor | None) -> Tensor:
        """The guided prediction (in the network's kind) from its conditional and unconditional ones."""
        if self.space == self.prediction:
            return self.combine(cond, uncond).to(cond.dtype)
        abar = self.alphas_cumprod.to(x.device)[t].reshape(-1, *[1] * (x.ndim - 1)).double()
        xd = x.double()
        c = convert(cond.double(), xd, abar, self.prediction, self.space)
        u = None if uncond is None else convert(uncond.double(), xd, abar, self.prediction, self.space)
        out = self.combine(c, u)
        return convert(out, xd, abar, self.space, self.prediction).to(cond.dtype)


def check(method: str, shape: tuple[int, ...]) -> None:
    """Refuse a rule on data it cannot act on (FDG's pyramid needs images)."""
    if method not in RULES:
        raise ValueError(f"guidance method {method!r} is not one of {', '.join(RULES)}")
    if RULES[method].images_only and len(shape) != 4:
        raise ValueError(f"guidance method {method!r} acts on images (B, C, H, W), not on shape {tuple(shape)}")


__all__ = ["RULES", "Combiner", "Rule", "check", "diffusers_guider"]
