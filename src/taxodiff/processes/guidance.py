"""Classifier-free guidance: bind a conditional network and a guidance scale into a denoiser.

    eps = eps(x, t, c) + w * (eps(x, t, c) - eps(x, t, null))

so w = 0 is exactly the conditional model (one network call, no unconditional pass), and w > 0
pushes samples towards the condition. The network's ``drop`` mask selects its learned null condition.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from taxodiff.processes.gaussian import Denoiser


class CondNet(Protocol):
    def __call__(self, x: Tensor, t: Tensor, cond: Tensor, drop: Tensor | None = None) -> Tensor: ...


def drop_mask(batch: int, p_uncond: float, gen: torch.Generator, device: torch.device | str = "cpu") -> Tensor | None:
    """Training-time condition dropout: True where the condition is replaced by the null condition."""
    if p_uncond <= 0:
        return None
    return (torch.rand(batch, generator=gen) < p_uncond).to(device)


def guided(net: CondNet, cond: Tensor, scale: float) -> Denoiser:
    """Classifier-free guided denoiser for a fixed batch of conditions (B, cond_dim)."""
    if scale == 0:
        return lambda x, t: net(x, t, cond)

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        b = x.shape[0]
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(x.device)
        eps_c, eps_u = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, cond]), drop).chunk(2)
        return eps_c + scale * (eps_c - eps_u)

    return denoise
