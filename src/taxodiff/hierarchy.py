"""The shared concept: a tree of classes with conditional probabilities and z1 embeddings.

A :class:`Hierarchy` is a rooted tree. Every non-root node has a probability conditional on its parent;
the leaves are the finest classes ("subtypes", z1) and each leaf names its label in the data: the shape that
draws it (synthetic images) or a class of a labelled data set (digits: '0'..'9'). The coarse condition z2 is
the level ``cond_level`` (1 = children of the root, the "categories").

Written as data (YAML or a dict), as in the config::

    {animal: {dog: 0.5, cat: 0.5}, vehicle: {car: 0.7, truck: 0.3}}

A node is a number (a leaf with that probability, its name is its label), a mapping of children
(probability uniform among its siblings unless they all state one), or an explicit mapping
``{p: 0.6, children: {...}}`` / ``{p: 0.6, label: star}`` (``shape`` is a synonym of ``label``). Trees may be
deeper than two levels.

This module imports neither torch nor numpy, so configs are validated instantly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taxodiff.errors import TaxodiffError

PROB_TOL = 1e-6


@dataclass(frozen=True)
class Node:
    name: str
    prob: float  # p(node | parent)
    children: tuple[Node, ...] = ()
    label: str | None = None  # leaves only: the shape or data class the leaf stands for

    @property
    def is_leaf(self) -> bool:
        return not self.children


@dataclass(frozen=True)
class Hierarchy:
    """A validated class tree with z1 anchors. Build with :meth:`from_spec`."""

    root: Node
    cond_level: int = 1
    embed_dim: int = 2
    anchor_seed: int = 0
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_spec(
        cls,
        spec: Mapping[str, Any],
        *,
        cond_level: int = 1,
        embed_dim: int = 2,
        anchor_seed: int = 0,
        labels: tuple[str, ...] | None = None,
        label_word: str = "shape",
        weights: Mapping[str, float] | None = None,
    ) -> Hierarchy:
        """Parse and check a spec. ``labels`` (if given) are the leaf labels the data has, ``label_word`` what a
        label is called in messages ("shape", "class"); unstated sibling probabilities are uniform, or, given
        ``weights`` (label -> data frequency), proportional to the frequencies of their leaves."""
        if not isinstance(spec, Mapping) or not spec:
            raise TaxodiffError(f"hierarchy must be a non-empty mapping of categories, got {spec!r}")
        root = Node("root", 1.0, _parse_children(spec, "hierarchy", _Labels(labels, label_word, weights)))
        h = cls(root, cond_level, embed_dim, anchor_seed)
        if isinstance(embed_dim, bool) or not isinstance(embed_dim, int) or embed_dim < 2:
            raise TaxodiffError(f"hierarchy embed_dim={embed_dim} is invalid: allowed is an integer >= 2")
        if not 1 <= cond_level < h.depth:
            raise TaxodiffError(
                f"cond_level={cond_level} is invalid for a tree of depth {h.depth}: allowed is 1..{h.depth - 1}"
            )
        _ = h.categories  # raises if a leaf lies above the condition level
        names = [n.name for n in h.leaves]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TaxodiffError(f"hierarchy leaf names must be unique, repeated: {', '.join(dupes)}")
        drawn = [n.label for n in h.leaves]
        dupes = sorted({s for s in drawn if drawn.count(s) > 1})
        if labels is not None and dupes:
            raise TaxodiffError(
                f"each leaf must be a different {label_word}, listed twice: {', '.join(map(str, dupes))}"
            )
        return h

    def to_spec(self) -> dict[str, Any]:
        return {c.name: _node_spec(c) for c in self.root.children}

    # -- structure ----------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return _depth(self.root)

    @property
    def leaves(self) -> list[Node]:
        return self._memo("leaves", lambda: list(_leaves(self.root)))

    @property
    def categories(self) -> list[Node]:
        """Nodes at ``cond_level``: the coarse condition z2."""
        return self._memo("categories", lambda: list(_at_depth(self.root, self.cond_level)))

    @property
    def leaf_names(self) -> list[str]:
        return [n.name for n in self.leaves]

    @property
    def leaf_labels(self) -> list[str]:
        """The data label (shape or class) of every leaf."""
        return [n.label or n.name for n in self.leaves]

    @property
    def category_names(self) -> list[str]:
        return [n.name for n in self.categories]

    @property
    def num_leaves(self) -> int:
        return len(self.leaves)

    @property
    def num_categories(self) -> int:
        return len(self.categories)

    def leaf_category(self) -> list[int]:
        """Index of the z2 ancestor of every leaf."""

        def build() -> list[int]:
            out: list[int] = []
            for ci, cat in enumerate(self.categories):
                out.extend([ci] * len(list(_leaves(cat))))
            return out

        return self._memo("leaf_category", build)

    def leaves_of(self, category: int) -> list[int]:
        return [i for i, c in enumerate(self.leaf_category()) if c == category]

    # -- probabilities ------------------------------------------------------------------------------
    def leaf_probs(self) -> list[float]:
        """Marginal p(z1) of every leaf."""
        return self._memo("leaf_probs", lambda: list(_leaf_marginals(self.root, 1.0)))

    def category_probs(self) -> list[float]:
        cat = self.leaf_category()
        out = [0.0] * self.num_categories
        for p, c in zip(self.leaf_probs(), cat, strict=True):
            out[c] += p
        return out

    def conditional(self, category: int) -> list[float]:
        """p(z1 | z2 = category) over that category's leaves, in the order of :meth:`leaves_of`."""
        idx = self.leaves_of(category)
        probs = self.leaf_probs()
        total = sum(probs[i] for i in idx)
        return [probs[i] / total for i in idx]

    def entropy(self) -> float:
        """H(z1 | z2) in nats."""
        return sum(
            pc * -sum(p * math.log(p) for p in self.conditional(c) if p > 0)
            for c, pc in enumerate(self.category_probs())
        )

    # -- embeddings ---------------------------------------------------------------------------------
    def anchors(self) -> list[list[float]]:
        """L2-normalised z1 anchor of every leaf, shape (num_leaves, embed_dim).

        In 2-D each category owns an equal arc of the circle and its leaves are spread evenly inside it
        (2 categories of 2 subtypes: 60, 120, 240, 300 degrees, as in the seed). In more dimensions a
        category has a random unit centre and its leaves sit around it (seeded by ``anchor_seed``).
        """
        return self._memo("anchors", self._make_anchors)

    def _make_anchors(self) -> list[list[float]]:
        k = self.num_categories
        if self.embed_dim == 2:
            out = []
            for c in range(k):
                n = len(self.leaves_of(c))
                arc = 2 * math.pi / k
                for j in range(n):
                    a = c * arc + (j + 1) * arc / (n + 1)
                    out.append([math.cos(a), math.sin(a)])
            return out
        rng = random.Random(self.anchor_seed)
        out = []
        for c in range(k):
            centre = _unit([rng.gauss(0, 1) for _ in range(self.embed_dim)])
            for _ in self.leaves_of(c):
                offset = _unit([rng.gauss(0, 1) for _ in range(self.embed_dim)])
                out.append(_unit([a + 0.6 * b for a, b in zip(centre, offset, strict=True)]))
        return out

    def _memo(self, key: str, fn: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def describe(self) -> str:
        lines = []
        for c, cat in enumerate(self.categories):
            parts = [
                f"{self.leaf_names[i]} {p:.2f}" for i, p in zip(self.leaves_of(c), self.conditional(c), strict=True)
            ]
            lines.append(f"{cat.name} (p={self.category_probs()[c]:.2f}): " + ", ".join(parts))
        return "\n".join(lines)


# -- parsing ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Labels:
    allowed: tuple[str, ...] | None  # the labels the data has (None: anything)
    word: str  # what a label is called in messages
    weights: Mapping[str, float] | None = None  # data frequency of each label, for unstated probabilities


LEAF_KEYS = ("p", "children", "label", "shape")


def _parse_children(spec: Any, where: str, labels: _Labels) -> tuple[Node, ...]:
    """Parse a mapping (or a list of leaf names) of children; returns nodes with their sibling probabilities."""
    spec = _as_mapping(spec, where)
    entries: list[tuple[str, float | None, Node]] = []
    for name, value in spec.items():
        name = str(name)
        p, node = _parse_node(name, value, f"{where}.{name}", labels)
        entries.append((name, p, node))
    probs = _sibling_probs(entries, where, labels)
    return tuple(Node(n.name, p, n.children, n.label) for (_, _, n), p in zip(entries, probs, strict=True))


def _as_mapping(spec: Any, where: str) -> Mapping[str, Any]:
    if isinstance(spec, list):  # leaf names, probabilities unstated
        names = [str(x) for x in spec]
        twice = sorted({x for x in names if names.count(x) > 1})
        if twice:
            raise TaxodiffError(f"{where} lists {', '.join(map(repr, twice))} twice: each child appears once")
        spec = {x: {"label": x} for x in names}
    if not isinstance(spec, Mapping) or not spec:
        raise TaxodiffError(f"{where} is empty: every category needs at least one subtype")
    return spec


def _parse_node(name: str, value: Any, where: str, labels: _Labels) -> tuple[float | None, Node]:
    """(stated probability or None, the node with a placeholder probability)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Mapping, list)):
        raise TaxodiffError(f"{where} = {value!r} is invalid: allowed is a probability or a mapping of children")
    if isinstance(value, (int, float)):
        return float(value), _leaf(name, name, where, labels)
    if isinstance(value, list) or not any(k in value for k in LEAF_KEYS):
        return None, Node(name, 1.0, _parse_children(value, where, labels))
    extra = set(map(str, value)) - set(LEAF_KEYS)
    if extra:
        raise TaxodiffError(f"{where} has unknown keys {sorted(extra)}: allowed are {', '.join(LEAF_KEYS)}")
    p = value.get("p")
    if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float))):
        raise TaxodiffError(f"{where}.p = {p!r} is invalid: allowed is a number in (0, 1]")
    p = None if p is None else float(p)
    if "children" in value:
        return p, Node(name, 1.0, _parse_children(value["children"], where, labels))
    return p, _leaf(name, str(value.get("label", value.get("shape", name))), where, labels)


def _leaf(name: str, label: str, where: str, labels: _Labels) -> Node:
    if labels.allowed is not None and label not in labels.allowed:
        raise TaxodiffError(
            f"{where}: unknown {labels.word} {label!r}; allowed {_plural(labels.word)}: {', '.join(labels.allowed)}"
        )
    return Node(name, 1.0, (), label)


def _plural(word: str) -> str:
    return word + ("es" if word.endswith("s") else "s")


def _sibling_probs(entries: list[tuple[str, float | None, Node]], where: str, labels: _Labels) -> list[float]:
    given = [p for _, p, _ in entries]
    if all(p is None for p in given):
        if labels.weights is None:
            return [1.0 / len(entries)] * len(entries)
        mass = [sum(labels.weights.get(leaf.label or leaf.name, 0.0) for leaf in _leaves(n)) for _, _, n in entries]
        total = sum(mass)
        return [m / total for m in mass] if total > 0 else [1.0 / len(entries)] * len(entries)
    if any(p is None for p in given):
        raise TaxodiffError(f"{where}: give a probability to every child or to none (then they are uniform)")
    for name, p, _ in entries:
        if not 0.0 < p <= 1.0:  # type: ignore[operator]
            raise TaxodiffError(f"{where}.{name} has probability {p}: allowed is a number in (0, 1]")
    total = sum(given)  # type: ignore[arg-type]
    if abs(total - 1.0) > PROB_TOL:
        raise TaxodiffError(f"{where}: probabilities sum to {total:.6g}, they must sum to 1")
    return [float(p) for p in given]  # type: ignore[arg-type]


def _node_spec(node: Node) -> Any:
    if node.is_leaf:
        return node.prob if node.label == node.name else {"p": node.prob, "label": node.label}
    return {"p": node.prob, "children": {c.name: _node_spec(c) for c in node.children}}


def _depth(node: Node) -> int:
    return 0 if node.is_leaf else 1 + max(_depth(c) for c in node.children)


def _leaves(node: Node):  # type: ignore[no-untyped-def]
    if node.is_leaf:
        yield node
    for c in node.children:
        yield from _leaves(c)


def _at_depth(node: Node, depth: int):  # type: ignore[no-untyped-def]
    if depth == 0:
        yield node
        return
    if node.is_leaf:
        raise TaxodiffError(
            f"leaf {node.name!r} is shallower than cond_level: every leaf must lie below the condition level"
        )
    for c in node.children:
        yield from _at_depth(c, depth - 1)


def _leaf_marginals(node: Node, mass: float):  # type: ignore[no-untyped-def]
    if node.is_leaf:
        yield mass
    for c in node.children:
        yield from _leaf_marginals(c, mass * c.prob)


def _unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]
