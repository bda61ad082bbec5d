"""Guidance: bind a conditional network, its conditions and a guidance rule into a denoiser for any sampler.

Classifier-free guidance (Ho & Salimans 2022):

    eps = eps(x, t, c) + w * (eps(x, t, c) - eps(x, t, null))

so w = 0 is exactly the conditional model (one network call, no unconditional pass), and w > 0
pushes samples towards the condition. The network's ``drop`` mask selects its learned null condition.

The combination of the two predictions is diffusers' guiders' (:mod:`taxodiff.processes.guiders` lists
every rule, whose code each is, and the prediction space it acts in). Two rules are ours, on top of any
combination and any scheduler, because diffusers has neither:

* ``interval`` (Kynkäänniemi et al. 2024): guidance only while the noise level sigma_t =
  sqrt((1 - abar_t) / abar_t) lies in (sigma_lo, sigma_hi]; outside it the plain conditional model
  (and no unconditional pass). The paper's interval for ImageNet-512 is (0.28, 5.42].
* ``cads`` (Sadat et al. 2024): the condition is annealed from noise while sampling,
  c_t = sqrt(gamma(t)) c + s sqrt(1 - gamma(t)) n with n ~ N(0, I) fresh at every step, where
  gamma = 1 for tau <= tau1, 0 for tau >= tau2 and linear between (tau = t / T, 1 at pure noise), then
  rescaled to the mean and standard deviation of c and mixed back: psi * rescaled + (1 - psi) * c_t.
  It applies to the conditional pass only (also at w = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from taxodiff.noise import Noise
from taxodiff.processes.base import Denoiser
from taxodiff.processes.choices import GUIDANCE_METHODS, GUIDANCE_SPACES

METHODS = GUIDANCE_METHODS


class CondNet(Protocol):
    def __call__(self, x: Tensor, t: Tensor, cond: Tensor, drop: Tensor | None = None) -> Tensor: ...


@dataclass(frozen=True)
class Guidance:
    scale: float = 0.0
    method: str = "cfg"  # one of METHODS
    interval: tuple[float, float] = (0.28, 5.42)  # sigma range where "interval" guides
    cads_tau: tuple[float, float] = (0.6, 0.9)  # (tau1, tau2): full condition below tau1, pure noise above tau2
    cads_noise: float = 0.25  # s; the paper suggests 0.025 to 0.25
    cads_psi: float = 1.0  # mix of the rescaled and the raw noised condition
    window: tuple[float, float] = (0.0, 1.0)  # diffusers' start/stop: the fraction of the steps a rule acts in
    space: str = "auto"  # the prediction a rule acts on (one of GUIDANCE_SPACES; auto: the rule's own)
    apg_eta: float = 0.0  # APG: weight of the update's component parallel to the prediction (1: CFG's)
    apg_rescale: float = 0.0  # APG: cap r on the update's norm (0: none)
    apg_momentum: float = 0.0  # APG: momentum of the update (0: none; the paper's is negative)
    zero_init_steps: int = 1  # CFG-Zero*: first steps whose prediction is zero
    fdg_low: float = 0.5  # FDG: the low band's scale as a share of the high band's
    mambo_alpha: float = 8.0  # MAMBO-G: damping strength


def drop_mask(batch: int, p_uncond: float, noise: Noise, device: torch.device | str = "cpu") -> Tensor | None:
    """Training-time condition dropout: True where the condition is replaced by the null condition."""
    if p_uncond <= 0:
        return None
    return (noise.rand((batch,)) < p_uncond).to(device)


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


def guided(
    net: CondNet,
    cond: Tensor,
    rule: Guidance | float,
    alphas_cumprod: Tensor | None = None,
    noise: Noise | None = None,
    prediction: str = "epsilon",
    steps: int = 1,
) -> Denoiser:
    """Guided denoiser ``(x, net_t) -> output`` for a fixed batch of conditions (B, cond_dim), for one sampling
    chain of ``steps`` denoiser calls.

    ``rule`` is a Guidance or a plain CFG scale. "interval" needs the process' ``alphas_cumprod`` indexed by
    the network's time (for sigma_t), "cads" needs it (for T) and the batch's noise for its condition noise,
    and a rule acting in another space than the network's ``prediction`` needs it to convert. At scale 0 every
    rule is the conditional model (one network call; CADS still anneals its condition).
    """
    from taxodiff.processes.guiders import Combiner, check

    g = rule if isinstance(rule, Guidance) else Guidance(scale=float(rule))
    if g.method not in METHODS:
        raise ValueError(f"guidance method {g.method!r} is not one of {', '.join(METHODS)}")
    if g.space not in GUIDANCE_SPACES:
        raise ValueError(f"guidance space {g.space!r} is not one of {', '.join(GUIDANCE_SPACES)}")
    if g.method in ("interval", "cads") and alphas_cumprod is None:
        raise ValueError(f"guidance method {g.method!r} needs the process' alphas_cumprod")
    if g.method == "cads" and noise is None:
        raise ValueError("guidance method 'cads' needs random streams for its condition noise")
    combine = Combiner(g, prediction, alphas_cumprod, steps) if g.scale > 0 else None

    def condition(t: Tensor) -> Tensor:
        if g.method != "cads":
            return cond
        tau = t[:1].float().cpu() / len(alphas_cumprod)
        return anneal_condition(cond, cads_gamma(tau, *g.cads_tau).to(cond.device), g.cads_noise, g.cads_psi, noise)

    def in_interval(t: Tensor) -> bool:
        if g.method != "interval":
            return True
        ab = float(alphas_cumprod[int(t[0])])
        sigma = ((1 - ab) / ab) ** 0.5
        return g.interval[0] < sigma <= g.interval[1]

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        c = condition(t)
        if combine is None:
            return net(x, t, c)
        if not combine.next_step(t):  # outside the rule's window (or its own first steps)
            return combine(x, t, net(x, t, c), None)
        if not in_interval(t):
            return net(x, t, c)
        check(g.method, tuple(x.shape))
        b = x.shape[0]
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(x.device)
        out_c, out_u = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([c, cond]), drop).chunk(2)
        return combine(x, t, out_c, out_u)

    return denoise
