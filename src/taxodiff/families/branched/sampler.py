"""Sampling down a branched tree with any per-branch denoiser ``net(x_t, net_t, head) -> output``.

- :func:`sample_paths`: every row follows its own class's path; at each grid step a row is denoised by the head
  of the branch that holds its class at that time (a batch may mix classes: the network runs each head once).
- :func:`sample_cached`: one trajectory per root sample; at each branch point it is cached and every child
  branch continues from a copy, so all classes are drawn for the price of the tree's total branch length
  instead of C whole chains. A step belongs to the branch holding the time it starts from (t_start < t <=
  t_end), as in :func:`sample_paths`; the noise of the k-th trajectory's step from time t on head h comes from
  the stream (seed, "cached", h, t, k). Adding a class splits a branch where it joins, both parts keeping
  their head, so the old classes' steps keep their noise and their samples stay bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from taxodiff.families.branched.tree import BranchedTree, Segment
from taxodiff.noise import Noise
from taxodiff.processes.base import Process

HeadDenoiser = Callable[[Tensor, Tensor, Tensor], Tensor]  # (x_t, net_t (B,), head (B,)) -> output


@torch.no_grad()
def sample_paths(net: HeadDenoiser, heads: Tensor, process: Process, x: Tensor, noise: Noise, steps: int) -> Tensor:
    """Rows of ``x`` (at time T) down their paths; ``heads`` (B, T + 1): the head of each row at each time."""

    def denoiser(y: Tensor, tn: Tensor) -> Tensor:
        return net(y, tn, heads.gather(1, process.process_time(tn)[:, None]).squeeze(1))

    return process.sample(denoiser, x, noise, steps=steps, sampler="ddpm")


@torch.no_grad()
def sample_cached(
    net: HeadDenoiser,
    tree: BranchedTree,
    process: Process,
    x: Tensor,
    ks: list[int],
    grid: list[int],
    seed: int,
    found: Callable[[str, Tensor], None],
    seg: Segment | None = None,
    wanted: set[str] | None = None,
) -> None:
    """Denoise trajectories ``x`` (their indices ``ks``) down branch ``seg`` (default: the root) and, through
    the cached branch points, down every branch below that leads to a ``wanted`` class (default: all);
    ``found(class, x_0)`` receives each class's samples."""
    seg = seg or tree.root
    times = tree.grid_steps(grid, seg)
    times.append(max(t for t in grid if t <= seg.t_start))
    head = torch.full((len(ks),), seg.head, device=x.device)

    def denoiser(y: Tensor, tn: Tensor) -> Tensor:
        return net(y, tn, head)

    for t, s in zip(times, times[1:], strict=False):  # every step from a stream of its own (head, time, sample)
        noise = Noise.per_sample(seed, [("cached", seg.head, t, k) for k in ks])
        x = process.sample(denoiser, x, noise, t_from=t, t_to=s, grid=[t, s])
    children = [c for c in tree.children(seg) if wanted is None or wanted & set(c.classes)]
    if not tree.children(seg):
        for name in seg.classes:
            if wanted is None or name in wanted:
                found(name, x)
    for child in children:
        sample_cached(net, tree, process, x.clone(), ks, grid, seed, found, child, wanted)
