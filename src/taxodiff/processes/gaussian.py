"""Gaussian diffusion (DDPM) through diffusers' schedulers: forward noising, the eps loss, sampling.

The process owns the schedule; a denoiser is any callable ``(x_t, t) -> eps`` (a network with its
condition and guidance bound, see :mod:`taxodiff.processes.guidance`). Training noises with the DDPM
scheduler's ``add_noise``; sampling runs any of diffusers' DDPM (ancestral), DDIM or DPM-Solver++ steps.

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   loss = E || eps - eps_theta(x_t, t, c) ||^2
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

Denoiser = Callable[[Tensor, Tensor], Tensor]  # (x_t, t) -> predicted eps
SAMPLERS = ("ddpm", "ddim", "dpmsolver++")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


@dataclass(frozen=True)
class GaussianConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "linear"  # one of BETA_SCHEDULES
    clip_sample: bool = True  # clip predicted x_0 to [-clip_range, clip_range] in DDPM / DDIM steps
    clip_range: float = 1.0
    min_snr_gamma: float = 0.0  # > 0: min-SNR loss weighting (Hang et al. 2023)
    prediction: str = "epsilon"  # what the network predicts: "epsilon", "v_prediction" (Salimans & Ho) or "sample"


def _scheduler_classes() -> dict[str, Any]:
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    return {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpmsolver++": DPMSolverMultistepScheduler}


class GaussianProcess:
    def __init__(self, cfg: GaussianConfig | None = None) -> None:
        self.cfg = cfg or GaussianConfig()
        self.train_scheduler = self.scheduler("ddpm")
        self.alphas_cumprod = self.train_scheduler.alphas_cumprod.float()  # (T,)

    @property
    def T(self) -> int:
        return self.cfg.num_train_timesteps

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
            common.update(clip_sample=c.clip_sample, clip_sample_range=c.clip_range)
        if name in ("ddpm", "ddim"):
            common.update(timestep_spacing="trailing")  # few-step schedules start at t = T - 1
        if name == "dpmsolver++":
            common.update(algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing")
        return _scheduler_classes()[name](**common)

    # -- forward process ------------------------------------------------------------------------------
    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """Sample of q(x_t | x_0) given the noise: sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        return self.train_scheduler.add_noise(x0, noise, t).to(x0.dtype)

    def loss(
        self,
        eps_model: Callable[[Tensor, Tensor], Tensor],
        x0: Tensor,
        gen: torch.Generator,
        reduce: bool = True,
        t: Tensor | None = None,
    ) -> Tensor:
        """Weighted eps- (or v-) prediction MSE at t ~ U{0..T-1} (or the given t). eps_model: (x_t, t) -> eps."""
        if t is None:
            t = torch.randint(0, self.T, (x0.shape[0],), generator=gen).to(x0.device)
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        xt = self.add_noise(x0, noise, t)
        target = {"epsilon": noise, "sample": x0}.get(self.cfg.prediction)
        if target is None:
            target = self.train_scheduler.get_velocity(x0, noise, t)
        err = (eps_model(xt, t).float() - target).pow(2)
        per_sample = err.flatten(1).mean(1) * self.weight(t)
        return per_sample.mean() if reduce else per_sample

    def weight(self, t: Tensor) -> Tensor:
        """Loss weight per timestep: 1, or min(SNR, gamma) / SNR (eps) and min(SNR, gamma) / (SNR + 1) (v)."""
        if self.cfg.min_snr_gamma <= 0:
            return torch.ones(t.shape, device=t.device)
        ab = self.alphas_cumprod.to(t.device)[t]
        snr = ab / (1 - ab)
        return snr.clamp(max=self.cfg.min_snr_gamma) / (snr if self.cfg.prediction == "epsilon" else snr + 1)

    # -- reverse process ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        denoiser: Denoiser,
        shape: tuple[int, ...],
        gen: torch.Generator,
        sampler: str = "dpmsolver++",
        steps: int = 20,
        device: torch.device | str = "cpu",
        progress: Callable[[int], None] | None = None,
        start: Tensor | None = None,
        t_start: int | None = None,
    ) -> Tensor:
        """Run the reverse process from pure noise with ``steps`` denoiser calls, or from ``start``, a draw of
        x_t at timestep ``t_start``, through the remaining timesteps <= t_start."""
        sched = self.scheduler(sampler)
        sched.set_timesteps(steps)
        if start is None:
            x, timesteps = torch.randn(shape, generator=gen).to(device) * sched.init_noise_sigma, sched.timesteps
        else:
            x, timesteps = start.to(device), [t for t in sched.timesteps if int(t) <= (t_start or 0)]
        for t in timesteps:
            tb = torch.full((shape[0],), int(t), device=device, dtype=torch.long)
            eps = denoiser(x, tb).float()
            kwargs = {"generator": gen} if sampler == "ddpm" else {}
            x = sched.step(eps, t, x, **kwargs).prev_sample
            if progress is not None:
                progress(1)
        return x
