"""Command-line flags that set config keys, typed and checked by the config field they set.

A family declares its flags (``Family.commands.flags``: flag -> (dotted key, help)); the CLI offers the union of the
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
    """(type hint, dataclass field) of a dotted config key in the first registered family's or source's
    sections that has it."""
    found = fields_of(key)
    return found[0] if found else None


def fields_of(key: str) -> list[tuple[Any, Any]]:
    """(type hint, dataclass field) of a dotted config key in every registered family's or source's sections
    that has it (families may give one key different rules: sample.request)."""
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
    out = []
    for cls in dict.fromkeys(classes):
        if dataclasses.is_dataclass(cls):
            fields = {f.name: f for f in dataclasses.fields(cls)}
            if name in fields:
                out.append((typing.get_type_hints(cls)[name], fields[name]))
    return out


def value_type(key: str) -> Any:
    """An argparse ``type`` for a config key: YAML text, coerced and checked like the config would."""
    import yaml

    from taxodiff.config.fields import _check
    from taxodiff.config.loader import coerce

    found = fields_of(key)

    def convert(text: str) -> Any:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        errors = []
        for hint, f in found:  # the value of any family that has the key (the run's family checks it again)
            try:
                out = coerce(value, hint, key)
                rule = f.metadata.get("rule")
                if rule is not None:
                    _check(key, out, rule)
                return out
            except TaxodiffError as e:
                errors.append(str(e))
        if errors:
            raise argparse.ArgumentTypeError(_merged(errors))
        return value

    convert.__name__ = key
    return convert


def _merged(errors: list[str]) -> str:
    """One message for a value every family refuses: the allowed values of all of them."""
    if len(errors) == 1:
        return errors[0]
    head, _, _ = errors[0].partition(": allowed")
    allowed = [e.partition(": allowed ")[2] for e in errors]
    return f"{head}: allowed " + "; or ".join(dict.fromkeys(a for a in allowed if a))


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
        for flag, (key, text) in fam.commands.flags.items():
            is_sample = key.startswith("sample.")
            if (verb == "sample") == is_sample:
                out.setdefault(flag, (key, text))
    return out
