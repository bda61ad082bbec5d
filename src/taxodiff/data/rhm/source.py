"""The RHM as a data source: P training and held-out sequences drawn without replacement from one grammar.

The grammar's rules come from ``seed_rules``, which sequences are drawn from ``seed_sample``; the run's own
seed changes neither (so runs of several seeds learn the same data). The class tree is the grammar's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff import seeds
from taxodiff.config.fields import choice, nonneg, positive
from taxodiff.data.base import DataSource, TokenData
from taxodiff.data.rhm.spec import GrammarSpec
from taxodiff.errors import TaxodiffError
from taxodiff.evaluate.settings import ModeEval

if TYPE_CHECKING:
    from taxodiff.data.rhm.grammar import Grammar


@dataclass(frozen=True)
class RHMData:
    source: str = choice("rhm", ("rhm",))
    v: int = 8  # vocabulary size (symbols at every level below the root)
    n: int = 8  # classes (root symbols)
    m: int = 3  # synonyms: productions per symbol
    s: int = 2  # tuple size: children per node
    L: int = 3  # depth: the sequence has s^L tokens
    seed_rules: int = nonneg(0)  # which grammar
    n_train: int = positive(1024)  # P: training sequences, drawn without replacement
    n_test: int = positive(1024)  # held-out sequences (distinct from the training ones)
    seed_sample: int = nonneg(0)  # which sequences are drawn (the rules do not change)

    @property
    def spec(self) -> GrammarSpec:
        return GrammarSpec(self.v, self.n, self.m, self.s, self.L, self.seed_rules)


class RHMSource(DataSource):
    name: ClassVar[str] = "rhm"
    kind: ClassVar[str] = "sequences"
    summary: ClassVar[str] = "sequences of a Random Hierarchy Model grammar (a random context-free grammar)"
    section: ClassVar[type] = RHMData
    eval_section: ClassVar[type] = ModeEval
    own_hierarchy: ClassVar[bool] = True

    @classmethod
    def upgrade(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """Before data sources were sections of their own (taxodiff <= 0.1) the grammar was a top-level ``rhm:``
        section beside ``data:``; it is now ``data: {source: rhm, v, n, m, s, L, seed_rules, n_train, n_test,
        seed_sample}``, and the trainer's section then had a ``prior_lr`` (now a family's)."""
        grammar = raw.pop(cls.name, None)
        if grammar is None:
            return raw
        data = raw.get("data") or {}
        if not isinstance(grammar, Mapping) or not isinstance(data, Mapping):
            raise TaxodiffError(f"config sections {cls.name} and data must be mappings")
        if data.get("source", cls.name) != cls.name:
            raise TaxodiffError(
                f"an {cls.name}: section is a grammar, but data.source = {data['source']!r}: remove one"
            )
        raw["data"] = {"source": cls.name, **grammar, **{k: v for k, v in data.items() if k != "source"}}
        train = raw.get("train")
        if isinstance(train, dict):
            train.pop("prior_lr", None)
        return raw

    def check(self) -> None:
        d = self.data
        d.spec.check(prefix="data.")
        total = d.spec.num_sequences
        if d.n_train + d.n_test > total:
            raise TaxodiffError(
                f"data.n_train + data.n_test = {d.n_train + d.n_test} is more than this grammar's "
                f"{total:,} valid sequences: allowed is at most that many"
            )

    @cached_property
    def grammar(self) -> Grammar:
        from taxodiff.data.rhm.grammar import Grammar

        return Grammar(self.data.spec)

    @cached_property
    def hierarchy(self) -> Any:
        return self.grammar.hierarchy()

    def describe(self) -> str:
        return f"{self.grammar.describe()}; P = {self.data.n_train:,} training sequences"

    def sequences(self) -> tuple[Any, Any]:
        """(train, held-out) token tensors: n_train + n_test distinct sequences, drawn with the sampling seed."""
        d = self.data
        tokens = self.grammar.sample(d.n_train + d.n_test, seed=seeds.derive(d.seed_sample, "rhm-sequences")).tokens
        return tokens[: d.n_train], tokens[d.n_train :]

    def train_set(self) -> TokenData:
        return TokenData(self.sequences()[0])
