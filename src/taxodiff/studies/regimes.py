"""Training regimes ("cells") of a study: the config as given, or changed in one respect (sub-class imbalance, a
small training set, a short budget), and the config of a regime at a seed. This module imports no torch."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from taxodiff import config as config_mod
from taxodiff.config import RunConfig


@dataclass(frozen=True)
class Cell:
    """A training regime: a name, what it changes, and how (dotted config overrides, or a function)."""

    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    imbalance: float | None = None  # the first subtype of every category gets this share


def imbalanced_spec(cfg: RunConfig, major: float) -> dict[str, Any]:
    """The config's class tree with the children of every condition node reweighted: the first gets ``major``,
    the others share the rest equally (category probabilities unchanged)."""
    from taxodiff.data import get_source

    spec = copy.deepcopy(get_source(cfg.data.source)(cfg).hierarchy.to_spec())

    def walk(children: dict[str, Any], depth: int) -> None:
        for value in children.values():
            if not isinstance(value, dict) or "children" not in value:
                continue
            if depth == cfg.cond_level:
                kids = value["children"]
                rest = (1 - major) / max(1, len(kids) - 1)
                for i, name in enumerate(kids):
                    p = major if i == 0 else rest
                    kids[name] = {**kids[name], "p": p} if isinstance(kids[name], dict) else p
            else:
                walk(value["children"], depth + 1)

    walk(spec, 1)
    return spec


def cell_config(cfg: RunConfig, cell: Cell, seed: int) -> RunConfig:
    data: dict[str, Any] = {"seed": seed, **cell.overrides}
    if cell.imbalance is not None:
        data["hierarchy"] = imbalanced_spec(cfg, cell.imbalance)
    return config_mod.with_overrides(cfg, data)
