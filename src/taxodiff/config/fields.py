"""Config fields that carry their own range rule, so a section's checks stand beside its fields.

    steps: int = positive(600)                      # > 0
    p_uncond: float = unit(0.1)                     # in [0, 1]
    sampler: str = choice("ddpm", SAMPLERS)         # one of the names
    guidance_interval: tuple[float, ...] = pair((0.28, 5.42), 0.0, inf)

:func:`check_rules` walks a config (nested dataclasses) and raises one line naming the first value outside
its rule. This module imports neither torch nor numpy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Any

from taxodiff.errors import TaxodiffError


def positive(default: Any) -> Any:
    return field(default=default, metadata={"rule": ("positive",)})


def nonneg(default: Any) -> Any:
    return field(default=default, metadata={"rule": ("nonneg",)})


def unit(default: Any) -> Any:
    return field(default=default, metadata={"rule": ("unit",)})


def within(default: float, lo: float, hi: float) -> Any:
    return field(default=default, metadata={"rule": ("within", lo, hi)})


def choice(default: str, options: tuple[str, ...]) -> Any:
    return field(default=default, metadata={"rule": ("choice", tuple(options))})


def pair(default: tuple[float, float], lo: float, hi: float) -> Any:
    return field(default=default, metadata={"rule": ("pair", lo, hi)})


def check_rules(cfg: Any, prefix: str = "") -> None:
    """Raise TaxodiffError naming the first field (dotted path) whose value breaks its rule."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_rules(value, f"{key}.")
            continue
        rule = f.metadata.get("rule")
        if rule is not None:
            _check(key, value, rule)


def _check(key: str, value: Any, rule: tuple[Any, ...]) -> None:
    kind = rule[0]
    if kind == "choice" and value not in rule[1]:
        raise TaxodiffError(f"{key} = {value!r} is invalid: allowed are {', '.join(rule[1])}")
    if kind == "positive" and not value > 0:
        raise TaxodiffError(f"{key} = {value!r} is invalid: allowed is a positive number")
    if kind == "nonneg" and not value >= 0:
        raise TaxodiffError(f"{key} = {value!r} is invalid: allowed is a number >= 0")
    if kind == "unit" and not 0 <= value <= 1:
        raise TaxodiffError(f"{key} = {value!r} is invalid: allowed is a number in [0, 1]")
    if kind == "within" and not rule[1] <= value <= rule[2]:
        raise TaxodiffError(f"{key} = {value!r} is invalid: allowed is a number in [{rule[1]}, {rule[2]}]")
    if kind == "pair":
        lo, hi = rule[1], rule[2]
        if len(value) != 2 or not lo <= value[0] < value[1] <= hi:
            shown = "inf" if math.isinf(hi) else f"{hi}"
            raise TaxodiffError(f"{key} = {list(value)} is invalid: allowed are two numbers a < b in [{lo}, {shown}]")
