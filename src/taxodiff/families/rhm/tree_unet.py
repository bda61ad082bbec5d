"""A tree-shaped 1-D U-Net for sequences of s^L tokens (the seed's "bpUnet"): it mirrors the RHM's tree.

Going down, each level is a convolution with kernel = stride = s, so one output position sees exactly
the s children of one grammar node; after ``depth`` levels a position covers a subtree of s^depth leaves
(at depth = L, the whole sequence: the root). Going up, transposed convolutions with the same kernel and
stride hand each node's summary back to its children, joined with the skip from the way down, as the
downward messages of belief propagation do. Normalisation is per position, so before the up path a
node's features depend on its own subtree only. Time enters every level as a scale and shift. The network
maps (x (B, v, N), t (B,)) to logits or a prediction (B, v, N) and knows nothing of noise schedules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from taxodiff.nets.embedding import timestep_embedding


@dataclass(frozen=True)
class TreeUNetConfig:
    vocab: int = 8  # v: input and output channels
    length: int = 8  # s^L tokens
    s: int = 2  # kernel = stride
    depth: int = 3  # levels of s-to-1 merging (<= L); s^depth must divide length
    width: int = 256  # channels at every level
    emb_dim: int = 128  # time embedding


class _Level(nn.Module):
    """Merge s children into one node (down) or split one node into s children (up), then mix channels."""

    def __init__(self, c_in: int, width: int, s: int, emb_dim: int, up: bool) -> None:
        super().__init__()
        conv = nn.ConvTranspose1d if up else nn.Conv1d
        self.tree = conv(c_in, width, kernel_size=s, stride=s)
        self.norm = nn.LayerNorm(width)  # per position, over channels: nodes stay independent
        self.emb = nn.Linear(emb_dim, 2 * width)
        self.mix = nn.Conv1d(width, width, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.norm(self.tree(x).transpose(1, 2)).transpose(1, 2)
        scale, shift = self.emb(emb)[:, :, None].chunk(2, dim=1)
        h = F.silu(h * (1 + scale) + shift)
        return F.silu(self.mix(h)) + h


class TreeUNet(nn.Module):
    def __init__(self, cfg: TreeUNetConfig) -> None:
        super().__init__()
        if cfg.length % cfg.s**cfg.depth:
            raise ValueError(f"length {cfg.length} is not divisible by s^depth = {cfg.s**cfg.depth}")
        self.cfg = cfg
        w, e = cfg.width, cfg.emb_dim
        self.time = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.stem = nn.Conv1d(cfg.vocab, w, 1)
        self.down = nn.ModuleList([_Level(w, w, cfg.s, e, up=False) for _ in range(cfg.depth)])
        self.up = nn.ModuleList([_Level(w if i == 0 else 2 * w, w, cfg.s, e, up=True) for i in range(cfg.depth)])
        self.out = nn.Conv1d(2 * w, cfg.vocab, 1)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = F.silu(self.time(timestep_embedding(t, self.cfg.emb_dim)))
        h = F.silu(self.stem(x))
        skips = []
        for level in self.down:
            skips.append(h)
            h = level(h, emb)
        for level in self.up:
            h = level(h, emb)
            h = torch.cat([h, skips.pop()], dim=1)
        return self.out(h)
