"""Configs written before data sources were sections of their own (run directories of taxodiff <= 0.1).

Until then the Random Hierarchy Model's grammar was a top-level ``rhm:`` section beside ``data:``; it is now
``data: {source: rhm, v, n, m, s, L, seed_rules, n_train, n_test, seed_sample}``, and the trainer's section had
a ``prior_lr`` that only the hierarchical family uses. Such a config is upgraded on reading, so old files and
old run directories keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taxodiff.errors import TaxodiffError


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    grammar = raw.pop("rhm", None)
    if grammar is None:
        return raw
    data = raw.get("data") or {}
    if not isinstance(grammar, Mapping) or not isinstance(data, Mapping):
        raise TaxodiffError("config sections rhm and data must be mappings")
    if data.get("source", "rhm") != "rhm":
        raise TaxodiffError(f"an rhm: section is a grammar, but data.source = {data['source']!r}: remove one")
    raw["data"] = {"source": "rhm", **grammar, **{k: v for k, v in data.items() if k != "source"}}
    train = raw.get("train")
    if isinstance(train, dict):
        train.pop("prior_lr", None)  # then a field of every run's trainer, now the hierarchical family's
    return raw
