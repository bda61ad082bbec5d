"""A compact image U-Net: eps(x_t, t, c).

The network maps (noisy image, time, condition vector) to a prediction. It knows nothing of noise
schedules: ``t`` is just a number embedded sinusoidally. Input and output channels are set apart (extra
input channels carry an image condition); any image size works: the input is padded to a multiple of
``patch * 2**(levels - 1)`` and the output cropped back. Conditioning is a dense vector (one-hot category
for the flat model, a z1 embedding for the hierarchical decoder); ``drop`` swaps it for a learned null
embedding, which is what classifier-free guidance needs.

The time and condition embeddings are summed and added (as scale and shift) inside every residual
block, as in the seed's UNet. Measured against diffusers' ``UNet2DModel`` in ``benchmarks/bench_unet.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from taxodiff.nets.embedding import CondEmbedding


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 3
    out_channels: int = 0  # 0: as many as in_channels
    channels: tuple[int, ...] = (32, 64, 64)  # width at each resolution, halving the size each time
    blocks_per_level: int = 1
    cond_dim: int = 2  # size of the condition vector
    emb_dim: int = 128  # size of the time + condition embedding
    groups: int = 8  # GroupNorm groups
    patch: int = 2  # pixel-unshuffle factor at the input (1 = none); 2 runs the U-Net at half resolution


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class UNet(nn.Module):
    """eps(x, t, cond). x: (B, C_in, H, W); t: (B,); cond: (B, cond_dim) -> (B, C_out, H, W)."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch, e, g = cfg.channels, cfg.emb_dim, cfg.groups
        self.embed = CondEmbedding(cfg.cond_dim, e)
        self.multiple = cfg.patch * 2 ** (len(ch) - 1)
        self.stem = nn.Conv2d(cfg.in_channels * cfg.patch**2, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [ch[0]]
        c = ch[0]
        for i, width in enumerate(ch):
            blocks = nn.ModuleList()
            for _ in range(cfg.blocks_per_level):
                blocks.append(ResBlock(c, width, e, g))
                c = width
                skips.append(c)
            self.down.append(blocks)
            last = i == len(ch) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(c, c, 3, stride=2, padding=1))
            if not last:
                skips.append(c)
        self.mid = ResBlock(c, c, e, g)
        self.skip_widths, self.mid_width = tuple(skips), c
        for name, part in decoder_parts(cfg, list(skips), c, range(len(ch))).items():
            self.add_module(name, part)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor, drop: Tensor | None = None) -> Tensor:
        f = self.encode(x, t, cond, drop)
        return self.finish(self.decode(f, self.up, self.upsample), self)

    def encode(
        self, x: Tensor, t: Tensor, cond: Tensor, drop: Tensor | None = None, extra: Tensor | None = None
    ) -> Features:
        """The way down and the middle block: what every up level reads (``extra``: added to the embedding)."""
        emb = self.embed(t, cond, drop)  # (B, E)
        emb = emb if extra is None else emb + extra.to(emb.dtype)
        p = self.cfg.patch
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        h = self.stem(F.pixel_unshuffle(x, p) if p > 1 else x)
        hs = [h]
        for blocks, down in zip(self.down, self.downsample, strict=True):
            for block in blocks:
                h = block(h, emb)
                hs.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                hs.append(h)
        return Features(self.mid(h, emb), hs, emb, (height, width))

    @staticmethod
    def decode(f: Features, up: nn.ModuleList, upsample: nn.ModuleList) -> Features:
        """Some up levels, in order from the deepest left: the features after them, their skips consumed."""
        h, hs = f.h, list(f.skips)
        for blocks, upper in zip(up, upsample, strict=True):
            for block in blocks:
                h = block(torch.cat([h, hs.pop()], dim=1), f.emb)
            if not isinstance(upper, nn.Identity):
                h = upper(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return Features(h, hs, f.emb, f.size)

    def finish(self, f: Features, head: nn.Module) -> Tensor:
        """The output layers of ``head`` (a module with ``out_norm`` and ``out``), un-patched and cropped."""
        out = head.out(F.silu(head.out_norm(f.h)))
        p = self.cfg.patch
        out = F.pixel_shuffle(out, p) if p > 1 else out
        return out[..., : f.size[0], : f.size[1]]


@dataclass
class Features:
    """What the way down hands to the way up: the current map, the skips still to consume, the embedding."""

    h: Tensor
    skips: list[Tensor]
    emb: Tensor
    size: tuple[int, int]  # the input's height and width, before padding

    def split(self, sizes: list[int]) -> list[Features]:
        """The features cut into consecutive groups of rows of ``sizes``: views, and one gradient for all in
        the backward pass (where gathering each group's rows by index costs a batch-sized gradient per group)."""
        cut = [t.split(sizes) for t in (self.h, *self.skips, self.emb)]
        return [Features(h, list(skips), emb, self.size) for h, *skips, emb in zip(*cut, strict=True)]


def decoder_parts(cfg: UNetConfig, skips: list[int], c: int, levels: range) -> dict[str, nn.Module]:
    """The up levels ``levels`` (0 = the deepest) of a U-Net whose way down left skips of widths ``skips`` and a
    middle of width ``c``, with the output layers when the last level is among them. Keys: ``up``,
    ``upsample`` (and ``out_norm``, ``out``). Modules are made in the order of a whole U-Net's."""
    ch, e, g = cfg.channels, cfg.emb_dim, cfg.groups
    up, upsample = nn.ModuleList(), nn.ModuleList()
    for k, (i, width) in enumerate(reversed(list(enumerate(ch)))):
        blocks = nn.ModuleList()
        for _ in range(cfg.blocks_per_level + 1):
            blocks.append(ResBlock(c + skips.pop(), width, e, g))
            c = width
        if k in levels:
            up.append(blocks)
            upsample.append(nn.Conv2d(c, c, 3, padding=1) if i > 0 else nn.Identity())
    parts: dict[str, nn.Module] = {"up": up, "upsample": upsample}
    if len(ch) - 1 in levels:
        parts["out_norm"] = nn.GroupNorm(min(g, c), c)
        parts["out"] = nn.Conv2d(c, (cfg.out_channels or cfg.in_channels) * cfg.patch**2, 3, padding=1)
        nn.init.zeros_(parts["out"].weight)
        nn.init.zeros_(parts["out"].bias)
    return parts


def unet_parameters(cfg: UNetConfig) -> int:
    """Parameters of a UNet, counted without allocating."""
    with torch.device("meta"):
        net = UNet(cfg)
    return sum(p.numel() for p in net.parameters())


def matched_config(cfg: UNetConfig, target: int, count: Callable[[UNetConfig], int] = unet_parameters) -> UNetConfig:
    """A config whose network has ``target`` parameters (as ``count`` counts them; default: a plain U-Net), as
    near as whole widths allow: the widest scaling of the config's widths (one factor, multiples of 8) that stays
    at or under ``target``, then the embedding width (even) that comes nearest (the count is quadratic in it)."""
    best, seen = cfg, set()
    for k in range(8, 801):
        ch = tuple(max(8, round(c * k / 100 / 8) * 8) for c in cfg.channels)
        if ch in seen:
            continue
        seen.add(ch)
        if count(replace(cfg, channels=ch)) > target:
            break
        best = replace(cfg, channels=ch)
    e = [8, 64, 256]
    a, b, c = np.polyfit(e, [count(replace(best, emb_dim=x)) for x in e], 2)
    roots = [r.real for r in np.roots([a, b, c - target]) if abs(r.imag) < 1e-9 and r.real > 0]
    candidates = [best] + [replace(best, emb_dim=max(2, 2 * round(r / 2))) for r in roots]
    return min(candidates, key=lambda x: abs(count(x) - target))
