"""Run configuration for diffusion on the Random Hierarchy Model: the same loader and checks as the image runs.

    rhm: {v: 8, n: 8, m: 3, s: 2, L: 3, seed_rules: 0}
    data: {n_train: 1024}
    net: {arch: tree_unet, width: 256}
    diffusion: {process: discrete, num_steps: 200}
    train: {steps: 8000}

This module imports neither torch nor numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taxodiff import config as base
from taxodiff.config import TrainConfig
from taxodiff.errors import TaxodiffError

ARCHS = ("tree_unet", "transformer")
PROCESSES = ("discrete", "gaussian")
TARGETS = ("epsilon", "x0", "exact_score")  # Gaussian process only; the discrete one predicts x_0 logits


@dataclass(frozen=True)
class RHMSpec:
    v: int = 8  # vocabulary size (symbols at every level below the root)
    n: int = 8  # classes (root symbols)
    m: int = 3  # synonyms: productions per symbol
    s: int = 2  # tuple size: children per node
    L: int = 3  # depth: the sequence has s^L tokens
    seed_rules: int = 0

    def check(self) -> None:
        for name in ("v", "n", "m", "s", "L"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TaxodiffError(f"rhm.{name}={value!r} is invalid: allowed is a positive integer")
        v, n, m, s = self.v, self.n, self.m, self.s
        if s < 2:
            raise TaxodiffError(f"rhm.s={s} is invalid: a tuple needs s >= 2 symbols")
        if m > v ** (s - 1):
            raise TaxodiffError(f"rhm.m={m} is impossible with v={v}, s={s}: allowed is m <= v^(s-1) = {v ** (s - 1)}")
        if n * m > v**s:
            raise TaxodiffError(
                f"rhm n*m={n * m} (n={n}, m={m}) is impossible with v={v}, s={s}: allowed is n*m <= v^s = {v**s}"
            )


@dataclass(frozen=True)
class RHMDataConfig:
    n_train: int = 1024  # P: training sequences, drawn without replacement
    n_test: int = 1024  # held-out sequences (distinct from the training ones)
    seed_sample: int = 0  # which sequences are drawn (the rules do not change)


@dataclass(frozen=True)
class RHMNetConfig:
    arch: str = "tree_unet"  # "tree_unet" (kernel = stride = s) or "transformer" (the baseline)
    width: int = 256  # tree U-Net channels; the transformer's width is matched to its parameter count
    depth: int = 0  # tree U-Net levels; 0 = L (down to the root)
    layers: int = 3  # transformer layers
    heads: int = 4  # transformer heads
    emb_dim: int = 128  # time embedding


@dataclass(frozen=True)
class RHMDiffusionConfig:
    process: str = "discrete"  # "discrete" (uniform multinomial) or "gaussian" (on one-hot vectors)
    num_steps: int = 200  # T (the seed's nT)
    beta_start: float = 0.001  # the seed's linear schedule
    beta_end: float = 0.1
    beta_schedule: str = "linear"
    ce_weight: float = 0.0  # discrete: weight of an extra cross-entropy on x_0
    target: str = "x0"  # gaussian: "epsilon", "x0" (softmax probabilities) or "exact_score" (BP's E[x_0 | x_t])


@dataclass(frozen=True)
class RHMSampleConfig:
    n_samples: int = 1024
    batch_size: int = 1024
    denoiser: str = "model"  # "model" (the trained network) or "bp" (exact: belief propagation)


@dataclass(frozen=True)
class RHMRunConfig:
    seed: int = 0
    device: str = "auto"
    rhm: RHMSpec = field(default_factory=RHMSpec)
    data: RHMDataConfig = field(default_factory=RHMDataConfig)
    net: RHMNetConfig = field(default_factory=RHMNetConfig)
    diffusion: RHMDiffusionConfig = field(default_factory=RHMDiffusionConfig)
    # 8,000 steps of 64 = 500 epochs of P = 1,024: ~11 min on 2 CPU cores, full validity 0.84 (0.76 at 6,000)
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=8000, batch_size=64, lr=1e-3, warmup=200, lr_schedule="constant", checkpoint_every=2000
        )
    )
    sample: RHMSampleConfig = field(default_factory=RHMSampleConfig)


_CHOICES = {
    "device": base.DEVICES,
    "net.arch": ARCHS,
    "diffusion.process": PROCESSES,
    "diffusion.target": TARGETS,
    "diffusion.beta_schedule": ("linear", "cosine"),
    "train.precision": base.PRECISIONS,
    "train.lr_schedule": ("cosine", "constant"),
    "sample.denoiser": ("model", "bp"),
}
_POSITIVE = {
    "data.n_train",
    "data.n_test",
    "net.width",
    "net.layers",
    "net.heads",
    "net.emb_dim",
    "diffusion.num_steps",
    "diffusion.beta_start",
    "diffusion.beta_end",
    "train.steps",
    "train.batch_size",
    "train.lr",
    "train.checkpoint_every",
    "train.log_every",
    "sample.n_samples",
    "sample.batch_size",
}
_NONNEG = {"seed", "net.depth", "diffusion.ce_weight", "train.warmup", "train.weight_decay", "train.grad_clip"}
_UNIT = {"train.ema_decay"}


def check(cfg: RHMRunConfig) -> None:
    base.check_values(cfg, _CHOICES, _POSITIVE, _NONNEG, _UNIT)
    cfg.rhm.check()
    g = cfg.rhm
    total = g.n * g.m ** ((g.s**g.L - 1) // (g.s - 1))
    if cfg.data.n_train + cfg.data.n_test > total:
        raise TaxodiffError(
            f"data.n_train + data.n_test = {cfg.data.n_train + cfg.data.n_test} is more than this grammar's "
            f"{total:,} valid sequences: allowed is at most that many"
        )
    if cfg.net.depth > cfg.rhm.L:
        raise TaxodiffError(f"net.depth = {cfg.net.depth} is invalid: allowed is 0..L = {cfg.rhm.L} (0 means L)")
    if cfg.diffusion.beta_start >= cfg.diffusion.beta_end or cfg.diffusion.beta_end >= 1:
        raise TaxodiffError(
            f"diffusion betas {cfg.diffusion.beta_start}..{cfg.diffusion.beta_end} are invalid: "
            "allowed is 0 < beta_start < beta_end < 1"
        )


def from_dict(data: Any, base_cfg: RHMRunConfig | None = None) -> RHMRunConfig:
    cfg = base.overlay(base_cfg or RHMRunConfig(), data or {}, "")
    check(cfg)
    return cfg


def load(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RHMRunConfig:
    data: dict[str, Any] = {}
    if path is not None:
        base.merge(data, base.read_yaml(path))
    return from_dict(base.nest(data, overrides or {}))


def with_overrides(cfg: RHMRunConfig, overrides: dict[str, Any]) -> RHMRunConfig:
    return from_dict(base.nest({}, overrides), cfg)
