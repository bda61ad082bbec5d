"""Guidance: bind a conditional network, its conditions and a guidance rule into a denoiser for any sampler.

Classifier-free guidance (Ho & Salimans 2022):

    eps = eps(x, t, c) + w * (eps(x, t, c) - eps(x, t, null))

so w = 0 is exactly the conditional model (one network call, no unconditional pass), and w > 0
pushes samples towards the condition. The network's ``drop`` mask selects its learned null condition.
The rules (:mod:`taxodiff.processes.guiders`) decide how the two predictions combine, in which prediction
space, at which steps, and (CADS) what condition the network reads; the process gives them its noise schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from taxodiff.noise import Noise
from taxodiff.processes.base import Denoiser
from taxodiff.processes.choices import GUIDANCE_SPACES
from taxodiff.processes.gaussian import GaussianProcess
from taxodiff.processes.guiders import CFG, Rule, check
from taxodiff.processes.predictions import convert


class CondNet(Protocol):
    def __call__(self, x: Tensor, t: Tensor, cond: Tensor, drop: Tensor | None = None) -> Tensor: ...


@dataclass(frozen=True)
class Guidance:
    """A rule at a scale: how one sampling chain is guided."""

    scale: float = 0.0
    rule: Rule = field(default_factory=CFG)
    window: tuple[float, float] = (0.0, 1.0)  # diffusers' start/stop: the fraction of the steps a rule acts in
    space: str = "auto"  # the prediction a rule acts on (one of GUIDANCE_SPACES; auto: the rule's own)


def drop_mask(batch: int, p_uncond: float, noise: Noise, device: torch.device | str = "cpu") -> Tensor | None:
    """Training-time condition dropout: True where the condition is replaced by the null condition."""
    if p_uncond <= 0:
        return None
    return (noise.rand((batch,)) < p_uncond).to(device)


def guided(
    net: CondNet,
    cond: Tensor,
    guidance: Guidance | float,
    process: GaussianProcess | None = None,
    noise: Noise | None = None,
    steps: int = 1,
) -> Denoiser:
    """Guided denoiser ``(x, net_t) -> output`` for a fixed batch of conditions (B, cond_dim), for one sampling
    chain of ``steps`` denoiser calls. ``guidance``: a Guidance or a plain CFG scale. The process is needed by
    the rules that read its schedule (interval, CADS) and by a rule acting in another space than the network's
    prediction; ``noise`` by CADS. At scale 0 every rule is the conditional model (one network call; CADS
    still anneals its condition)."""
    g = guidance if isinstance(guidance, Guidance) else Guidance(scale=float(guidance))
    if g.space not in GUIDANCE_SPACES:
        raise ValueError(f"guidance space {g.space!r} is not one of {', '.join(GUIDANCE_SPACES)}")
    if g.rule.needs_process and process is None:
        raise ValueError(f"guidance method {g.rule.name!r} needs the process (its noise schedule)")
    if g.rule.needs_noise and noise is None:
        raise ValueError(f"guidance method {g.rule.name!r} needs random streams for its noise")
    combine = Combiner(g, process, steps) if g.scale > 0 else None

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        c = g.rule.condition(cond, t, process, noise)
        if combine is None:
            return net(x, t, c)
        if not combine.next_step(t):  # outside the rule's window (or its own first steps)
            return combine(x, t, net(x, t, c), None)
        if not g.rule.guides_at(t, process):
            return net(x, t, c)
        check(g.rule, tuple(x.shape))
        b = x.shape[0]
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(x.device)
        out_c, out_u = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([c, cond]), drop).chunk(2)
        return combine(x, t, out_c, out_u)

    return denoise


class Combiner:
    """One sampling chain's guider: per step, whether it needs the unconditional pass, and the combination
    of the two predictions in the rule's space. Stateful (step count, APG's momentum): make one per chain."""

    def __init__(self, g: Guidance, process: GaussianProcess | None, steps: int) -> None:
        self.rule = g.rule
        self.guider = g.rule.guider(g.scale, g.window)
        self.prediction = process.prediction if process is not None else "epsilon"
        native = g.space == "auto" and g.rule.space == "native"
        self.space = self.prediction if native else (g.rule.space if g.space == "auto" else g.space)
        if self.space != self.prediction and process is None:
            raise ValueError(f"guidance in the {self.space!r} space needs the process (its noise schedule)")
        self.process = process
        self.steps = max(int(steps), 1)
        self.step = -1

    def next_step(self, t: Tensor) -> bool:
        """Advance to the next denoiser call (at network time ``t``): whether it needs the unconditional pass."""
        self.step += 1
        self.guider.set_state(self.step, self.steps, t[:1])
        return self.guider.num_conditions > 1

    def combine(self, cond: Tensor, uncond: Tensor | None) -> Tensor:
        if not self.rule.flat:
            return self.guider.forward(cond, uncond).pred
        flat = self.guider.forward(cond.flatten(1), None if uncond is None else uncond.flatten(1)).pred
        return flat.reshape(cond.shape)

    def __call__(self, x: Tensor, t: Tensor, cond: Tensor, uncond: Tensor | None) -> Tensor:
        """The guided prediction (in the network's kind) from its conditional and unconditional ones."""
        if self.space == self.prediction:
            return self.combine(cond, uncond).to(cond.dtype)
        p: Any = self.process
        abar = p.abar(p.process_time(t.to(x.device))).reshape(-1, *[1] * (x.ndim - 1)).double()
        xd = x.double()
        c = convert(cond.double(), xd, abar, self.prediction, self.space)
        u = None if uncond is None else convert(uncond.double(), xd, abar, self.prediction, self.space)
        out = self.combine(c, u)
        return convert(out, xd, abar, self.space, self.prediction).to(cond.dtype)
