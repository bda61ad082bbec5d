"""A U-Net with one shared trunk and a head per branch: eps_b(x_t, t) for the branch b each row asks for.

The trunk is the way down, the middle block and the deepest up levels; each head is the remaining
``head_levels`` up levels and the output layers (``head_levels`` = all levels: a whole decoder per branch, as in
the seed's network). The trunk runs once per batch; each head runs only on the rows that ask for it. With
``codes`` each head also owns a learned vector that the trunk adds to its time embedding, so the shared levels
know which branch they serve (without it the trunk is unconditional, as in the seed). The network knows nothing
of noise schedules or of which times a branch covers. :class:`BranchUNets` gives every branch a whole U-Net of its
own instead (``net.branch_network: whole``), nothing shared, as the seed trains them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor, nn

from taxodiff.nets.unet import UNet, UNetConfig, decoder_parts, unet_parameters


class Head(nn.Module):
    def __init__(self, parts: dict[str, nn.Module], code: int = 0) -> None:
        super().__init__()
        for name, part in parts.items():
            self.add_module(name, part)
        self.code = nn.Parameter(torch.zeros(code)) if code else None


class BranchedUNet(nn.Module):
    """(x (B, C, H, W), t (B,), head (B,) long) -> (B, C, H, W)."""

    def __init__(self, cfg: UNetConfig, heads: int, head_levels: int = 1, codes: bool = False) -> None:
        super().__init__()
        levels = len(cfg.channels)
        if not 1 <= head_levels <= levels:
            raise ValueError(f"head_levels = {head_levels} is invalid: allowed is 1..{levels}")
        self.cfg, self.head_levels = cfg, head_levels
        trunk = UNet(replace(cfg, cond_dim=1))
        shared = levels - head_levels
        trunk.up, trunk.upsample = trunk.up[:shared], trunk.upsample[:shared]
        del trunk.out_norm, trunk.out
        self.trunk = trunk
        mine = range(shared, levels)
        code = cfg.emb_dim if codes else 0
        self.heads = nn.ModuleList(
            [Head(decoder_parts(cfg, list(trunk.skip_widths), trunk.mid_width, mine), code) for _ in range(heads)]
        )

    def add_head(self, like: int) -> int:
        """A new head, a copy of head ``like``; its index."""
        self.heads.append(copy.deepcopy(self.heads[like]))
        return len(self.heads) - 1

    def forward(self, x: Tensor, t: Tensor, head: Tensor) -> Tensor:
        t = t.reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t
        return by_head(self._sorted, x, t, head)

    def _sorted(self, x: Tensor, t: Tensor, head: Tensor, asked: list[int], counts: list[int]) -> Tensor:
        """Rows sorted by head: the trunk once, then each asked head on its consecutive rows."""
        codes = None
        if self.heads[0].code is not None:
            codes = torch.stack([h.code for h in self.heads]).index_select(0, head)
        f = self.trunk.encode(x, t, torch.zeros(x.shape[0], 1, device=x.device), extra=codes)
        f = UNet.decode(f, self.trunk.up, self.trunk.upsample)
        parts = f.split(counts) if len(asked) > 1 else [f]
        return torch.cat([self._head(part, k) for part, k in zip(parts, asked, strict=True)])

    def _head(self, f: object, k: int) -> Tensor:
        h = self.heads[k]
        return self.trunk.finish(UNet.decode(f, h.up, h.upsample), h)  # type: ignore[arg-type]


class BranchUNets(nn.Module):
    """A whole U-Net per branch, nothing shared (the seed's network): (x, t, head) -> eps of each row's branch.
    ``heads[k]`` is branch k's network, so freezing and copying a branch work as for :class:`BranchedUNet`."""

    def __init__(self, cfg: UNetConfig, heads: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.heads = nn.ModuleList([UNet(replace(cfg, cond_dim=1)) for _ in range(heads)])

    def add_head(self, like: int) -> int:
        self.heads.append(copy.deepcopy(self.heads[like]))
        return len(self.heads) - 1

    def forward(self, x: Tensor, t: Tensor, head: Tensor) -> Tensor:
        t = t.reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t
        return by_head(self._sorted, x, t, head)

    def _sorted(self, x: Tensor, t: Tensor, head: Tensor, asked: list[int], counts: list[int]) -> Tensor:
        none = torch.zeros(x.shape[0], 1, device=x.device)
        parts = zip(*(v.split(counts) for v in (x, t, none)), strict=True)
        return torch.cat([self.heads[k](*part) for part, k in zip(parts, asked, strict=True)])


def by_head(run: Callable[..., Tensor], x: Tensor, t: Tensor, head: Tensor) -> Tensor:
    """``run(x, t, head, asked, counts)`` on the rows sorted by head (each head's rows together, in batch order),
    its output put back in the batch's order. Sorting the inputs, which need no gradient, leaves one gather with
    a gradient, the output's, where gathering every skip of the trunk's features cost one each."""
    asked, counts = torch.unique(head, return_counts=True)
    if len(asked) == 1:
        return run(x, t, head, asked.tolist(), counts.tolist())
    order = torch.argsort(head, stable=True)
    x, t, head = (v.index_select(0, order) for v in (x, t, head))
    out = run(x, t, head, asked.tolist(), counts.tolist())
    return out.index_select(0, torch.argsort(order))


def branched_network(cfg: UNetConfig, heads: int, head_levels: int, codes: bool, whole: bool) -> nn.Module:
    """A whole U-Net per branch (``whole``), or a shared trunk with ``head_levels`` up levels per branch."""
    return BranchUNets(cfg, heads) if whole else BranchedUNet(cfg, heads, head_levels, codes)


def parameter_count(
    cfg: UNetConfig, heads: int = 0, head_levels: int = 1, codes: bool = False, whole: bool = False
) -> int:
    """Parameters of a branched network (heads > 0) or of a plain UNet (heads = 0), counted without allocating."""
    if heads == 0:
        return unet_parameters(cfg)
    with torch.device("meta"):
        net = branched_network(cfg, heads, head_levels, codes, whole)
    return sum(p.numel() for p in net.parameters())
