"""Command-line flags that set config keys, typed and checked by the config field they set.

A family declares its flags (``Family.flags``: flag -> (dotted key, help)); the CLI offers the union of the
registered families' flags (sample.* keys on sample and evaluate, the others on train), converts a flag's
text as YAML (``3`` a number, ``ddim`` a string) and checks it with the field's own type and rule, so a bad
value is refused before anything is read or trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from taxodiff.errors import TaxodiffError


def field_of(key: str) -> tuple[Any, Any] | None:
    """(type hint, dataclass field) of a dotted config key in any registered family's or source's sections."""
    from taxodiff.config.schema import RunConfig, TrainConfig
    from taxodiff.data import SOURCES
    from taxodiff.families import FAMILIES

    section, _, name = key.rpartition(".")
    classes: list[type] = []
    if not section:
        classes = [RunConfig]
    elif section in ("data", "eval"):
        classes = [getattr(s, "section" if section == "data" else "eval_section") for s in SOURCES.all()]
    else:
        classes = [f.sections.get(section, TrainConfig if section == "train" else object) for f in FAMILIES.all()]
    for cls in classes:
        if dataclasses.is_dataclass(cls):
            fields = {f.name: f for f in dataclasses.fields(cls)}
            if name in fields:
                return typing.get_type_hints(cls)[name], fields[name]
    return None


def value_type(key: str) -> Any:
    """An argparse ``type`` for a config key: YAML text, coerced and checked like the config would."""
    import yaml

    from taxodiff.config.fields import _check
    from taxodiff.config.loader import coerce

    found = field_of(key)

    def convert(text: str) -> Any:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        if found is None:
            return value
        hint, f = found
        try:
            value = coerce(value, hint, key)
            rule = f.metadata.get("rule")
            if rule is not None:
                _check(key, value, rule)
        except TaxodiffError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value

    convert.__name__ = key
    return convert


def key_value(text: str) -> tuple[str, Any]:
    """``--set train.steps=300`` -> ("train.steps", 300), the value read as YAML."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. train.steps=300)")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        return key.strip(), value


def family_flags(verb: str) -> dict[str, tuple[str, str]]:
    """Every registered family's flags for a verb: "train" (config keys) or "sample" (sample.* keys)."""
    from taxodiff.families import FAMILIES

    out: dict[str, tuple[str, str]] = {}
    for fam in FAMILIES.all():
        for flag, (key, text) in fam.flags.items():
            is_sample = key.startswith("sample.")
            if (verb == "sample") == is_sample:
                out.setdefault(flag, (key, text))
    return out
