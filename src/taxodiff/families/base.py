"""What a model family declares and does. One subclass per family, in the family's folder, registered in
``taxodiff.families``.

A family is bound to a run config. It declares its config sections (``sections``: ``net``, ``diffusion``,
``sample`` and, where it extends the trainer's, ``train``; ``defaults``: dotted values replacing the generic
ones) and the data kinds it takes, and does:

- ``build()``: its networks, in a :class:`taxodiff.families.module.FamilyModule` (checkpoint keys
  ``<network>.<parameter>``); ``structure()``, a JSON record saved with every checkpoint from which ``build``
  makes the same networks again (for families that grow);
- ``stages()``: the phases of training, with the hooks a phase may need (``grow``, ``freeze``, ``stage_data``,
  ``at_step``); ``loss()`` and ``param_groups()``: what the one trainer minimises, with which learning rates;
- ``generate()``: the samples a sampling config asks for (``sample_tag``, ``sample_count``), every sample from
  its own random stream, and ``figures()`` of them;
- ``evaluate()``: scores of those samples, merged into the run's ``eval.json``; ``evaluation`` types them
  (:mod:`taxodiff.evaluate.results`: a study's row, a terminal line).

What the command line and the studies read of a family is metadata beside it: ``commands``
(:class:`Commands`: its flags, its own verbs, an alias ``taxodiff <family> ...``) and ``roles``
(:class:`Roles`: whether the comparisons take it, as their baseline or not, and its guidance scales).

Importing this module (or a family module) imports no torch: heavy imports happen inside the methods, so
configs are checked instantly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from torch import Tensor

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


WEIGHTS = {  # how a family comes by p(class | category), the weights of the modes a coarse request asks for
    "learned": "learns p(class | category) from the data",
    "given": "class labels; draws the class from the class tree's probabilities",
    "unlabelled": "no labels in training; each category answered by the learned node that matches it",
}


@dataclass(frozen=True)
class Roles:
    """How the studies use a family."""

    compared: bool = False  # the comparisons of its data kind take it (the demo, the mode-collapse study)
    baseline: bool = False  # the reference those comparisons measure the others against (one per data kind)
    guidance: Mapping[str, str] = field(default_factory=dict)  # its guidance scales: sample key -> what it guides
    coarse: bool = False  # answers the coarse request ``sample.request: categories`` (the families study takes it)
    weights: str = "learned"  # one of WEIGHTS: how it comes by the modes' weights
    # the trainer keys (steps, batch_size, lr) of its diffusion network under its own names where they differ (a
    # second stage trained after other phases); a study giving families equal budgets sets these
    budget: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verb:
    """A command-line verb a family brings: ``taxodiff <name>`` and ``taxodiff <family> <name>``."""

    name: str
    help: str
    arguments: Callable[[Any], None]  # adds its own arguments to an argparse parser
    run: Callable[[Any, Any], int]  # (the parsed arguments, the run config or None) -> exit code
    takes_config: bool = False  # reads a run config (--config, --set): the CLI builds it and passes it to run


@dataclass(frozen=True)
class Commands:
    """What a family adds to the command line."""

    flags: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # flag -> (dotted key, help)
    verbs: tuple[Verb, ...] = ()
    alias: bool = False  # ``taxodiff <family> train|sample|evaluate|<its verbs>``


class Family:
    name: ClassVar[str]
    summary: ClassVar[str] = ""
    data_kinds: ClassVar[tuple[str, ...]] = ()
    sections: ClassVar[dict[str, type]] = {}
    defaults: ClassVar[dict[str, Any]] = {}
    uses_parent: ClassVar[bool] = False  # needs ``parent:``, a trained run it builds on (a second stage)
    extends_parent: ClassVar[bool] = False  # may take ``parent:``: a trained run of its own family it extends
    evaluation: ClassVar[type] = object  # the type of its evaluations (taxodiff.evaluate.results)
    roles: ClassVar[Roles] = Roles()
    commands: ClassVar[Commands] = Commands()

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

    def figures(self, module: FamilyModule, run_dir: Path, samples: dict[str, Tensor], tag: str) -> None:
        """Figures of freshly drawn samples (a grid per category...) under ``run_dir``."""

    # -- evaluation -------------------------------------------------------------------------------------
    def evaluate(self, module: FamilyModule, samples: dict[str, Tensor], progress: bool = True) -> dict:
        raise NotImplementedError
