"""From a nested mapping (a YAML file, dotted overrides) to a checked :class:`RunConfig`.

The family (``model``) and the data source (``data.source``) are chosen first; they decide the layout of the
other sections. Keys that only a sibling family defines (one taking the same data kind: ``net.prior_hidden``
given to the flat model) are set aside, not refused, so that one file configures every family of a
comparison; they are kept (``RunConfig.aside``) for :func:`for_family`. Anything else unknown is refused with
one line. This module imports neither torch nor numpy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taxodiff.config import legacy
from taxodiff.config.fields import check_rules
from taxodiff.config.loader import merge, nest, overlay, read_yaml, to_dict
from taxodiff.config.schema import RunConfig, TrainConfig
from taxodiff.errors import TaxodiffError


def load(
    path: str | Path | None, overrides: Mapping[str, Any] | None = None, under: Mapping[str, Any] | None = None
) -> RunConfig:
    """A YAML file (None: the defaults) with dotted ``overrides`` ({"train.steps": 10}) on top.

    ``under``: dotted values that replace the defaults but give way to the file and the overrides (a preset);
    those the chosen family and source do not have are dropped."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_yaml(path)
    cfg = resolve(nest(raw, dict(overrides or {})), under)
    for key in overrides or {}:  # a file may hold a sibling family's keys; an explicit override may not
        node: Any = cfg.aside
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            raise TaxodiffError(
                f"{key} is not a setting of the {cfg.model!r} model family: see `taxodiff train --model {cfg.model} "
                "--dry-run` for its keys"
            )
    return cfg


def resolve(raw: Mapping[str, Any], under: Mapping[str, Any] | None = None) -> RunConfig:
    """The checked config for a nested mapping of (possibly partial) values."""
    raw = legacy.upgrade(merge({}, raw))
    preset = nest({}, dict(under or {}))
    family, source = _choose(merge(merge({}, {k: v for k, v in preset.items() if k in ("model", "data")}), raw))
    base = RunConfig(
        model=family.name,
        data=source.section(),
        net=family.sections["net"](),
        diffusion=family.sections["diffusion"](),
        train=family.sections.get("train", TrainConfig)(),
        sample=family.sections["sample"](),
        eval=source.eval_section(),
    )
    base, _ = overlay(base, nest({}, family.defaults))
    if under:
        base, _ = overlay(base, _known(preset, to_dict(base)))
    cfg, aside = overlay(base, raw, "", _sibling_keys(family))
    cfg = dataclasses.replace(cfg, aside=aside, data=source.normalise(cfg.data))
    if source.own_hierarchy and cfg.hierarchy is not None:
        raise TaxodiffError(f"hierarchy: data.source = {source.name!r} has its own class tree; remove the hierarchy")
    if cfg.hierarchy is None and not source.own_hierarchy:
        cfg = dataclasses.replace(cfg, hierarchy=source.default_hierarchy(cfg.data))
    check(cfg)
    return cfg


def with_overrides(cfg: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """``cfg`` with dotted overrides applied, checked (keys set aside for sibling families are kept)."""
    return resolve(nest(merge(to_dict(cfg), cfg.aside), dict(overrides)))


def for_family(cfg: RunConfig, family: str) -> RunConfig:
    """The same config for another family taking the same data (what one family set aside comes back)."""
    return with_overrides(cfg, {"model": family})


SHARED = ("hierarchy", "cond_level", "embed_dim", "seed", "device", "parent", "data", "eval")  # not a family's


def changed(cfg: RunConfig) -> dict[str, Any]:
    """The config as the values it chose: its data, class tree and other keys no family owns, and of the family's
    sections (net, diffusion, train, sample) only what differs from that family's defaults, with the keys set
    aside for sibling families. Resolved for another family (``{**changed(cfg), "model": other}``) it gives that
    family's own defaults where this config chose nothing (:func:`for_family` keeps every value instead)."""
    d = to_dict(cfg)
    shared = {k: d[k] for k in SHARED if d.get(k) is not None}
    base = to_dict(resolve({"model": cfg.model, **shared}))
    return merge(merge(shared, _diff(d, base)), cfg.aside)


def _diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in a.items():
        if isinstance(v, Mapping) and isinstance(b.get(k), Mapping) and k != "hierarchy":
            sub = _diff(v, b[k])
            if sub:
                out[k] = sub
        elif k not in b or b[k] != v:
            out[k] = v
    return out


def check(cfg: RunConfig) -> None:
    """Raise TaxodiffError naming the first invalid value."""
    from taxodiff.data import get_source
    from taxodiff.families import get_family
    from taxodiff.hierarchy import Hierarchy

    check_rules(cfg)
    source = get_source(cfg.data.source)
    if not source.own_hierarchy:
        Hierarchy.from_spec(
            cfg.hierarchy or {},
            cond_level=cfg.cond_level,
            embed_dim=cfg.embed_dim,
            labels=source.labels(cfg.data),
            label_word=source.label_word,
        )
    family = get_family(cfg.model)
    if family.uses_parent and not cfg.parent:
        raise TaxodiffError(f"parent is missing: the {family.name!r} family builds on a trained run; name its run dir")
    if cfg.parent and not (family.uses_parent or family.extends_parent):
        raise TaxodiffError(f"parent = {cfg.parent!r} is invalid: the {family.name!r} family builds on no parent run")
    source(cfg).check()
    family.check(cfg)


# -- choosing the family and the source ---------------------------------------------------------------------
def _choose(raw: Mapping[str, Any]) -> tuple[Any, Any]:
    from taxodiff.data import SOURCES, get_source
    from taxodiff.families import families_for, get_family

    name = raw.get("model")
    data = raw.get("data")
    src = data.get("source") if isinstance(data, Mapping) else None
    for key, value in (("model", name), ("data.source", src)):
        if value is not None and not isinstance(value, str):
            raise TaxodiffError(f"{key} = {value!r} is invalid: allowed is a name (a string)")
    family = get_family(name) if name is not None else None
    if src is None:
        kinds = family.data_kinds if family else None
        src = next(n for n in SOURCES.names() if kinds is None or get_source(n).kind in kinds)
    source = get_source(src)
    if family is None:
        takers = families_for(source.kind)
        if not takers:
            raise TaxodiffError(f"data.source = {src!r}: no model family takes {source.kind}")
        family = takers[0]
    if source.kind not in family.data_kinds:
        takers = ", ".join(f.name for f in families_for(source.kind))
        raise TaxodiffError(
            f"model = {family.name!r} does not take data.source = {src!r} ({source.kind}): allowed for it are {takers}"
        )
    return family, source


def _sibling_keys(family: Any) -> dict[str, Any]:
    """Keys only the sibling families (same data kinds) define, as a nested mapping of placeholders."""
    from taxodiff.families import families_for

    out: dict[str, Any] = {}
    mine = {
        s: {f.name for f in dataclasses.fields(_section(family, s))} for s in ("net", "diffusion", "train", "sample")
    }
    for kind in family.data_kinds:
        for other in families_for(kind):
            for s, names in mine.items():
                for f in dataclasses.fields(_section(other, s)):
                    if f.name not in names:
                        out.setdefault(s, {})[f.name] = True
    return out


def _section(family: Any, name: str) -> type:
    return family.sections.get(name, TrainConfig) if name == "train" else family.sections[name]


def _known(values: dict[str, Any], known: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a nested mapping whose keys exist in ``known`` (a config as a dict)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            continue
        if isinstance(value, Mapping) and isinstance(known[key], Mapping) and key != "hierarchy":
            out[key] = _known(dict(value), known[key])
        else:
            out[key] = value
    return out
