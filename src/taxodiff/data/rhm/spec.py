"""The numbers that define a Random Hierarchy Model grammar, and the bounds they must respect. No torch."""

from __future__ import annotations

from dataclasses import dataclass

from taxodiff.errors import TaxodiffError


@dataclass(frozen=True)
class GrammarSpec:
    v: int = 8  # vocabulary size (symbols at every level below the root)
    n: int = 8  # classes (root symbols)
    m: int = 3  # synonyms: productions per symbol
    s: int = 2  # tuple size: children per node
    L: int = 3  # depth: the sequence has s^L tokens
    seed_rules: int = 0

    @property
    def num_sequences(self) -> int:
        """n * m^((s^L - 1)/(s - 1)): every valid sequence, an exact integer."""
        return self.n * self.m ** ((self.s**self.L - 1) // (self.s - 1))

    def check(self, prefix: str = "rhm.") -> None:
        for name in ("v", "n", "m", "s", "L"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TaxodiffError(f"{prefix}{name}={value!r} is invalid: allowed is a positive integer")
        v, n, m, s = self.v, self.n, self.m, self.s
        if s < 2:
            raise TaxodiffError(f"{prefix}s={s} is invalid: a tuple needs s >= 2 symbols")
        if m > v ** (s - 1):
            raise TaxodiffError(
                f"{prefix}m={m} is impossible with v={v}, s={s}: allowed is m <= v^(s-1) = {v ** (s - 1)}"
            )
        if n * m > v**s:
            raise TaxodiffError(
                f"rhm n*m={n * m} (n={n}, m={m}) is impossible with v={v}, s={s}: allowed is n*m <= v^s = {v**s}"
            )
