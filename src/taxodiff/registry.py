"""Named plug-ins loaded on demand: model families, data sources, studies.

Each registry maps a name to ``"module:attribute"``; the module is imported only when the entry is used, so
listing names (CLI choices, config checks) imports no torch. Adding an entry is one line in the module that
owns the registry, or :meth:`Registry.register` at run time (a plug-in, a test).
"""

from __future__ import annotations

import importlib
from typing import Any, Generic, TypeVar

from taxodiff.errors import TaxodiffError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, key: str, entries: dict[str, str]) -> None:
        self.what, self.key = what, key  # e.g. "model family", "model"
        self._targets = dict(entries)
        self._loaded: dict[str, T] = {}
        self._builtin = dict(entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._targets)

    def get(self, name: str) -> T:
        """The entry called ``name``; one line naming the allowed ones if there is none."""
        if name not in self._targets:
            raise TaxodiffError(f"{self.key} = {name!r} is invalid: allowed are {', '.join(self._targets)}")
        if name not in self._loaded:
            module, attr = self._targets[name].split(":")
            obj: Any = getattr(importlib.import_module(module), attr)
            if getattr(obj, "name", name) != name:
                raise TypeError(f"{self._targets[name]} is called {obj.name!r}, registered as {name!r}")
            self._loaded[name] = obj
        return self._loaded[name]

    def all(self) -> list[T]:
        return [self.get(n) for n in self._targets]

    def register(self, name: str, target: str | T) -> None:
        """Add an entry: ``"module:attribute"``, or the object itself."""
        self._targets[name] = target if isinstance(target, str) else f"<object {name}>"
        if isinstance(target, str):
            self._loaded.pop(name, None)  # loaded again from the new target
        else:
            self._loaded[name] = target

    def added(self) -> dict[str, str | T]:
        """The entries registered at run time, each as :meth:`register` took it (to register them again in
        another process)."""
        out: dict[str, str | T] = {}
        for name, target in self._targets.items():
            if self._builtin.get(name) != target:
                out[name] = self._loaded[name] if target.startswith("<object ") else target
        return out

    def unregister(self, name: str) -> None:
        self._targets.pop(name, None)
        self._loaded.pop(name, None)
