"""Learning-rate factors and the batches of each step: pure functions of the step, so a resumed run continues
exactly where it stopped."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from taxodiff import seeds


def lr_factor(step: int, steps: int, warmup: int, schedule: str) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 10% of the peak at step ``steps`` (or the
    peak throughout, ``schedule = "constant"``). ``step`` counts from the start of the stage."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


def batch_indices(n: int, step: int, batch: int, seed: int, rank: int = 0, world: int = 1) -> Tensor:
    """The global batch of ``step`` (epoch-wise shuffles seeded by (seed, epoch)), this rank's share of it."""
    per_epoch = max(1, n // batch)
    epoch, pos = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=seeds.generator(seed, "batches", epoch))
    idx = perm[pos * batch : (pos + 1) * batch]
    if len(idx) < batch:  # n < batch: sample with replacement
        idx = torch.randint(0, n, (batch,), generator=seeds.generator(seed, "batches", epoch, pos))
    return idx[rank::world]
