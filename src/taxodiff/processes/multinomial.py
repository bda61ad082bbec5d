"""Uniform multinomial diffusion on tokens (D3PM-uniform; Hoogeboom et al. 2021, Austin et al. 2021).

Each step keeps a token with probability 1 - beta_t and otherwise redraws it uniformly from v symbols:

    q(x_t | x_{t-1}) = Cat(alpha_t x_{t-1} + (1 - alpha_t) / v)         (Q_t = alpha_t I + (1 - alpha_t) 11^T / v)
    q(x_t | x_0)     = Cat(abar_t x_0 + (1 - abar_t) / v),                abar_t = prod_{s <= t} alpha_s
    q(x_{t-1} | x_t, x_0) ∝ [alpha_t x_t + (1 - alpha_t)/v] ⊙ [abar_{t-1} x_0 + (1 - abar_{t-1})/v]

Between any two times s < t, q(x_t | x_s) = Cat(r x_s + (1 - r)/v) with r = abar_t / abar_s, so a reverse
step may skip times: q(x_s | x_t, x_0) ∝ [r x_t + (1 - r)/v] ⊙ [abar_s x_0 + (1 - abar_s)/v].

The network predicts x_0 logits; the model's reverse step puts its x_0 probabilities into the same
formula (that is sum_x0 q(x_s, x_t | x0) p(x0 | x_t), normalised). Loss: KL(q(x_{t-1} | x_t, x_0) ||
p(x_{t-1} | x_t)) at t ~ U{1..T} (at t = 1 it is -log p(x_0 | x_1)), optionally plus a cross-entropy term on
x_0. Times run 0..T as in :mod:`taxodiff.processes.base` (abar_0 = 1); the network reads t itself. A
denoiser that returns a one-hot draw of x_0 from the exact posterior (belief propagation) makes each reverse
step exact. Tokens are (B, N) integers, probabilities (B, v, N).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from taxodiff.noise import Noise
from taxodiff.processes.base import Denoiser, Progress, even_grid, full_batch

X0Model = Callable[[Tensor, Tensor], Tensor]  # (x_t tokens (B, N), t (B,)) -> x_0 probabilities (B, v, N)
EPS = 1e-20


@dataclass(frozen=True)
class MultinomialConfig:
    num_classes: int = 8  # v
    num_steps: int = 200  # T (the seed's nT)
    beta_start: float = 0.001
    beta_end: float = 0.1
    beta_schedule: str = "linear"  # "linear" in beta, or "cosine" (abar_t = cos^2, Nichol & Dhariwal)
    ce_weight: float = 0.0  # weight of the auxiliary cross-entropy on x_0 (Austin et al. use 0.001)


class MultinomialProcess:
    def __init__(self, cfg: MultinomialConfig) -> None:
        self.cfg = cfg
        self.v, self.T = cfg.num_classes, cfg.num_steps
        betas = _betas(cfg).double()
        self._alpha = torch.cat([torch.ones(1, dtype=torch.float64), 1 - betas])  # index t = 0..T
        self._abar = torch.cumprod(self._alpha, dim=0)  # abar_0 = 1

    def net_time(self, t: Tensor) -> Tensor:
        return t

    def process_time(self, net_t: Tensor) -> Tensor:
        return net_t

    def abar(self, t: Tensor) -> Tensor:
        """The share of tokens kept from x_0 at process times t (abar_0 = 1), float64."""
        return self._abar.to(t.device)[t]

    # -- forward --------------------------------------------------------------------------------------
    def transition(self, t: int) -> Tensor:
        """Q_t (v, v): row i is q(x_t | x_{t-1} = i)."""
        a = float(self._alpha[t])
        return a * torch.eye(self.v, dtype=torch.float64) + (1 - a) / self.v

    def marginal_probs(self, x0: Tensor, t: Tensor) -> Tensor:
        """q(x_t | x_0) for tokens x0 (B, N): (B, v, N)."""
        ab = self.abar(t).float()[:, None, None]
        return ab * F.one_hot(x0.long(), self.v).permute(0, 2, 1).float() + (1 - ab) / self.v

    def add_noise(self, x0: Tensor, t: Tensor, noise: Noise) -> Tensor:
        """A draw of q(x_t | x_0): each token kept with probability abar_t, else redrawn uniformly."""
        keep = noise.rand(x0.shape, x0.device) < self.abar(t)[:, None]
        fresh = noise.randint(self.v, x0.shape, x0.device)
        return torch.where(keep, x0, fresh)

    def log_likelihood(self, xt: Tensor, t: Tensor) -> Tensor:
        """log q(x_t | x_0 = a) for every leaf and symbol: (B, N, v), the evidence belief propagation takes."""
        ab = self.abar(t).double()[:, None, None]
        hit = F.one_hot(xt.long(), self.v).double()
        return torch.log(ab * hit + (1 - ab) / self.v)

    # -- reverse --------------------------------------------------------------------------------------
    def posterior(self, xt: Tensor, x0_probs: Tensor, t: Tensor, s: Tensor | None = None) -> Tensor:
        """q(x_s | x_t, x_0) (s = t - 1 unless given) for x_0 one-hot, or the model's reverse step for x_0
        probabilities: (B, v, N)."""
        s = t - 1 if s is None else s
        r = (self.abar(t) / self.abar(s)).float()[:, None, None]
        ab_s = self.abar(s).float()[:, None, None]
        from_xt = r * F.one_hot(xt.long(), self.v).permute(0, 2, 1).float() + (1 - r) / self.v
        from_x0 = ab_s * x0_probs.float() + (1 - ab_s) / self.v
        p = from_xt * from_x0
        return p / p.sum(dim=1, keepdim=True)

    def loss(
        self, logits_fn: Denoiser, x0: Tensor, noise: Noise, t: Tensor | None = None, reduce: bool = True
    ) -> Tensor:
        """KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) per token, t ~ U{1..T} (or the given t), plus
        ce_weight * CE; the mean, or one value per sequence (``reduce=False``). logits_fn: (x_t, t) -> logits."""
        if t is None:
            t = noise.randint(self.T, (x0.shape[0],), x0.device) + 1
        xt = self.add_noise(x0, t, noise)
        logits = logits_fn(xt, t).float()  # (B, v, N)
        true = self.posterior(xt, F.one_hot(x0.long(), self.v).permute(0, 2, 1).float(), t)
        model = self.posterior(xt, logits.softmax(dim=1), t)
        per_seq = (true * (torch.log(true + EPS) - torch.log(model + EPS))).sum(dim=1).mean(dim=1)
        if self.cfg.ce_weight > 0:
            per_seq = per_seq + self.cfg.ce_weight * F.cross_entropy(logits, x0.long(), reduction="none").mean(1)
        return per_seq.mean() if reduce else per_seq

    # -- reverse --------------------------------------------------------------------------------------
    def prior(self, shape: tuple[int, ...], noise: Noise, device: torch.device | str = "cpu") -> Tensor:
        """x_T: uniform tokens."""
        return noise.randint(self.v, shape, device)

    def timesteps(self, steps: int | None, t_from: int, t_to: int = 0) -> list[int]:
        return even_grid(steps, t_from, t_to)

    def step(self, out: Tensor, x: Tensor, t: int, s: int, noise: Noise) -> Tensor:
        """One reverse step t -> s < t: draw from q(x_s | x_t, x_0) averaged over the x_0 probabilities ``out``."""
        b = x.shape[0]
        p = self.posterior(x, out, full_batch(t, b, x.device), full_batch(s, b, x.device))  # (B, v, N)
        return noise.categorical(p.permute(0, 2, 1))

    @torch.no_grad()
    def sample(
        self,
        denoiser: X0Model,
        x: Tensor,
        noise: Noise,
        t_from: int | None = None,
        t_to: int = 0,
        steps: int | None = None,
        sampler: str = "ancestral",
        progress: Progress | None = None,
        grid: list[int] | None = None,
    ) -> Tensor:
        """Ancestral sampling from tokens ``x`` at t_from (default T) down to t_to, over ``steps`` evenly spaced
        times (default: every time) or the decreasing ``grid``. ``denoiser``: (x_t, t) -> x_0 probabilities
        (B, v, N)."""
        t_from = self.T if t_from is None else t_from
        if t_to == t_from:
            return x
        grid = grid or self.timesteps(steps, t_from, t_to)
        for t, s in zip(grid, grid[1:], strict=False):
            x = self.step(denoiser(x, full_batch(t, x.shape[0], x.device)), x, t, s, noise)
            if progress is not None:
                progress(1)
        return x


def _betas(cfg: MultinomialConfig) -> Tensor:
    if cfg.beta_schedule == "linear":
        return torch.linspace(cfg.beta_start, cfg.beta_end, cfg.num_steps, dtype=torch.float64)
    if cfg.beta_schedule == "cosine":
        s = 0.008
        steps = torch.arange(cfg.num_steps + 1, dtype=torch.float64) / cfg.num_steps
        f = torch.cos((steps + s) / (1 + s) * torch.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"beta_schedule={cfg.beta_schedule!r}: allowed are linear, cosine")
