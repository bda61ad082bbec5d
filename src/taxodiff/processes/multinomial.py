"""Uniform multinomial diffusion on tokens (D3PM-uniform; Hoogeboom et al. 2021, Austin et al. 2021).

Each step keeps a token with probability 1 - beta_t and otherwise redraws it uniformly from v symbols:

    q(x_t | x_{t-1}) = Cat(alpha_t x_{t-1} + (1 - alpha_t) / v)         (Q_t = alpha_t I + (1 - alpha_t) 11^T / v)
    q(x_t | x_0)     = Cat(abar_t x_0 + (1 - abar_t) / v),                abar_t = prod_{s <= t} alpha_s
    q(x_{t-1} | x_t, x_0) ∝ [alpha_t x_t + (1 - alpha_t)/v] ⊙ [abar_{t-1} x_0 + (1 - abar_{t-1})/v]

The network predicts x_0 logits; the model's reverse step puts its x_0 probabilities into the same
formula (that is sum_x0 q(x_{t-1}, x_t | x0) p(x0 | x_t), normalised). Loss: KL(q(x_{t-1} | x_t, x_0) ||
p(x_{t-1} | x_t)) at t ~ U{1..T} (at t = 1 it is -log p(x_0 | x_1)), optionally plus a cross-entropy term on
x_0. Timesteps run 1..T; abar_0 = 1. A denoiser given a one-hot draw of x_0 from the exact posterior (belief
propagation) makes each reverse step exact. Tokens are (B, N) integers, probabilities (B, v, N).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

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
        self.alphas = torch.cat([torch.ones(1, dtype=torch.float64), 1 - betas])  # index t = 0..T
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)  # abar_0 = 1

    # -- forward --------------------------------------------------------------------------------------
    def transition(self, t: int) -> Tensor:
        """Q_t (v, v): row i is q(x_t | x_{t-1} = i)."""
        a = float(self.alphas[t])
        return a * torch.eye(self.v, dtype=torch.float64) + (1 - a) / self.v

    def marginal_probs(self, x0: Tensor, t: Tensor) -> Tensor:
        """q(x_t | x_0) for tokens x0 (B, N): (B, v, N)."""
        ab = self.alphas_cumprod.to(x0.device)[t].float()[:, None, None]
        return ab * F.one_hot(x0.long(), self.v).permute(0, 2, 1).float() + (1 - ab) / self.v

    def q_sample(self, x0: Tensor, t: Tensor, gen: torch.Generator) -> Tensor:
        keep = torch.rand(x0.shape, generator=gen).to(x0.device) < self.alphas_cumprod.to(x0.device)[t][:, None]
        noise = torch.randint(0, self.v, x0.shape, generator=gen).to(x0.device)
        return torch.where(keep, x0, noise)

    def log_likelihood(self, xt: Tensor, t: Tensor) -> Tensor:
        """log q(x_t | x_0 = a) for every leaf and symbol: (B, N, v), the evidence belief propagation takes."""
        ab = self.alphas_cumprod.to(xt.device)[t].double()[:, None, None]
        hit = F.one_hot(xt.long(), self.v).double()
        return torch.log(ab * hit + (1 - ab) / self.v)

    # -- reverse --------------------------------------------------------------------------------------
    def posterior(self, xt: Tensor, x0_probs: Tensor, t: Tensor) -> Tensor:
        """q(x_{t-1} | x_t, x_0) for x_0 one-hot, or the model's reverse step for x_0 probabilities: (B, v, N)."""
        a = self.alphas.to(xt.device)[t].float()[:, None, None]
        ab_prev = self.alphas_cumprod.to(xt.device)[t - 1].float()[:, None, None]
        from_xt = a * F.one_hot(xt.long(), self.v).permute(0, 2, 1).float() + (1 - a) / self.v
        from_x0 = ab_prev * x0_probs.float() + (1 - ab_prev) / self.v
        p = from_xt * from_x0
        return p / p.sum(dim=1, keepdim=True)

    def loss(
        self,
        logits_fn: Callable[[Tensor, Tensor], Tensor],
        x0: Tensor,
        gen: torch.Generator,
        reduce: bool = True,
        t: Tensor | None = None,
    ) -> Tensor:
        """KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)) per token, t ~ U{1..T} (or the given t), plus
        ce_weight * CE; the mean, or one value per sequence (``reduce=False``)."""
        if t is None:
            t = torch.randint(1, self.T + 1, (x0.shape[0],), generator=gen).to(x0.device)
        xt = self.q_sample(x0, t, gen)
        logits = logits_fn(xt, t).float()  # (B, v, N)
        true = self.posterior(xt, F.one_hot(x0.long(), self.v).permute(0, 2, 1).float(), t)
        model = self.posterior(xt, logits.softmax(dim=1), t)
        per_seq = (true * (torch.log(true + EPS) - torch.log(model + EPS))).sum(dim=1).mean(dim=1)
        if self.cfg.ce_weight > 0:
            per_seq = per_seq + self.cfg.ce_weight * F.cross_entropy(logits, x0.long(), reduction="none").mean(1)
        return per_seq.mean() if reduce else per_seq

    @torch.no_grad()
    def sample(
        self,
        x0_model: X0Model,
        shape: tuple[int, int],
        gen: torch.Generator,
        device: torch.device | str = "cpu",
        start: Tensor | None = None,
        t_start: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Tensor:
        """Ancestral sampling from x_T ~ uniform (or from ``start`` at time ``t_start``) down to x_0: tokens (B, N)."""
        t0 = self.T if t_start is None else t_start
        x = torch.randint(0, self.v, shape, generator=gen).to(device) if start is None else start.to(device)
        for t in range(t0, 0, -1):
            tb = torch.full((shape[0],), t, device=device, dtype=torch.long)
            p = self.posterior(x, x0_model(x, tb), tb)  # (B, v, N)
            x = _draw(p, gen)
            if progress is not None:
                progress(1)
        return x


def _draw(p: Tensor, gen: torch.Generator) -> Tensor:
    """One token per position from probabilities (B, v, N)."""
    b, v, n = p.shape
    flat = p.permute(0, 2, 1).reshape(-1, v).float().cpu()
    return torch.multinomial(flat, 1, generator=gen).reshape(b, n).to(p.device)


def _betas(cfg: MultinomialConfig) -> Tensor:
    if cfg.beta_schedule == "linear":
        return torch.linspace(cfg.beta_start, cfg.beta_end, cfg.num_steps, dtype=torch.float64)
    if cfg.beta_schedule == "cosine":
        s = 0.008
        steps = torch.arange(cfg.num_steps + 1, dtype=torch.float64) / cfg.num_steps
        f = torch.cos((steps + s) / (1 + s) * torch.pi / 2) ** 2
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"beta_schedule={cfg.beta_schedule!r}: allowed are linear, cosine")
