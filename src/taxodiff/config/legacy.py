"""Configs written by earlier versions, upgraded on reading, so old files and old run directories keep working.

- A data source's own older layouts: its ``upgrade`` (the grammar source's section of taxodiff <= 0.1).
- Before guidance rules had sections of their own, their settings were fields of ``sample:``
  (``sample.cads_noise``); they are now ``sample.guiders.<rule>.<setting>`` (``sample.guiders.cads.noise``).
"""

from __future__ import annotations

from typing import Any

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
    from taxodiff.data import SOURCES

    for source in SOURCES.all():  # a source's own older layouts
        raw = source.upgrade(raw)
    return raw
