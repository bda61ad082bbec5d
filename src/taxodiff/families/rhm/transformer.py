"""A plain transformer encoder over token positions: the structure-agnostic baseline for the tree U-Net.

Input (x (B, v, N), t (B,)) -> (B, v, N), like :class:`taxodiff.families.rhm.tree_unet.TreeUNet`. Tokens are
projected to ``width``, given learned position embeddings and the time embedding, and passed through
pre-norm encoder layers with full attention. :func:`width_for_params` picks the width at which it has
as many parameters as a given network, for comparisons at equal size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from taxodiff.nets.embedding import timestep_embedding


@dataclass(frozen=True)
class TransformerConfig:
    vocab: int = 8
    length: int = 8
    width: int = 128  # a multiple of heads
    layers: int = 3
    heads: int = 4
    emb_dim: int = 128


class SeqTransformer(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.inp = nn.Linear(cfg.vocab, w)
        self.pos = nn.Parameter(torch.randn(cfg.length, w) * 0.02)
        self.time = nn.Sequential(nn.Linear(cfg.emb_dim, w), nn.SiLU(), nn.Linear(w, w))
        layer = nn.TransformerEncoderLayer(
            w, cfg.heads, 4 * w, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, cfg.vocab)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = self.inp(x.transpose(1, 2)) + self.pos  # (B, N, w)
        h = h + self.time(timestep_embedding(t, self.cfg.emb_dim))[:, None, :]
        h = self.encoder(h)
        return self.out(self.norm(h)).transpose(1, 2)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def width_for_params(cfg: TransformerConfig, target: int) -> TransformerConfig:
    """The config with the width (a multiple of ``heads``) whose parameter count is closest to ``target``."""
    best, best_gap = cfg, None
    for w in range(cfg.heads, 4097, cfg.heads):
        c = replace(cfg, width=w)
        gap = abs(_param_count(c) - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = c, gap
        elif _param_count(c) > target:
            break
    return best


def _param_count(cfg: TransformerConfig) -> int:
    """Closed form of count_params(SeqTransformer(cfg)), so the search builds nothing."""
    w, v, n, e, layers = cfg.width, cfg.vocab, cfg.length, cfg.emb_dim, cfg.layers
    per_layer = 4 * w * w + 4 * w + 2 * (4 * w * w) + 4 * w + w + 4 * w  # attention, MLP, two LayerNorms
    return (v * w + w) + n * w + (e * w + w + w * w + w) + layers * per_layer + 2 * w + (w * v + v)
