"""The Random Hierarchy Model grammar and exact belief propagation, against brute-force enumeration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taxodiff.data.rhm.bp import BeliefPropagation, uniform_evidence
from taxodiff.data.rhm.grammar import Grammar, one_hot
from taxodiff.data.rhm.spec import GrammarSpec
from taxodiff.errors import TaxodiffError

SMALL = [  # grammars small enough to list (<= 10,000 sequences), n = v and n != v, s = 2 and 3
    GrammarSpec(v=4, n=2, m=2, s=2, L=3, seed_rules=1),
    GrammarSpec(v=3, n=3, m=2, s=3, L=2, seed_rules=2),
    GrammarSpec(v=5, n=5, m=2, s=2, L=2, seed_rules=0),
    GrammarSpec(v=4, n=1, m=3, s=2, L=2, seed_rules=3),
]


def _all_trees(g: Grammar):
    return g.trees_from_indices(np.arange(g.num_sequences))


@pytest.mark.parametrize("spec", SMALL)
def test_enumeration_counts_and_round_trips(spec):
    g = Grammar(spec)
    t = _all_trees(g)
    assert g.num_sequences == spec.n * spec.m ** ((spec.s**spec.L - 1) // (spec.s - 1))
    assert len({tuple(r) for r in t.tokens.tolist()}) == g.num_sequences  # distinct sequences: unambiguous
    assert g.indices_of(t) == list(range(g.num_sequences))
    parsed = g.parse(t.tokens)
    for a, b in zip([*parsed.symbols, *parsed.choices], [*t.symbols, *t.choices], strict=True):
        assert torch.equal(a, b)
    assert g.validity(t.tokens)["sequences"] == [1.0] * spec.L


def test_productions_are_distinct_and_in_range():
    g = Grammar(GrammarSpec(v=8, n=8, m=3, s=2, L=3))
    for k, table in enumerate(g.rules):
        assert table.shape == ((8 if k == 0 else 8), 3, 2)
        flat = [tuple(x) for x in table.reshape(-1, 2).tolist()]
        assert len(set(flat)) == len(flat) and table.min() >= 0 and table.max() < 8
    assert Grammar(GrammarSpec(seed_rules=1)).rules[0].tolist() != g.rules[0].tolist()


def test_valid_sequence_count_of_the_seed_example():
    assert Grammar(GrammarSpec(v=8, n=8, m=3, s=2, L=3)).num_sequences == 8 * 3**7


@pytest.mark.parametrize(
    "kw, word",
    [(dict(n=10, m=7, v=8, s=2), "n*m=70"), (dict(m=9, v=8, s=2), "m=9"), (dict(s=1), "s=1"), (dict(L=0), "L=0")],
)
def test_impossible_grammars_are_refused(kw, word):
    with pytest.raises(TaxodiffError, match=word.replace("*", r"\*")):
        Grammar(GrammarSpec(**kw))


def test_sampling_without_replacement_is_distinct_and_refuses_too_many():
    g = Grammar(SMALL[0])
    t = g.sample(g.num_sequences, seed=0)
    assert sorted(g.indices_of(t)) == list(range(g.num_sequences))
    with pytest.raises(TaxodiffError, match="only 256"):
        g.sample(257, seed=0)
    assert len(g.sample(1000, seed=0, replace=True).tokens) == 1000
    big = Grammar(GrammarSpec(v=32, n=32, m=8, s=2, L=5))  # 2^98 sequences: the digit-drawing path
    tb = big.sample(500, seed=1)
    assert len(set(big.indices_of(tb))) == 500 and big.validity(tb.tokens)["sequences"][-1] == 1.0


def test_sampling_is_uniform_over_sequences():
    g = Grammar(SMALL[2])  # 40 sequences
    idx = torch.tensor(g.indices_of(g.sample(40_000, seed=3, replace=True)))
    freq = torch.bincount(idx, minlength=40).double() / 40_000
    # each count is Binomial(40000, 1/40): sd of a share 0.00078; 6 sd over 40 cells
    assert (freq - 1 / 40).abs().max() < 0.0047


def test_chance_validity_against_random_tokens():
    g = Grammar(SMALL[0])
    tokens = torch.randint(0, 4, (200_000, 8), generator=torch.Generator().manual_seed(0))
    got = g.validity(tokens)["subtrees"]
    for level, share in enumerate(got, start=1):
        p = g.chance_validity(level)
        n = 200_000 * 2 ** (3 - level)
        assert abs(share - p) < 5 * (p * (1 - p) / n) ** 0.5 + 1e-9, (level, share, p)


def test_one_hot_and_hierarchy():
    g = Grammar(GrammarSpec())
    t = g.sample(5, seed=0)
    x = one_hot(t.tokens, 8)
    assert x.shape == (5, 8, 8) and torch.equal(x.argmax(1), t.tokens) and torch.all(x.sum(1) == 1)
    h = g.hierarchy()
    assert h.num_categories == 8 and h.num_leaves == 24 and h.conditional(0) == pytest.approx([1 / 3] * 3)


def _brute_posterior(g: Grammar, loglik: torch.Tensor):
    t = _all_trees(g)
    pos = torch.arange(g.length)
    logw = torch.stack([loglik[b, pos, t.tokens].sum(-1) for b in range(len(loglik))])
    return t, torch.softmax(logw, dim=1)  # (B, N): the prior over trees is uniform


@pytest.mark.parametrize("spec", SMALL)
def test_bp_marginals_match_enumeration(spec):
    g = Grammar(spec)
    loglik = 1.5 * torch.randn(4, g.length, spec.v, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t, w = _brute_posterior(g, loglik)
    marg = BeliefPropagation(g).marginals(loglik)
    for k, sym in enumerate(t.symbols):
        brute = torch.einsum("bn,nwk->bwk", w, torch.nn.functional.one_hot(sym, marg[k].shape[2]).double())
        torch.testing.assert_close(marg[k], brute, atol=1e-12, rtol=0)


@pytest.mark.parametrize("spec", SMALL[:2])
def test_bp_posterior_samples_match_enumeration(spec):
    g = Grammar(spec)
    loglik = 1.5 * torch.randn(1, g.length, spec.v, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, w = _brute_posterior(g, loglik)
    draws = 40_000
    trees = BeliefPropagation(g).sample(loglik.expand(draws, -1, -1), torch.Generator().manual_seed(3))
    freq = torch.bincount(torch.tensor(g.indices_of(trees)), minlength=g.num_sequences).double() / draws
    # E[TV] <= 0.5 * sqrt(2/pi) * sum_i sqrt(p_i / draws) <= 0.5 * 0.8 * sqrt(N / draws): 0.032 for N = 256
    bound = 0.5 * 0.8 * (g.num_sequences / draws) ** 0.5
    assert 0.5 * (freq - w[0]).abs().sum() < 1.5 * bound
    assert g.validity(trees.tokens)["sequences"][-1] == 1.0


def test_bp_in_float32_stays_within_1e_6_of_float64():
    # the seed's grammar (L = 3 and 5), evidence as sharp as a nearly clean sequence and as flat as pure noise:
    # float32 rounding (6e-8 a step) over the few dozen operations of both passes stays below 1e-6
    for spec in (GrammarSpec(v=8, n=8, m=3, s=2, L=3), GrammarSpec(v=8, n=8, m=3, s=2, L=5)):
        g = Grammar(spec)
        gen = torch.Generator().manual_seed(5)
        for scale in (0.3, 3.0):
            loglik = scale * torch.randn(64, g.length, spec.v, generator=gen, dtype=torch.float64)
            exact = BeliefPropagation(g).marginals(loglik)
            single = BeliefPropagation(g, dtype=torch.float32).marginals(loglik)
            for a, b in zip(single, exact, strict=True):
                assert a.dtype == torch.float32
                assert (a.double() - b).abs().max() < 1e-6


def test_bp_without_evidence_is_the_prior():
    g = Grammar(SMALL[0])
    marg = BeliefPropagation(g).marginals(uniform_evidence(g, 1))
    torch.testing.assert_close(marg[0][0, 0], torch.full((2,), 0.5, dtype=torch.float64))
    # a leaf's prior marginal is the share of valid sequences with each token there
    t = _all_trees(g)
    counts = torch.nn.functional.one_hot(t.tokens, 4).double().mean(0)
    torch.testing.assert_close(marg[-1][0], counts)


def test_bp_recovers_a_clean_sequence():
    g = Grammar(GrammarSpec(v=8, n=8, m=3, s=2, L=5))
    t = g.sample(16, seed=4)
    loglik = 30.0 * one_hot(t.tokens, 8).permute(0, 2, 1)  # nearly noiseless evidence
    marg = BeliefPropagation(g).marginals(loglik)
    assert torch.equal(marg[0][:, 0].argmax(1), t.classes)
    assert torch.equal(marg[-1].argmax(2), t.tokens)


def test_rule_usage_copies_and_root_modes_by_hand():
    from taxodiff.metrics.rhm import copies, root_modes, rule_usage, sequence_metrics

    g = Grammar(SMALL[0])  # v=4, n=2, m=2, s=2, L=3: 256 sequences
    every = _all_trees(g)
    full = rule_usage(g, every.tokens)
    assert full["valid"] == 256 and full["class_coverage"] == 1.0
    assert all(lv["rule_coverage"] == 1.0 and lv["symbols_used"] == 1.0 for lv in full["levels"])
    assert full["class_kl"] == pytest.approx(0.0, abs=1e-12)  # exactly uniform counts: smoothing changes nothing
    one_class = every.tokens[every.classes == 0]
    assert rule_usage(g, one_class)["class_coverage"] == 0.5
    # only production 0 at the root, 64 sequences per class: KL(uniform(1/2) || q), q = (64.5, 0.5) / 65
    first = every.tokens[every.choices[0][:, 0] == 0]
    q = np.array([64.5, 0.5]) / 65
    assert rule_usage(g, first)["levels"][0]["rule_kl"] == pytest.approx(float(0.5 * np.log(0.5 / q).sum()))
    assert rule_usage(g, first)["levels"][0]["rule_coverage"] == 0.5
    c = copies(every.tokens[:10], every.tokens[5:20])
    assert c == {"copies": 0.5, "distinct": 1.0}
    modes = root_modes(g, first)
    assert modes["overall"]["coverage"] == 0.5
    random = torch.randint(0, 4, (64, 8), generator=torch.Generator().manual_seed(0))
    m = sequence_metrics(g, torch.cat([every.tokens[:64], random]), train=every.tokens[:32])
    assert m["n"] == 128 and m["memorisation"]["copies"] == pytest.approx(0.25)
    assert m["validity"]["sequences"][-1] >= 0.5 and m["validity"]["chance_sequences"][-1] == pytest.approx(1 / 256)
