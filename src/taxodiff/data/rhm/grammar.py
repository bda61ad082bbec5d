"""The Random Hierarchy Model (Cagnetta et al. 2024; Favero, Sclocchi et al. 2025): a random context-free grammar.

A root class (one of n) rewrites as an s-tuple of level-1 symbols through one of m productions; every
symbol (one of v) at level 1..L-1 rewrites the same way into s symbols of the level below. After L levels
the s^L leaves are the visible sequence. Each level's productions are distinct s-tuples drawn without
replacement (n*m at the root, v*m below), so every tuple has at most one parent and a sequence has at
most one parse: the grammar is unambiguous. Needs n*m <= v^s and m <= v^(s-1).

Levels are numbered from the root: level 0 holds the class, level L the s^L tokens. ``rules[k]`` rewrites
level k into level k+1: shape (n, m, s) for k = 0, (v, m, s) below. A generating tree is the class plus
one production index in [0, m) at every internal node; trees and valid sequences are in bijection, and
there are n * m^((s^L - 1)/(s - 1)) of them, all equally likely. ``index -> tree`` is a mixed-radix code
(class, then the production of every internal node in breadth-first order), so sampling without
replacement is drawing distinct integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from taxodiff.data.rhm.spec import GrammarSpec
from taxodiff.errors import TaxodiffError

ENUMERATE_BELOW = 10**7  # below this many valid sequences, draw indices with numpy's exact choice()


@dataclass
class Trees:
    """Generating trees of a batch: ``symbols[k]`` (B, s^k) for k = 0..L, ``choices[k]`` (B, s^k) for k < L."""

    symbols: list[Tensor]
    choices: list[Tensor]

    @property
    def tokens(self) -> Tensor:
        return self.symbols[-1]

    @property
    def classes(self) -> Tensor:
        return self.symbols[0][:, 0]


class Grammar:
    """The rules of one RHM, drawn from ``spec.seed_rules``."""

    def __init__(self, spec: GrammarSpec) -> None:
        spec.check()
        self.spec = spec
        v, n, m, s, L = spec.v, spec.n, spec.m, spec.s, spec.L
        rng = np.random.default_rng(spec.seed_rules)
        self.rules: list[Tensor] = []
        for k in range(L):
            parents = n if k == 0 else v
            codes = rng.choice(v**s, size=parents * m, replace=False)
            self.rules.append(torch.as_tensor(_decode_tuples(codes, v, s).reshape(parents, m, s)))

    # -- sizes ------------------------------------------------------------------------------------------
    @property
    def length(self) -> int:
        return self.spec.s**self.spec.L

    @property
    def internal_nodes(self) -> int:
        s, L = self.spec.s, self.spec.L
        return (s**L - 1) // (s - 1)

    @property
    def num_sequences(self) -> int:
        """Number of valid sequences: n * m^((s^L - 1)/(s - 1)) (an exact Python integer)."""
        return self.spec.n * self.spec.m**self.internal_nodes

    def chance_validity(self, level: int) -> float:
        """Probability that a uniformly random subtree spanning ``level`` levels (s^level tokens) is valid.

        P_1 = m / v^(s-1) (a random s-tuple is one of the v*m productions), P_k = P_1 * P_(k-1)^s; the
        subtree under the root uses the root's n*m productions instead: (n*m / v^s) * P_(L-1)^s.
        """
        v, n, m, s, L = self.spec.v, self.spec.n, self.spec.m, self.spec.s, self.spec.L
        if not 1 <= level <= L:
            raise TaxodiffError(f"level={level} is invalid: allowed is 1..{L}")
        p = 1.0
        for k in range(1, level + 1):
            top = (n * m if k == L else v * m) / v**s
            p = top * p**s
        return p

    # -- trees and sequences ----------------------------------------------------------------------------
    def trees_from_indices(self, index: np.ndarray) -> Trees:
        """The generating trees of the given indices (int64 array, each in [0, num_sequences))."""
        n, m = self.spec.n, self.spec.m
        q = np.asarray(index, dtype=object if self.num_sequences >= 2**63 else np.int64)
        digits = [q % n]
        q = q // n
        for _ in range(self.internal_nodes):
            digits.append(q % m)
            q = q // m
        cols = np.stack([np.asarray(d, dtype=np.int64) for d in digits], axis=1)
        return self.trees_from_digits(torch.as_tensor(cols))

    def trees_from_digits(self, digits: Tensor) -> Trees:
        """Trees from (B, 1 + internal_nodes) digits: the class, then productions in breadth-first order."""
        s = self.spec.s
        symbols, choices = [digits[:, :1]], []
        offset = 1
        for k, table in enumerate(self.rules):
            width = s**k
            r = digits[:, offset : offset + width]
            offset += width
            choices.append(r)
            children = table.to(digits.device)[symbols[-1], r]  # (B, width, s)
            symbols.append(children.reshape(len(digits), width * s))
        return Trees(symbols, choices)

    def sample(self, count: int, seed: int, replace: bool = False) -> Trees:
        """``count`` valid sequences, uniform over the grammar, with or without replacement."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise TaxodiffError(f"number of sequences {count!r} is invalid: allowed is an integer >= 0")
        total = self.num_sequences
        if not replace and count > total:
            raise TaxodiffError(
                f"cannot draw {count} distinct sequences: this grammar has only {total} "
                "(allowed: count <= that number, or sampling with replacement)"
            )
        rng = np.random.default_rng(seed)
        if total < ENUMERATE_BELOW:
            return self.trees_from_indices(rng.choice(total, size=count, replace=replace))
        return self.trees_from_digits(torch.as_tensor(self._random_digits(count, rng, replace)))

    def _random_digits(self, count: int, rng: np.random.Generator, replace: bool) -> np.ndarray:
        n, m = self.spec.n, self.spec.m

        def draw(k: int) -> np.ndarray:
            return np.concatenate([rng.integers(0, n, (k, 1)), rng.integers(0, m, (k, self.internal_nodes))], axis=1)

        rows = draw(count)
        if replace:
            return rows
        _, first = np.unique(rows, axis=0, return_index=True)
        rows = rows[np.sort(first)]
        while len(rows) < count:  # collisions are rare when the grammar is this large: top up
            more = np.concatenate([rows, draw(count - len(rows))])
            _, first = np.unique(more, axis=0, return_index=True)
            rows = more[np.sort(first)]
        return rows

    def indices_of(self, trees: Trees) -> list[int]:
        """Inverse of :meth:`trees_from_indices` (exact Python integers)."""
        n, m = self.spec.n, self.spec.m
        digits = torch.cat([trees.symbols[0], *trees.choices], dim=1).tolist()
        out = []
        for row in digits:
            idx = 0
            for d in reversed(row[1:]):
                idx = idx * m + d
            out.append(idx * n + row[0])
        return out

    def reachable(self, level: int) -> Tensor:
        """Which symbols can occur at ``level`` (0 = the classes): a boolean vector (n or v,)."""
        mask = torch.ones(self.spec.n, dtype=torch.bool)
        for k in range(level):
            nxt = torch.zeros(self.spec.v, dtype=torch.bool)
            nxt[self.rules[k][mask].flatten()] = True
            mask = nxt
        return mask

    # -- parsing ----------------------------------------------------------------------------------------
    @cached_property
    def _inverse(self) -> list[tuple[Tensor, Tensor]]:
        """Per level k: (parent symbol, production index) of every s-tuple code, -1 where none."""
        v, s = self.spec.v, self.spec.s
        out = []
        for table in self.rules:
            parent = torch.full((v**s,), -1, dtype=torch.long)
            rule = torch.full((v**s,), -1, dtype=torch.long)
            parents, m, _ = table.shape
            codes = _encode_tuples(table.reshape(-1, s), v)
            parent[codes] = torch.arange(parents).repeat_interleave(m)
            rule[codes] = torch.arange(m).repeat(parents)
            out.append((parent, rule))
        return out

    def parse(self, tokens: Tensor) -> Trees:
        """Bottom-up parse of (B, s^L) tokens; symbols and choices are -1 wherever a subtree is invalid."""
        v, s = self.spec.v, self.spec.s
        if tokens.ndim != 2 or tokens.shape[1] != self.length:
            raise TaxodiffError(
                f"tokens of shape {tuple(tokens.shape)} do not fit this grammar: need (B, {self.length})"
            )
        symbols, choices = [tokens.long()], []
        for k in reversed(range(self.spec.L)):
            child = symbols[0]
            groups = child.reshape(len(child), -1, s)
            bad = (groups < 0).any(dim=2)
            codes = _encode_tuples(groups.clamp(min=0), v)
            parent, rule = (t.to(tokens.device) for t in self._inverse[k])
            symbols.insert(0, torch.where(bad, -1, parent[codes]))
            choices.insert(0, torch.where(bad, -1, rule[codes]))
        return Trees(symbols, choices)

    def validity(self, tokens: Tensor) -> dict[str, list[float]]:
        """Validity of each sequence at every depth.

        ``subtrees[l-1]``: share of subtrees spanning l levels that are valid (chance P_l);
        ``sequences[l-1]``: share of sequences whose every such subtree is valid; l = L is the whole sequence.
        """
        L = self.spec.L
        parsed = self.parse(tokens)
        subtrees, sequences = [], []
        for depth in range(1, L + 1):
            ok = parsed.symbols[L - depth] >= 0  # (B, s^(L-depth))
            subtrees.append(float(ok.float().mean()) if ok.numel() else 0.0)
            sequences.append(float(ok.all(dim=1).float().mean()) if len(ok) else 0.0)
        return {"subtrees": subtrees, "sequences": sequences}

    def hierarchy(self):  # type: ignore[no-untyped-def]
        """The grammar's top two levels as the package's class tree: classes, each with its m root productions
        (uniform). Generated (class, production) pairs are scored like image subtypes (coverage, KL)."""
        from taxodiff.hierarchy import Hierarchy

        n, m = self.spec.n, self.spec.m
        return Hierarchy.from_spec({f"class{c}": {f"class{c}.rule{r}": 1.0 / m for r in range(m)} for c in range(n)})

    def describe(self) -> str:
        sp = self.spec
        return (
            f"RHM v={sp.v} n={sp.n} m={sp.m} s={sp.s} L={sp.L} (rules seed {sp.seed_rules}): "
            f"{self.length} tokens, {self.num_sequences:,} valid sequences"
        )


def one_hot(tokens: Tensor, v: int) -> Tensor:
    """(B, N) symbols -> (B, v, N) float one-hot (channels first, as the 1-D networks take them)."""
    return torch.nn.functional.one_hot(tokens.long(), v).permute(0, 2, 1).float()


def _decode_tuples(codes: np.ndarray, v: int, s: int) -> np.ndarray:
    """Base-v codes -> (len, s) tuples, most significant symbol first."""
    out = np.zeros((len(codes), s), dtype=np.int64)
    c = np.asarray(codes, dtype=np.int64)
    for j in reversed(range(s)):
        out[:, j] = c % v
        c = c // v
    return out


def _encode_tuples(tuples: Tensor, v: int) -> Tensor:
    s = tuples.shape[-1]
    weights = torch.tensor([v ** (s - 1 - j) for j in range(s)], device=tuples.device)
    return (tuples.long() * weights).sum(-1)
