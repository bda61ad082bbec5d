"""An MLP denoiser for low-dimensional latents: eps(z_t, t, c). Used as the z1 prior of the two-stage model."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from taxodiff.nets.embedding import CondEmbedding


@dataclass(frozen=True)
class MLPConfig:
    dim: int = 2  # size of the latent
    cond_dim: int = 2
    hidden: int = 256
    layers: int = 3


class MLPDenoiser(nn.Module):
    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = CondEmbedding(cfg.cond_dim, cfg.hidden)
        self.inp = nn.Linear(cfg.dim, cfg.hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Linear(cfg.hidden, cfg.hidden)) for _ in range(cfg.layers)
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(cfg.hidden, cfg.dim))

    def forward(self, z: Tensor, t: Tensor, cond: Tensor, drop: Tensor | None = None) -> Tensor:
        """z: (B, dim), t: (B,), cond: (B, cond_dim) -> (B, dim)."""
        emb = self.embed(t, cond, drop)
        h = self.inp(z)
        for block in self.blocks:
            h = h + block(h + emb)
        return self.out(h)
