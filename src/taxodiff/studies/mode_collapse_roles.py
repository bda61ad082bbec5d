"""Who the mode-collapse study compares: the baseline family and every other family the comparisons take
(its contenders), each with its other guidance scale if it has one (the hierarchical prior's). Read from the
registry when the study runs and kept in the summary, so a report is rewritten from its summary alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COLOURS = ("C0", "C2", "C4", "C1", "C3", "C5", "C6", "C7", "C8", "C9")


@dataclass(frozen=True)
class Contender:
    name: str
    knob: str | None  # its other guidance scale (a sample key), if any
    knob_label: str  # what that knob guides ("prior")
    main_label: str  # what its main guidance scale guides ("decoder")

    @property
    def main_series(self) -> str:
        return f"{self.name}, {self.main_label} guided"

    @property
    def knob_series(self) -> str:
        return f"{self.name}, {self.knob_label} guided"

    def unguided(self) -> dict[str, Any]:
        """find() arguments selecting its rows with its other knob at 0."""
        return {self.knob: 0.0} if self.knob else {}


@dataclass(frozen=True)
class Roles:
    base: str
    contenders: tuple[Contender, ...]

    @classmethod
    def of(cls, summary: dict[str, Any]) -> Roles:
        f = summary["families"]
        return cls(f["baseline"], tuple(Contender(**c) for c in f["contenders"]))

    def contender(self, name: str) -> Contender | None:
        return next((c for c in self.contenders if c.name == name), None)

    def knobs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.knob for c in self.contenders if c.knob))

    def keys(self) -> tuple[str, ...]:
        """What tells groups of rows apart (rows of one group differ only by seed)."""
        return ("cell", "model", "guidance_method", "guidance", *self.knobs(), "steps")

    def styles(self) -> dict[str, tuple[str, str]]:
        """series -> (colour, line style), the same in every figure: the baseline solid, contenders dashed."""
        names = [f"{self.base}, cfg", f"{self.base}, interval", f"{self.base}, cads"]
        for c in self.contenders:
            names += [c.main_series] + ([c.knob_series] if c.knob else [])
        return {n: (COLOURS[i % len(COLOURS)], "-" if i < 3 else "--") for i, n in enumerate(names)}


def families_of(kind: str) -> dict[str, Any]:
    """The roles of the registry's families for data of ``kind`` (what the summary records)."""
    from taxodiff.families import compared

    fams = compared(kind)
    base = next(f for f in fams if f.roles.baseline)
    contenders = []
    for f in fams:
        if f is base:
            continue
        g = f.roles.guidance
        extra = [k for k in g if k != "guidance"]
        knob = extra[0] if extra else None
        contenders.append(
            {
                "name": f.name,
                "knob": knob,
                "knob_label": g.get(knob, "") if knob else "",
                "main_label": g.get("guidance", "image"),
            }
        )
    return {"baseline": base.name, "contenders": contenders, "summaries": {f.name: f.summary for f in fams}}
