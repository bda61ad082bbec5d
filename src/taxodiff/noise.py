"""Random draws for a batch, from one generator or from one generator per sample.

Training draws a batch's noise from one generator keyed by (seed, step, rank), so a resumed run continues
exactly. Sampling gives every sample a stream of its own, keyed by (seed, what it is, its index): a sample
then depends on the seed and its index only, not on how the request was cut into batches (EDM's per-sample
seeds), and two sampling settings draw the same initial noise for the same sample (paired comparisons).

Every process, guidance rule and sampler takes a ``Noise``; draws come back on ``device``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from taxodiff import seeds


class Noise:
    def __init__(self, generators: torch.Generator | Sequence[torch.Generator]) -> None:
        self.shared = isinstance(generators, torch.Generator)
        self.gens: list[torch.Generator] = [generators] if self.shared else list(generators)  # type: ignore[list-item]

    @classmethod
    def from_seed(cls, seed: int, *names: str | int) -> Noise:
        """One generator for the whole batch."""
        return cls(seeds.generator(seed, *names))

    @classmethod
    def per_sample(cls, seed: int, keys: Sequence[tuple[str | int, ...]]) -> Noise:
        """One generator per sample, keyed by (seed, *key)."""
        return cls([seeds.generator(seed, *k) for k in keys])

    def __len__(self) -> int:
        return 0 if self.shared else len(self.gens)

    @property
    def generator(self) -> torch.Generator | list[torch.Generator]:
        """What diffusers' ``generator=`` arguments take (a list is drawn from row by row)."""
        return self.gens[0] if self.shared else self.gens

    def _draw(self, fn: str, shape: Sequence[int], device: torch.device | str | None, **kw: object) -> Tensor:
        shape = tuple(shape)
        if self.shared:
            out = getattr(torch, fn)(shape, generator=self.gens[0], **kw)
        else:
            if shape[0] != len(self.gens):
                raise ValueError(f"{len(self.gens)} per-sample streams cannot draw a batch of {shape[0]}")
            out = torch.cat([getattr(torch, fn)((1, *shape[1:]), generator=g, **kw) for g in self.gens])
        return out if device is None else out.to(device)

    def randn(self, shape: Sequence[int], device: torch.device | str | None = None) -> Tensor:
        return self._draw("randn", shape, device)

    def rand(
        self, shape: Sequence[int], device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> Tensor:
        return self._draw("rand", shape, device, dtype=dtype)

    def randint(self, high: int, shape: Sequence[int], device: torch.device | str | None = None) -> Tensor:
        shape = tuple(shape)
        if self.shared:
            out = torch.randint(0, high, shape, generator=self.gens[0])
        else:
            out = torch.cat([torch.randint(0, high, (1, *shape[1:]), generator=g) for g in self.gens])
        return out if device is None else out.to(device)

    def categorical(self, p: Tensor) -> Tensor:
        """One draw per row of non-negative weights ``p`` (B, ..., K) -> (B, ...) indices (inverse CDF)."""
        u = self.rand(p.shape[:-1], dtype=torch.float64).to(p.device)
        cdf = p.double().cumsum(dim=-1)
        idx = (cdf < (u * cdf[..., -1]).unsqueeze(-1)).sum(dim=-1)
        return idx.clamp(max=p.shape[-1] - 1)

    def subset(self, rows: Sequence[int] | Tensor) -> Noise:
        """The streams of some rows (a shared generator stays shared)."""
        if self.shared:
            return self
        return Noise([self.gens[int(i)] for i in rows])

    def repeat(self, times: int) -> Noise:
        """Streams for a batch repeated ``times`` times along dim 0 (a shared generator stays shared)."""
        return self if self.shared else Noise(self.gens * times)
