"""The run config's layout: generic fields, plus sections whose layout the model family and the data source
choose (how a mapping becomes a checked config: :mod:`taxodiff.config.resolve`).

    model: hierarchical          # a family of taxodiff.families (default: the first that takes the data)
    data: {source: shapes, ...}  # a source of taxodiff.data (default: the first the family takes)
    hierarchy: {...}             # the class tree over the data's labels (default: the source's)
    net / diffusion / sample     # the family's sections
    train                        # the trainer's section (a family may extend it)
    eval                         # the data source's section

This module imports neither torch nor numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taxodiff.config.fields import choice, nonneg, positive, unit

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
LR_SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = positive(600)  # batch 64: 38,400 images seen; the demo's two models train in 4-7 min on 2 CPU cores
    batch_size: int = positive(64)  # the global batch (split over processes)
    lr: float = positive(2e-3)
    warmup: int = nonneg(100)
    lr_schedule: str = choice("cosine", LR_SCHEDULES)  # after warm-up: cosine decay to 10% at the last step
    weight_decay: float = nonneg(0.0)
    grad_clip: float = nonneg(1.0)
    ema_decay: float = unit(0.995)
    precision: str = choice("auto", PRECISIONS)  # auto: bf16 autocast where the CPU or GPU runs it natively
    checkpoint_every: int = positive(200)
    keep_checkpoints: int = positive(2)  # the newest checkpoints kept (the others are deleted)
    log_every: int = positive(20)


@dataclass(frozen=True)
class RunConfig:
    hierarchy: Mapping[str, Any] | None = None  # class tree over the data's labels; None: the source's own
    cond_level: int = 1  # tree level of the coarse condition z2 (1 = the root's children)
    embed_dim: int = 2  # dimension of the z1 anchors
    model: str = ""  # the family
    seed: int = nonneg(0)  # one root seed, split into named streams (data, init, noise, sample, eval)
    device: str = choice("auto", DEVICES)
    parent: str | None = None  # a trained run this one builds on (families that take one)
    data: Any = None
    net: Any = None
    diffusion: Any = None
    train: Any = field(default_factory=TrainConfig)
    sample: Any = None
    eval: Any = None
    aside: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False, metadata={"hidden": True})
