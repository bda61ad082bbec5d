"""The interface every diffusion process offers, and its time convention.

Time runs over the integers 0..T: x_0 is the data, x_T (almost) the process's prior. A process owns its
schedule and provides, every time in process time (0..T):

    abar(t)                            the signal level (Gaussian) or the share of tokens kept (discrete)
    add_noise(x0, t, noise)            a draw of q(x_t | x_0)
    loss(denoiser, x0, noise, t=None)  its training loss at random (or given) times
    prior(shape, noise, device)        a draw of x_T
    timesteps(steps, t_from, t_to)     a decreasing grid t_from = tau_0 > ... > tau_k = t_to
    step(out, x, t, s, noise)          one reverse step from time t to an earlier time s, given the
                                       denoiser's output at (x, t)
    sample(denoiser, x, noise, t_from, t_to, steps, sampler, grid)
                                       the reverse chain from x at t_from down to t_to (0: the data), on
                                       ``steps`` evenly spaced times or an explicit decreasing ``grid``

A denoiser is any callable ``(x_t, net_t) -> output``, where ``net_t = process.net_time(t)`` is the number the
network was trained to read as its time input (``process.process_time(net_t)`` is t again); what the output
means (noise, velocity, x_0 logits) is the process's business. ``noise`` is a :class:`taxodiff.noise.Noise`:
one generator for a batch, or one per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from taxodiff.noise import Noise

Denoiser = Callable[[Tensor, Tensor], Tensor]  # (x_t, net_t (B,)) -> the network's output
Progress = Callable[[int], None]


class Process(Protocol):
    @property
    def T(self) -> int: ...

    def net_time(self, t: Tensor) -> Tensor: ...

    def process_time(self, net_t: Tensor) -> Tensor: ...

    def abar(self, t: Tensor) -> Tensor: ...

    def add_noise(self, x0: Tensor, t: Tensor, noise: Noise) -> Tensor: ...

    def loss(
        self, denoiser: Denoiser, x0: Tensor, noise: Noise, t: Tensor | None = None, reduce: bool = True
    ) -> Tensor: ...

    def prior(self, shape: tuple[int, ...], noise: Noise, device: torch.device | str = "cpu") -> Tensor: ...

    def timesteps(self, steps: int | None, t_from: int, t_to: int = 0) -> list[int]: ...

    def step(self, out: Tensor, x: Tensor, t: int, s: int, noise: Noise) -> Tensor: ...

    def sample(
        self,
        denoiser: Denoiser,
        x: Tensor,
        noise: Noise,
        t_from: int | None = None,
        t_to: int = 0,
        steps: int | None = None,
        sampler: str = "ddpm",
        progress: Progress | None = None,
        grid: list[int] | None = None,
    ) -> Tensor: ...


def even_grid(steps: int | None, t_from: int, t_to: int) -> list[int]:
    """``steps`` evenly spaced times from t_from down to t_to (rounded; every time when ``steps`` is None)."""
    if not 0 <= t_to < t_from:
        raise ValueError(f"times must satisfy 0 <= t_to < t_from, got t_from={t_from}, t_to={t_to}")
    span = t_from - t_to
    n = span if steps is None else min(steps, span)
    if n < 1:
        raise ValueError(f"steps = {steps} is invalid: allowed is at least 1")
    grid = [round(t_from - i * span / n) for i in range(n + 1)]
    return sorted(set(grid), reverse=True)


def full_batch(t: int, batch: int, device: torch.device | str) -> Tensor:
    return torch.full((batch,), int(t), dtype=torch.long, device=device)
