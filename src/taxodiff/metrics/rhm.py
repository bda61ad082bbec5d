"""Metrics of generated RHM sequences: validity per level beside chance, copies of training sequences,
and rule usage (the RHM version of mode coverage).

validity     share of sequences whose every subtree spanning l levels parses (l = 1..L; l = L: the whole
             sequence), and share of such subtrees that parse, with the chance level P_l of random tokens
copies       share of generated sequences equal to a training sequence (memorisation), and the share of
             distinct sequences among the generated ones
rules        among valid sequences: class frequencies against the grammar's uniform 1/n (KL, coverage);
             production usage given the symbol at every level against the uniform 1/m (KL averaged over
             symbols by their frequency; coverage = share of the productions of the symbols the grammar can
             put at that level that are used at >= coverage_rel / m)
root modes   the same (class, root production) pairs scored by :func:`taxodiff.metrics.modes.mode_metrics`
             on the grammar's class tree, with bootstrap intervals
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from taxodiff.data.rhm.grammar import Grammar
from taxodiff.metrics.modes import ModeSettings, kl, mode_metrics


def copies(generated: Tensor, train: Tensor) -> dict[str, float]:
    seen = {tuple(r) for r in train.tolist()}
    rows = [tuple(r) for r in generated.tolist()]
    n = max(1, len(rows))
    return {"copies": sum(r in seen for r in rows) / n, "distinct": len(set(rows)) / n}


def rule_usage(grammar: Grammar, tokens: Tensor, coverage_rel: float = 0.25, smoothing: float = 0.5) -> dict[str, Any]:
    """Class and production frequencies of the valid sequences, level by level, against the grammar's."""
    sp = grammar.spec
    parsed = grammar.parse(tokens)
    valid = parsed.symbols[0][:, 0] >= 0
    out: dict[str, Any] = {"valid": int(valid.sum())}
    if not valid.any():
        return out | {"class_kl": float("nan"), "levels": []}
    classes = np.bincount(parsed.symbols[0][valid, 0].numpy(), minlength=sp.n).astype(np.float64)
    uniform = np.full(sp.n, 1 / sp.n)
    out["class_frequencies"] = (classes / classes.sum()).tolist()
    out["class_kl"] = kl(uniform, (classes + smoothing) / (classes.sum() + smoothing * sp.n))
    out["class_coverage"] = float(np.mean(classes / classes.sum() >= coverage_rel / sp.n))
    levels = []
    for k in range(sp.L):
        sym = parsed.symbols[k][valid].flatten().numpy()
        rule = parsed.choices[k][valid].flatten().numpy()
        parents = sp.n if k == 0 else sp.v
        counts = np.zeros((parents, sp.m))
        np.add.at(counts, (sym, rule), 1)
        per_symbol = counts.sum(1)
        used = per_symbol > 0
        can = grammar.reachable(k).numpy()  # symbols the grammar can put at this level
        smoothed = (counts + smoothing) / (per_symbol[:, None] + smoothing * sp.m)
        kls = np.array([kl(np.full(sp.m, 1 / sp.m), smoothed[a]) for a in range(parents)])
        share = np.where(used[:, None], counts / np.maximum(per_symbol[:, None], 1), 0)
        levels.append(
            {
                "level": k,
                "rule_kl": float((kls[used] * per_symbol[used]).sum() / per_symbol[used].sum()),
                "rule_coverage": float(np.mean(share[can] >= coverage_rel / sp.m)),
                "symbols_used": float(used[can].mean()),
            }
        )
    out["levels"] = levels
    return out


def root_modes(grammar: Grammar, tokens: Tensor, settings: ModeSettings | None = None) -> dict[str, Any] | None:
    """(class, root production) of the valid sequences scored like image subtypes, or None if none is valid."""
    parsed = grammar.parse(tokens)
    valid = parsed.symbols[0][:, 0] >= 0
    if not valid.any():
        return None
    z2 = parsed.symbols[0][valid, 0].numpy()
    leaf = z2 * grammar.spec.m + parsed.choices[0][valid, 0].numpy()
    return mode_metrics(grammar.hierarchy(), z2, leaf, settings)


def sequence_metrics(grammar: Grammar, tokens: Tensor, train: Tensor | None = None) -> dict[str, Any]:
    """All of the above for one batch of generated tokens (B, s^L)."""
    val = grammar.validity(tokens)
    L = grammar.spec.L
    chance = [grammar.chance_validity(level) for level in range(1, L + 1)]
    widths = [grammar.spec.s ** (L - level) for level in range(1, L + 1)]
    out: dict[str, Any] = {
        "n": len(tokens),
        "validity": {
            "sequences": val["sequences"],
            "subtrees": val["subtrees"],
            "chance_subtrees": chance,
            "chance_sequences": [p**w for p, w in zip(chance, widths, strict=True)],
        },
        "rules": rule_usage(grammar, tokens),
    }
    if train is not None:
        out["memorisation"] = copies(tokens, train)
    modes = root_modes(grammar, tokens, ModeSettings(bootstrap=200))
    if modes is not None:
        out["root_modes"] = {"overall": modes["overall"]}
    return out
