"""Gaussian diffusion (DDPM) through diffusers' schedulers: forward noising, the loss, reverse steps, sampling.

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   loss = E || target - net(x_t, t, c) ||^2

with target eps (epsilon-prediction), v = sqrt(abar) eps - sqrt(1 - abar) x_0 (v-prediction, Salimans & Ho),
or x_0 ("sample"). Times follow :mod:`taxodiff.processes.base` (0 = data .. T); diffusers numbers the noised
steps 0..T-1, so the network reads ``net_time(t) = t - 1`` (diffusers' own timestep). Training noises with
the DDPM scheduler's ``add_noise``; sampling runs diffusers' DDPM (ancestral, any segment t_from -> t_to),
DDIM or DPM-Solver++ (these two end at the data: t_to = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from taxodiff.noise import Noise
from taxodiff.processes.base import Denoiser, Progress, even_grid, full_batch
from taxodiff.processes.choices import BETA_SCHEDULES, SAMPLERS

__all__ = ["BETA_SCHEDULES", "SAMPLERS", "GaussianConfig", "GaussianProcess"]


@dataclass(frozen=True)
class GaussianConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "linear"  # one of BETA_SCHEDULES
    clip_sample: bool = True  # clip predicted x_0 to [-clip_range, clip_range] in DDPM / DDIM steps
    clip_range: float = 1.0
    min_snr_gamma: float = 0.0  # > 0: min-SNR loss weighting (Hang et al. 2023)
    prediction: str = "epsilon"  # what the network predicts: "epsilon", "v_prediction" or "sample"


def _scheduler_classes() -> dict[str, Any]:
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    return {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpmsolver++": DPMSolverMultistepScheduler}


class GaussianProcess:
    def __init__(self, cfg: GaussianConfig | None = None) -> None:
        self.cfg = cfg or GaussianConfig()
        self.train_scheduler = self.scheduler("ddpm")
        self.alphas_cumprod = self.train_scheduler.alphas_cumprod.float()  # (T,), indexed by net time t - 1

    @property
    def T(self) -> int:
        return self.cfg.num_train_timesteps

    def net_time(self, t: Tensor) -> Tensor:
        return t - 1

    def abar(self, t: Tensor) -> Tensor:
        """abar at process times t (abar_0 = 1)."""
        ab = torch.cat([torch.ones(1), self.alphas_cumprod])
        return ab.to(t.device)[t]

    def scheduler(self, name: str) -> Any:
        """A fresh diffusers scheduler of the given kind on this process's schedule."""
        c = self.cfg
        common: dict[str, Any] = dict(
            num_train_timesteps=c.num_train_timesteps,
            beta_start=c.beta_start,
            beta_end=c.beta_end,
            beta_schedule=c.beta_schedule,
            prediction_type=c.prediction,
        )
        if name in ("ddpm", "ddim"):
            common.update(clip_sample=c.clip_sample, clip_sample_range=c.clip_range, timestep_spacing="trailing")
        if name == "dpmsolver++":
            common.update(algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing")
        return _scheduler_classes()[name](**common)

    # -- forward process ------------------------------------------------------------------------------
    def q_sample(self, x0: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """sqrt(abar_t) x0 + sqrt(1 - abar_t) eps at process times t >= 1."""
        return self.train_scheduler.add_noise(x0, eps, self.net_time(t)).to(x0.dtype)

    def add_noise(self, x0: Tensor, t: Tensor, noise: Noise) -> Tensor:
        return self.q_sample(x0, noise.randn(x0.shape, x0.device), t)

    def loss(
        self, denoiser: Denoiser, x0: Tensor, noise: Noise, t: Tensor | None = None, reduce: bool = True
    ) -> Tensor:
        """Weighted eps-, v- or x0-prediction MSE at t ~ U{1..T} (or the given t)."""
        if t is None:
            t = noise.randint(self.T, (x0.shape[0],), x0.device) + 1
        eps = noise.randn(x0.shape, x0.device)
        xt = self.q_sample(x0, eps, t)
        target = {"epsilon": eps, "sample": x0}.get(self.cfg.prediction)
        if target is None:
            target = self.train_scheduler.get_velocity(x0, eps, self.net_time(t))
        err = (denoiser(xt, self.net_time(t)).float() - target).pow(2)
        per_sample = err.flatten(1).mean(1) * self.weight(t)
        return per_sample.mean() if reduce else per_sample

    def weight(self, t: Tensor) -> Tensor:
        """Loss weight per time: 1, or min(SNR, gamma) / SNR (eps) and min(SNR, gamma) / (SNR + 1) (v)."""
        if self.cfg.min_snr_gamma <= 0:
            return torch.ones(t.shape, device=t.device)
        ab = self.abar(t)
        snr = ab / (1 - ab)
        return snr.clamp(max=self.cfg.min_snr_gamma) / (snr if self.cfg.prediction == "epsilon" else snr + 1)

    # -- reverse process ------------------------------------------------------------------------------
    def prior(self, shape: tuple[int, ...], noise: Noise, device: torch.device | str = "cpu") -> Tensor:
        return noise.randn(shape, device)

    def timesteps(self, steps: int | None, t_from: int, t_to: int = 0) -> list[int]:
        return even_grid(steps, t_from, t_to)

    def step(self, out: Tensor, x: Tensor, t: int, s: int, noise: Noise) -> Tensor:
        """One ancestral (DDPM) step from time t to s < t given the denoiser's output at (x, t)."""
        sched = self.scheduler("ddpm")
        sched.set_timesteps(timesteps=[t - 1, s - 1] if s > 0 else [t - 1])
        return sched.step(out.float(), t - 1, x, generator=noise.generator).prev_sample

    def calls(self, steps: int | None, sampler: str = "ddpm") -> int:
        """How many denoiser calls :meth:`sample` makes over the whole chain (T to 0)."""
        return len(self.timesteps(steps, self.T)) - 1 if sampler == "ddpm" else (steps or self.T)

    @torch.no_grad()
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
    ) -> Tensor:
        """The reverse chain from ``x`` at t_from (default T) down to t_to, with ``steps`` denoiser calls
        (DDPM: evenly spaced over the segment, or on ``grid``, decreasing times from t_from to t_to; DDIM,
        DPM-Solver++: their own grid over [0, T], from t_from on)."""
        t_from = self.T if t_from is None else t_from
        if t_to == t_from:
            return x
        sched = self.scheduler(sampler)
        if grid is not None and (sampler != "ddpm" or grid[0] != t_from or grid[-1] != t_to):
            raise ValueError(f"an explicit grid is for ddpm and runs from t_from to t_to, got {grid[:1]}..{grid[-1:]}")
        if sampler == "ddpm":
            grid = grid or self.timesteps(steps, t_from, t_to)
            sched.set_timesteps(timesteps=[t - 1 for t in grid if t > 0])
            walk = [t - 1 for t in grid[:-1]]
        else:
            if t_to != 0:
                raise ValueError(f"sampler {sampler!r} ends at the data (t_to = 0); for a segment use ddpm")
            sched.set_timesteps(steps or self.T)
            walk = [int(t) for t in sched.timesteps if int(t) <= t_from - 1]
        gen = {"generator": noise.generator} if sampler == "ddpm" else {}
        for tn in walk:
            out = denoiser(x, full_batch(tn, x.shape[0], x.device)).float()
            x = sched.step(out, tn, x, **gen).prev_sample
            if progress is not None:
                progress(1)
        return x
