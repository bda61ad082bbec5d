"""A branched tree on a diffusion process's integer times, as the branched family trains and samples it.

A branch is (classes, t_start, t_end, head): the classes it serves over process times t_start < t <= t_end
(leaves start at 0, the root ends at T) and the network head that denoises there. A class's path is the chain
of branches holding it, from the root down. Classes are named (the class tree's leaf names), so a tree saved
with a run still reads right when a class is added and the leaf indices shift. Two branches may share a head:
adding a class splits the branch it joins at the join time, both parts keeping the old head.

This module imports neither torch nor numpy at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from taxodiff.errors import TaxodiffError

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.families.branched.discovery import Branch


@dataclass(frozen=True)
class Segment:
    classes: tuple[str, ...]
    t_start: int
    t_end: int
    head: int

    @property
    def length(self) -> int:
        return self.t_end - self.t_start


@dataclass(frozen=True)
class BranchedTree:
    T: int
    branches: tuple[Segment, ...]

    # -- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_discovery(cls, branches: Sequence[Branch], names: Sequence[str], T: int) -> BranchedTree:
        """Branches of :func:`taxodiff.families.branched.discovery.discover` (times in [0, 1]), on process times 0..T;
        one head per branch, the root's first."""
        order = sorted(branches, key=lambda b: (-b.t_end, -len(b.classes), b.classes))
        segs = [
            Segment(tuple(names[i] for i in b.classes), round(b.t_start * T), round(b.t_end * T), k)
            for k, b in enumerate(order)
        ]
        tree = cls(T, tuple(segs))
        tree.check()
        return tree

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BranchedTree:
        segs = tuple(
            Segment(tuple(b["classes"]), int(b["t_start"]), int(b["t_end"]), int(b["head"])) for b in data["branches"]
        )
        return cls(int(data["T"]), segs)

    def to_json(self) -> dict[str, Any]:
        return {
            "T": self.T,
            "branches": [
                {"classes": list(b.classes), "t_start": b.t_start, "t_end": b.t_end, "head": b.head}
                for b in self.branches
            ],
        }

    def check(self) -> None:
        """Every class's branches tile (0, T] without gaps, and each branch has positive length."""
        for b in self.branches:
            if b.length <= 0:
                raise TaxodiffError(f"branch {'+'.join(b.classes)} has no length ({b.t_start}..{b.t_end})")
        for name in self.classes:
            path = self.path(name)
            ends = [(b.t_start, b.t_end) for b in path]
            if (
                ends[0][1] != self.T
                or ends[-1][0] != 0
                or any(a[0] != b[1] for a, b in zip(ends, ends[1:], strict=False))
            ):
                raise TaxodiffError(f"the branches of class {name!r} do not tile 0..{self.T}: {ends}")

    # -- reading ----------------------------------------------------------------------------------------
    @property
    def classes(self) -> tuple[str, ...]:
        return max(self.branches, key=lambda b: (b.t_end, len(b.classes))).classes

    @property
    def heads(self) -> int:
        return max(b.head for b in self.branches) + 1

    def path(self, name: str) -> list[Segment]:
        """The branches holding class ``name``, from the root down."""
        if name not in self.classes:
            raise TaxodiffError(f"class {name!r} is not in the branched tree: allowed are {', '.join(self.classes)}")
        return sorted((b for b in self.branches if name in b.classes), key=lambda b: -b.t_end)

    def branch_at(self, name: str, t: int) -> Segment:
        """The branch of class ``name`` at process time t (t_start < t <= t_end; t = 0 is the leaf's)."""
        for b in self.path(name):
            if b.t_start < t <= b.t_end or (t == 0 and b.t_start == 0):
                return b
        raise ValueError(f"time {t} is outside 0..{self.T}")

    def head_table(self, names: Sequence[str]) -> Tensor:
        """(len(names), T + 1) long: the head that denoises class names[c] at process time t."""
        import torch

        table = torch.zeros(len(names), self.T + 1, dtype=torch.long)
        for c, name in enumerate(names):
            for b in self.path(name):
                table[c, b.t_start : b.t_end + 1] = b.head
            table[c, 0] = self.path(name)[-1].head
        return table

    def children(self, seg: Segment) -> list[Segment]:
        return [b for b in self.branches if b.t_end == seg.t_start and set(b.classes) <= set(seg.classes)]

    @property
    def root(self) -> Segment:
        return max(self.branches, key=lambda b: (b.t_end, len(b.classes)))

    def meet(self, a: str, b: str) -> int:
        """The process time where the paths of classes a and b part (their last shared branch's start)."""
        shared = [s for s in self.path(a) if b in s.classes]
        return shared[-1].t_start

    def total_length(self, names: Sequence[str] | None = None) -> float:
        """Sum of the lengths of the branches on the paths of ``names`` (default all), in units of T."""
        keep = set(names or self.classes)
        return sum(b.length for b in self.branches if keep & set(b.classes)) / self.T

    # -- sampling grids ---------------------------------------------------------------------------------
    def grid_steps(self, grid: Sequence[int], seg: Segment) -> list[int]:
        """The grid times a branch denoises from: t in (t_start, t_end]."""
        return [t for t in grid if seg.t_start < t <= seg.t_end]

    def check_grid(self, grid: Sequence[int], names: Sequence[str]) -> None:
        """Refuse a sampling grid in which a branch on the paths of ``names`` gets no step (the parts of a branch
        split where a class joined count as one: they share a head)."""
        from taxodiff.processes.base import even_grid

        missed = self.missed(grid, names)
        if missed:
            name, lo, hi = missed
            span = "+".join(self.branch_at(name, hi).classes)
            least = next((n for n in range(1, self.T + 1) if not self.missed(even_grid(n, self.T, 0), names)), self.T)
            raise TaxodiffError(
                f"branch {span} spans t {lo}..{hi}, shorter than the sampler's step (about "
                f"{self.T / max(len(grid) - 1, 1):.0f} of {self.T}): allowed are sample.steps that give every "
                f"branch a step (the fewest: {least}) or a larger net.branch_min_length"
            )

    def missed(self, grid: Sequence[int], names: Sequence[str]) -> tuple[str, int, int] | None:
        """The first (class, lo, hi) head span on the paths of ``names`` that ``grid`` gives no step, or None."""
        for name in names:
            for lo, hi in self.head_spans(name):
                if not any(lo < t <= hi for t in grid):
                    return name, lo, hi
        return None

    def head_spans(self, name: str) -> list[tuple[int, int]]:
        """The time spans of the heads along a class's path, from the root down."""
        spans: list[tuple[int, int, int]] = []
        for b in self.path(name):
            if spans and spans[-1][2] == b.head:
                spans[-1] = (b.t_start, spans[-1][1], b.head)
            else:
                spans.append((b.t_start, b.t_end, b.head))
        return [(lo, hi) for lo, hi, _ in spans]

    # -- continual learning -----------------------------------------------------------------------------
    def attach(self, name: str, near: str, t: int, head: int) -> BranchedTree:
        """The tree with a new class ``name`` whose leaf branch (0, t] has its own ``head`` and joins the path of
        class ``near`` at time t (the branch there is split at t, both parts keeping their head)."""
        if name in self.classes:
            raise TaxodiffError(f"class {name!r} is already in the branched tree")
        if not 0 < t < self.T:
            raise TaxodiffError(f"join time {t} is invalid: allowed is 0 < t < {self.T}")
        host = self.branch_at(near, t)
        out = []
        for b in self.branches:
            if b == host and b.t_start < t < b.t_end:
                out += [replace(b, t_end=t), replace(b, classes=(*b.classes, name), t_start=t)]
            elif b.t_start >= t and near in b.classes:
                out.append(replace(b, classes=(*b.classes, name)))
            else:
                out.append(b)
        out.append(Segment((name,), 0, t, head))
        tree = BranchedTree(self.T, tuple(out))
        tree.check()
        return tree
