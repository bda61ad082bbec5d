"""Reading and writing configs: YAML files, dotted overrides, the strict overlay onto frozen dataclasses.

A YAML mapping overrides any subset of a config's defaults. Unknown keys and values of the wrong type are
refused with one line naming the key and what is allowed. This module imports neither torch nor numpy.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taxodiff.errors import TaxodiffError

OPAQUE = ("hierarchy",)  # mappings taken whole, never merged key by key


def read_text(path: str | Path, what: str = "config file") -> str:
    """A text file's content, or one line saying why it cannot be read."""
    p = Path(path)
    if not p.exists():
        raise TaxodiffError(f"{what} {str(p)!r} does not exist")
    if p.is_dir():
        raise TaxodiffError(f"{what} {str(p)!r} is a directory, not a file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise TaxodiffError(f"{what} {str(p)!r} cannot be read ({e.strerror})") from None
    if b"\x00" in raw:
        raise TaxodiffError(f"{what} {str(p)!r} is a binary file, not text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TaxodiffError(f"{what} {str(p)!r} is not UTF-8 text") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping at the top of a YAML file ({} for an empty file). A key given twice in one mapping is an
    error (plain YAML keeps the last one silently)."""
    import yaml

    text = read_text(path)
    try:
        data = yaml.load(text, Loader=_strict_loader())  # noqa: S506 (a SafeLoader subclass)
    except _DuplicateKey as e:
        raise TaxodiffError(f"config file {str(path)!r}: {e}") from None
    except yaml.YAMLError as e:
        raise TaxodiffError(f"config file {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise TaxodiffError(f"config file {str(path)!r} is nested too deeply to be a config") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TaxodiffError(f"config file {str(path)!r} must hold a mapping at the top level")
    if _cyclic(data, ()):
        raise TaxodiffError(f"config file {str(path)!r} holds an alias that contains itself (&anchor ... *anchor)")
    return data


def _cyclic(node: Any, parents: tuple[int, ...]) -> bool:
    """Whether a loaded YAML structure contains itself (a recursive alias)."""
    if not isinstance(node, dict | list):
        return False
    if id(node) in parents:
        return True
    children = node.values() if isinstance(node, dict) else node
    return any(_cyclic(c, (*parents, id(node))) for c in children)


class _DuplicateKey(Exception):
    pass


def _strict_loader() -> Any:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise _DuplicateKey(f"key {key!r} appears twice in one mapping (line {line}): give it once")
                seen.add(key)
            return super().construct_mapping(node, deep)

    return StrictLoader


def nest(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Write dotted keys ({"train.steps": 10}) into the nested mapping ``data``; returns it."""
    for key, value in overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            child = node.get(p)
            if not isinstance(child, dict):
                child = node[p] = {}
            node = child
        node[leaf] = value
    return data


def merge(into: dict[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``data`` into ``into`` (sections key by key, the hierarchy whole); returns ``into``."""
    for key, value in data.items():
        if key not in OPAQUE and isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = _copy(value)
    return into


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def to_dict(cfg: Any) -> Any:
    """Plain nested dict (tuples as lists), ready for YAML or JSON; hidden fields (metadata hidden) left out."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if not f.metadata.get("hidden")}
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (tuple, list)):
        return [to_dict(v) for v in cfg]
    return cfg


def dump_yaml(cfg: Any) -> str:
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: value} of every leaf field."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out.update(flatten(v, f"{prefix}{f.name}."))
        elif not f.metadata.get("hidden"):
            out[f"{prefix}{f.name}"] = v
    return out


def overlay(obj: Any, data: Any, prefix: str = "", tolerate: Mapping[str, Any] | None = None) -> tuple[Any, dict]:
    """``obj`` (a dataclass) with the values of the mapping ``data``, coerced to the field types.

    Keys named in ``tolerate`` (a nested mapping of keys that other, sibling sections define) are set aside
    instead of refused; returns (new object, the set-aside keys as a nested mapping)."""
    if not isinstance(data, Mapping):
        raise TaxodiffError(f"config section {prefix.rstrip('.') or 'top'} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(obj) if not f.metadata.get("hidden")}
    hints = typing.get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    aside: dict[str, Any] = {}
    tolerate = tolerate or {}
    for key, value in data.items():
        key = str(key)
        name = f"{prefix}{key}"
        if key not in fields:
            if key in tolerate:
                aside[key] = value
                continue
            raise TaxodiffError(f"unknown config key {name!r}; allowed here: {', '.join(fields)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            sub = tolerate.get(key) if isinstance(tolerate.get(key), Mapping) else None
            changes[key], more = overlay(current, value, f"{name}.", sub)
            if more:
                aside[key] = more
        else:
            changes[key] = coerce(value, hints[key], name)
    return dataclasses.replace(obj, **changes), aside


def coerce(value: Any, hint: Any, name: str) -> Any:
    """``value`` checked against (and converted to) the type hint of the field ``name``."""
    origin = typing.get_origin(hint)
    if origin is types.UnionType or origin is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return coerce(value, args[0], name)
    if hint is bool:
        if not isinstance(value, bool):
            raise TaxodiffError(f"{name} = {value!r} is invalid: allowed is true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TaxodiffError(f"{name} = {value!r} is invalid: allowed is an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TaxodiffError(f"{name} = {value!r} is invalid: allowed is a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TaxodiffError(f"{name} = {value!r} is invalid: allowed is a string")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TaxodiffError(f"{name} = {value!r} is invalid: allowed is a list")
        return tuple(coerce(v, typing.get_args(hint)[0], name) for v in value)
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, Mapping):
            raise TaxodiffError(f"{name} must be a mapping, got {value!r}")
        return dict(value)
    return value
