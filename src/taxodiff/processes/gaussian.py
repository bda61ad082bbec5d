"""Gaussian diffusion (DDPM) through diffusers' schedulers: forward noising, the loss, reverse steps, sampling.

    q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   loss = E || target - net(x_t, t, c) ||^2

with target eps (epsilon-prediction), v = sqrt(abar) eps - sqrt(1 - abar) x_0 (v-prediction, Salimans & Ho),
or x_0 ("sample"). Times follow :mod:`taxodiff.processes.base` (0 = data .. T); diffusers numbers the noised
steps 0..T-1, so the network reads ``net_time(t) = t - 1`` (diffusers' own timestep). Training noises with
the DDPM scheduler's ``add_noise``. Every sampler runs any segment t_from -> t_to on a decreasing grid of
process times: DDPM (ancestral, diffusers' step), DDIM (eta = 0, Song et al. 2021 eq. 12, written here because
diffusers' DDIM steps by a fixed stride and cannot stop between its own grid points) and DPM-Solver++
(diffusers' multistep solver on the grid; the whole chain on its own trailing grid).
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
        self._abar = torch.cat([torch.ones(1), self.train_scheduler.alphas_cumprod.float()])  # (T + 1,), abar_0 = 1

    @property
    def T(self) -> int:
        return self.cfg.num_train_timesteps

    @property
    def prediction(self) -> str:
        """What the network predicts: "epsilon", "v_prediction" or "sample"."""
        return self.cfg.prediction

    def net_time(self, t: Tensor) -> Tensor:
        return t - 1

    def process_time(self, net_t: Tensor) -> Tensor:
        return net_t + 1

    def abar(self, t: Tensor) -> Tensor:
        """The signal level abar at process times t (abar_0 = 1), float32."""
        return self._abar.to(t.device)[t]

    def sigma(self, t: Tensor) -> Tensor:
        """The noise level sigma_t = sqrt((1 - abar_t) / abar_t) at process times t, float64."""
        ab = self.abar(t).double()
        return ((1 - ab) / ab).sqrt()

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
        if name in ("ddpm", "ddim"):  # diffusers' DDIM: what tests compare ours with
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

    def ddim_step(self, out: Tensor, x: Tensor, t: int, s: int) -> Tensor:
        """One deterministic DDIM step (eta = 0) from time t to s < t: the predicted x_0 (clipped where the config
        clips) taken back to the noise level of s along the predicted noise."""
        ab_t, ab_s = self._abar[t], self._abar[s]
        x0, eps = _x0_and_eps(out, x, ab_t, self.cfg.prediction)
        if self.cfg.clip_sample:
            x0 = x0.clamp(-self.cfg.clip_range, self.cfg.clip_range)
        return ab_s ** (0.5) * x0 + (1 - ab_s) ** (0.5) * eps

    def grid(self, sampler: str, steps: int | None, t_from: int | None = None, t_to: int = 0) -> list[int]:
        """The decreasing process times a sampler visits from t_from (default T) to t_to: ``steps`` evenly spaced
        times (every time when None); DPM-Solver++'s whole chain is its own trailing grid (the same for steps that
        divide T)."""
        t_from = self.T if t_from is None else t_from
        if sampler == "dpmsolver++" and t_from == self.T and t_to == 0:
            sched = self.scheduler(sampler)
            sched.set_timesteps(steps or self.T)
            return [int(t) + 1 for t in sched.timesteps] + [0]
        return self.timesteps(steps, t_from, t_to)

    def calls(self, steps: int | None, sampler: str = "ddpm", t_from: int | None = None, t_to: int = 0) -> int:
        """How many denoiser calls :meth:`sample` makes from t_from (default T) to t_to."""
        return len(self.grid(sampler, steps, t_from, t_to)) - 1

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
        """The reverse chain from ``x`` at t_from (default T) down to t_to: one denoiser call per step of ``grid``
        (decreasing process times from t_from to t_to; default :meth:`grid`)."""
        t_from = self.T if t_from is None else t_from
        if t_to == t_from:
            return x
        grid = grid or self.grid(sampler, steps, t_from, t_to)
        if grid[0] != t_from or grid[-1] != t_to:
            raise ValueError(f"a grid runs from t_from = {t_from} to t_to = {t_to}, got {grid[:1]}..{grid[-1:]}")
        if sampler == "dpmsolver++":
            own = steps if grid == self.grid(sampler, steps) else None
            return self._dpm_solver(denoiser, x, grid, own, progress)
        sched = self.scheduler("ddpm") if sampler == "ddpm" else None
        if sched is not None:
            sched.set_timesteps(timesteps=[t - 1 for t in grid if t > 0])
        for t, s in zip(grid, grid[1:], strict=False):
            out = denoiser(x, full_batch(t - 1, x.shape[0], x.device)).float()
            if sched is not None:
                x = sched.step(out, t - 1, x, generator=noise.generator).prev_sample
            else:
                x = self.ddim_step(out, x, t, s)
            if progress is not None:
                progress(1)
        return x

    def _dpm_solver(
        self, denoiser: Denoiser, x: Tensor, grid: list[int], own: int | None, progress: Progress | None
    ) -> Tensor:
        """diffusers' DPM-Solver++ (2M) over ``grid`` (``own``: the step count whose own grid it is). The
        scheduler's last step goes to the data, so a segment that stops at t_to > 0 hands it t_to too and stops
        before that last step."""
        sched = self.scheduler("dpmsolver++")
        if own is not None:
            sched.set_timesteps(own)
            walk = list(sched.timesteps)
        elif grid[-1] == 0:
            sched.set_timesteps(timesteps=[t - 1 for t in grid[:-1]])
            walk = list(sched.timesteps)
        else:
            sched.set_timesteps(timesteps=[t - 1 for t in grid])
            walk = list(sched.timesteps)[:-1]
        for tn in walk:
            out = denoiser(x, full_batch(int(tn), x.shape[0], x.device)).float()
            x = sched.step(out, tn, x).prev_sample
            if progress is not None:
                progress(1)
        return x


def _x0_and_eps(out: Tensor, x: Tensor, ab: Tensor, prediction: str) -> tuple[Tensor, Tensor]:
    """(predicted x_0, predicted noise) from the network's output at x_t with signal level ``ab`` (a scalar)."""
    b = 1 - ab
    if prediction == "epsilon":
        return (x - b ** (0.5) * out) / ab ** (0.5), out
    if prediction == "sample":
        return out, (x - ab ** (0.5) * out) / b ** (0.5)
    return ab**0.5 * x - b**0.5 * out, ab**0.5 * out + b**0.5 * x
