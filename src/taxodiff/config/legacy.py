"""Configs written by earlier versions, upgraded on reading, so old files and old run directories keep working.

- Before data sources were sections of their own (taxodiff <= 0.1) the Random Hierarchy Model's grammar was a
  top-level ``rhm:`` section beside ``data:``; it is now ``data: {source: rhm, v, n, m, s, L, seed_rules,
  n_train, n_test, seed_sample}``, and the trainer's section had a ``prior_lr`` that only the hierarchical
  family uses.
- Before guidance rules had sections of their own, their settings were fields of ``sample:``
  (``sample.cads_noise``); they are now ``sample.guiders.<rule>.<setting>`` (``sample.guiders.cads.noise``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taxodiff.errors import TaxodiffError

GUIDER_KEYS = {  # sample.<old key> -> (rule section, setting)
    "guidance_interval": ("interval", "sigma"),
    "cads_tau": ("cads", "tau"),
    "cads_noise": ("cads", "noise"),
    "cads_psi": ("cads", "psi"),
    "apg_eta": ("apg", "eta"),
    "apg_rescale": ("apg", "rescale"),
    "apg_momentum": ("apg", "momentum"),
    "cfg_zero_init": ("cfg_zero_star", "zero_init"),
    "fdg_low": ("fdg", "low"),
    "mambo_alpha": ("mambo", "alpha"),
}


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    sample = raw.get("sample")
    if isinstance(sample, dict):
        for old, (rule, key) in GUIDER_KEYS.items():
            if old in sample:
                guiders = sample.setdefault("guiders", {})
                if isinstance(guiders, dict) and isinstance(guiders.setdefault(rule, {}), dict):
                    guiders[rule][key] = sample.pop(old)
    return _grammar(raw)


def _grammar(raw: dict[str, Any]) -> dict[str, Any]:
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
