"""Drawing a request's samples in batches, every sample from its own random stream.

A request is a list of per-sample keys (e.g. ("sample", category, k): the k-th sample asked of a category).
Sample i's noise comes from the stream (seed, *key_i), so it depends on the seed and its key, not on the batch
size or on what else was asked; the same key under two sampling settings starts from the same noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from taxodiff.noise import Noise

Draw = Callable[[slice, Noise], dict[str, Tensor]]  # (rows of the request, their streams) -> tensors


def draw_in_batches(
    keys: Sequence[tuple[str | int, ...]],
    batch_size: int,
    seed: int,
    draw: Draw,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Tensor]:
    """Concatenated outputs of ``draw`` over consecutive batches of the request (moved to the CPU)."""
    parts: list[dict[str, Tensor]] = []
    for start in range(0, len(keys), batch_size):
        rows = slice(start, min(start + batch_size, len(keys)))
        out = draw(rows, Noise.per_sample(seed, keys[rows]))
        parts.append({k: v.cpu() for k, v in out.items()})
        if progress is not None:
            progress(rows.stop - rows.start)
    if not parts:
        return {}
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
