"""What a model family declares and does. One subclass per family, registered in ``taxodiff.families``.

A family is bound to a run config. It declares:

- ``sections``: its ``net``, ``diffusion`` and ``sample`` config sections (and ``train``, where it extends the
  trainer's section), and ``defaults`` (dotted values replacing the generic defaults);
- ``data_kinds``: the data it accepts ("images", "sequences");
- ``build()``: its networks, in a :class:`taxodiff.families.module.FamilyModule` (checkpoint keys
  ``<network>.<parameter>``); ``structure()``, a JSON record saved with every checkpoint from which ``build``
  makes the same networks again (for families that grow);
- ``stages()``, ``grow()``, ``freeze()``, ``stage_data()`` and ``at_step()``: training stages, what changes at
  each stage's first step, what a stage trains on and what changes at every step inside it;
- ``loss()`` and ``param_groups()``: what the one trainer minimises, and with which learning rates;
- ``generate()``: samples for a sampling config, every sample drawn from its own random stream;
- ``evaluate()``: scores of those samples, merged into the run's ``eval.json``.

Importing this module (or a family module) imports no torch: heavy imports happen inside the methods, so
configs are checked instantly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from torch import Tensor, nn

    from taxodiff.config.schema import RunConfig
    from taxodiff.data.base import DataSource
    from taxodiff.families.module import FamilyModule
    from taxodiff.noise import Noise


@dataclass(frozen=True)
class Stage:
    """A phase of training: its own step count, learning-rate warm-up and schedule, batch size, and fresh
    optimiser state."""

    name: str
    steps: int
    warmup: int | None = None  # None: the train section's
    lr_schedule: str | None = None  # None: the train section's
    batch_size: int | None = None  # None: the train section's


@dataclass(frozen=True)
class Parent:
    """A trained run whose model a child run uses, frozen (a second stage trained on a first)."""

    run_dir: Path
    step: int
    digest: str
    module: Any  # its FamilyModule, in eval mode, every parameter frozen
    family: Any


class Family:
    name: ClassVar[str]
    summary: ClassVar[str] = ""
    data_kinds: ClassVar[tuple[str, ...]] = ()
    sections: ClassVar[dict[str, type]] = {}
    defaults: ClassVar[dict[str, Any]] = {}
    baseline: ClassVar[str | None] = None  # the family this one is compared with (None: it is a baseline)
    compare: ClassVar[bool] = True  # takes part in the demo and the comparative studies
    guidance_knobs: ClassVar[dict[str, str]] = {}  # sample key of each guidance scale -> what it guides
    uses_parent: ClassVar[bool] = False  # needs ``parent:``, a trained run it builds on
    extends_parent: ClassVar[bool] = False  # may take ``parent:``: a trained run of its own family it extends
    flags: ClassVar[dict[str, tuple[str, str]]] = {}  # CLI flags setting its keys: flag -> (dotted key, help)
    cli_alias: ClassVar[bool] = False  # ``taxodiff <name> train|sample|evaluate`` as an alias of the verbs

    def __init__(self, cfg: RunConfig, source: DataSource | None = None) -> None:
        from taxodiff.data import get_source

        self.cfg = cfg
        self.source = source if source is not None else get_source(cfg.data.source)(cfg)

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        """Checks across sections beyond each field's own rule (raise TaxodiffError)."""

    @cached_property
    def hierarchy(self) -> Any:
        return self.source.hierarchy

    # -- building and training -------------------------------------------------------------------------
    def build(self, structure: dict[str, Any] | None = None, parent: Parent | None = None) -> FamilyModule:
        raise NotImplementedError

    def structure(self, module: FamilyModule) -> dict[str, Any] | None:
        """JSON from which ``build`` makes the same networks (None: the config alone defines them)."""
        return None

    def train_set(self) -> Any:
        """What the trainer reads (default: the source's training set)."""
        return self.source.train_set()

    def stages(self) -> list[Stage]:
        return [Stage("train", self.cfg.train.steps)]

    def grow(self, module: FamilyModule, stage: Stage) -> None:
        """At a stage's first step: change the networks (add modules). Not called when resuming inside it."""

    def freeze(self, module: FamilyModule, stage: Stage) -> None:
        """Which parameters train in ``stage`` (set ``requires_grad``); called at its start and on resume."""
        for p in module.parameters():
            p.requires_grad_(True)

    def stage_data(self, module: FamilyModule, stage: Stage, data: Any) -> Any:
        """What ``stage`` trains on, given the training set (default: all of it). Called after ``freeze``, at
        the stage's start and on resume: it must depend only on what the stage does not train."""
        return data

    def at_step(self, module: FamilyModule, stage: Stage, step: int) -> None:
        """Before every training step; ``step`` counts from the stage's first (schedules inside a stage)."""

    def loss(self, module: FamilyModule, batch: dict[str, Tensor], noise: Noise) -> dict[str, Tensor]:
        raise NotImplementedError

    def param_groups(self, module: FamilyModule) -> list[dict[str, Any]]:
        return [{"params": [p for p in module.parameters() if p.requires_grad], "lr": self.cfg.train.lr}]

    # -- sampling ---------------------------------------------------------------------------------------
    def sample_tag(self, sc: Any) -> str:
        raise NotImplementedError

    def sample_count(self, sc: Any) -> int | None:
        """How many samples a sampling config asks for (None: it depends on the trained model)."""
        raise NotImplementedError

    def generate(self, module: FamilyModule, sc: Any, seed: int, progress: bool = True) -> dict[str, Tensor]:
        """All samples a sampling config asks for; sample i depends on (seed, i) only, not on batching."""
        raise NotImplementedError

    def save_figures(self, run_dir: Path, samples: dict[str, Tensor], tag: str) -> None:
        """Figures of freshly drawn samples (a grid per category...)."""

    # -- evaluation -------------------------------------------------------------------------------------
    def evaluate(self, module: FamilyModule, samples: dict[str, Tensor], progress: bool = True) -> dict:
        raise NotImplementedError

    @classmethod
    def describe_result(cls, result: dict[str, Any]) -> str:
        """One line of the evaluation, for the terminal."""
        return f"{cls.name} {result.get('tag', '')}"

    def networks(self, module: FamilyModule) -> dict[str, nn.Module]:
        return dict(module.named_children())
