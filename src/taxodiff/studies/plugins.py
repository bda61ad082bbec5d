"""What a study's worker processes must register again: the model families and data sources this process
registered at run time (plug-ins). Workers are spawned, fresh interpreters that know only the built-in
entries; an entry reaches them by reference (its module and name), so it must be importable there: a class
at the top level of a module or of the script file that started the study (not one defined inside a
function, under ``if __name__ == "__main__":`` or in a notebook)."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Mapping
from typing import Any

from taxodiff.errors import TaxodiffError
from taxodiff.registry import Registry

Plugins = dict[str, dict[str, Any]]  # registry (its "what") -> the entries registered at run time


def registries() -> dict[str, Registry[Any]]:
    """The registries a study's job looks names up in."""
    from taxodiff.data import SOURCES
    from taxodiff.families import FAMILIES

    return {r.what: r for r in (FAMILIES, SOURCES)}


def collect(used: Mapping[str, set[str]]) -> Plugins:
    """This process's run-time entries that a worker can import, for the workers; one line (exit 2) if one
    that the study uses (``used``: registry -> names) cannot reach them. Unused ones that cannot are left out."""
    out: Plugins = {}
    for what, registry in registries().items():
        out[what] = {}
        for name, target in registry.added().items():
            if reaches_workers(target):
                out[what][name] = target
            elif name in used.get(what, set()):
                raise TaxodiffError(
                    f"study workers (--workers above 1) cannot take the {what} {name!r} registered at run time: "
                    "another process cannot import its class; allowed are one worker, or the class defined at the "
                    "top level of a module or script file"
                )
    return out


def install(plugins: Plugins) -> None:
    """Register ``plugins`` (from :func:`collect` in the main process) in this one."""
    known = registries()
    for what, entries in plugins.items():
        for name, target in entries.items():
            known[what].register(name, target)


def reaches_workers(target: Any) -> bool:
    """Whether a spawned process can find ``target`` (a ``"module:attribute"`` string always can): it pickles,
    by reference, and a ``__main__`` of its own is a file the process runs again (not a notebook)."""
    if isinstance(target, str):
        return True
    try:
        pickle.dumps(target)
    except Exception:  # noqa: BLE001 - any failure to pickle means it cannot be sent
        return False
    return getattr(target, "__module__", "") != "__main__" or hasattr(sys.modules["__main__"], "__file__")
