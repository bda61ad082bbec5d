"""Embeddings of time and condition that the networks share. A network reads its time input as a number."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) times. t: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class CondEmbedding(nn.Module):
    """Time and condition to one embedding vector; ``drop`` rows get the learned null condition.

    A continuous condition (a z1 embedding) enters through fixed random Fourier features as well as
    linearly, so that nearby anchors get clearly different embeddings from the first steps of training.
    The Fourier frequencies are drawn at construction (from the initialisation stream) and saved as a buffer.
    """

    def __init__(
        self, cond_dim: int, emb_dim: int, fourier: int = 32, fourier_scale: float = 1.0, time: bool = True
    ) -> None:
        super().__init__()
        self.emb_dim = emb_dim
        # time=False: the condition alone (:meth:`condition`), for a network that embeds time itself
        self.time = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)) if time else None
        self.register_buffer("freqs", torch.randn(cond_dim, fourier) * fourier_scale)
        self.cond = nn.Sequential(nn.Linear(cond_dim + 2 * fourier, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.null = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, t: Tensor, cond: Tensor, drop: Tensor | None = None) -> Tensor:
        if self.time is None:
            raise RuntimeError("this embedding was built without time: call condition()")
        return self.time(timestep_embedding(t, self.emb_dim)) + self.condition(cond, drop)

    def condition(self, cond: Tensor, drop: Tensor | None = None) -> Tensor:
        """(B, cond_dim) -> (B, emb_dim); ``drop`` rows get the learned null condition."""
        phase = 2 * math.pi * cond.float() @ self.freqs  # (B, fourier)
        c = self.cond(torch.cat([cond.float(), phase.sin(), phase.cos()], dim=1))  # (B, E)
        if drop is not None:
            c = torch.where(drop[:, None], self.null.to(c.dtype).expand_as(c), c)
        return c
