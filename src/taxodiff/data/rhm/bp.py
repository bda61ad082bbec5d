"""Exact belief propagation on the RHM tree: posterior marginals at every node and exact posterior samples,
given independent evidence on the leaves (e.g. a noisy sequence x_t), for any valid n, batched, CPU or GPU.

The prior is the grammar's: a uniform class, a uniform production (1/m) at every internal node. Evidence
is a per-leaf log-likelihood ``log p(obs_i | token_i = a)`` of shape (B, s^L, v).

Upward pass: ``lam[k][b, i, a] ∝ p(evidence under node i of level k | X = a)``, for a parent
``lam(a) ∝ sum_r prod_j lam_child_j(rule[a, r, j])`` (O(v m s) per node), normalised per node.
Downward pass: the joint posterior of (symbol, production) at a node is its marginal times
``prod_j lam_j(rule[a, r, j]) / lam(a)``; a child's marginal collects that joint over the productions that
put each symbol in its slot. Sampling walks down the same way, drawing the class then each production.
This is the Bayes-optimal denoiser for data drawn from the grammar: no model can do better.

Both passes are matrix products against one-hot matrices of the rules (:func:`selection`, :func:`spreading`):
a level is one product and one elementwise product over the s slots up, one product down, for every node of
the batch at once (float32 keeps the marginals within 1e-6 of float64; benchmarks/bench_bp.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from taxodiff.data.rhm.grammar import Grammar, Trees
from taxodiff.noise import Noise

TINY = 1e-30


@dataclass
class Upward:
    lam: list[Tensor]  # per level k = 0..L: (B, s^k, n or v), each row sums to 1
    prods: list[Tensor]  # per level k < L: (B, s^k, n or v, m), prod_j lam_child_j(rule[a, r, j]), summing to 1


def selection(table: Tensor, v: int, dtype: torch.dtype) -> Tensor:
    """The rule table (P, m, s) as one block-diagonal one-hot matrix (s v, s m P): the beliefs of s sibling
    nodes side by side, times it, read child j's belief in the symbol each production puts in slot j, for
    every (slot, production, parent symbol) at once. Columns run over the production before the parent symbol,
    so that sums over productions run over contiguous rows."""
    parents, m, s = table.shape
    out = torch.zeros(s * v, s * m * parents, dtype=dtype, device=table.device)
    cols = torch.arange(m * parents, device=table.device).reshape(m, parents).T.reshape(-1)  # column of (a, r)
    for j in range(s):
        out[j * v + table[:, :, j].reshape(-1), j * m * parents + cols] = 1
    return out


def spreading(select: Tensor, s: int, v: int) -> Tensor:
    """The downward matrix (m P, s v) from :func:`selection`'s blocks, each transposed: a node's posterior over
    (production, symbol) times it is the posterior of its s children side by side, each child's symbol the one
    its slot receives."""
    mp = select.shape[1] // s
    return torch.cat([select[j * v : (j + 1) * v, j * mp : (j + 1) * mp].T for j in range(s)], dim=1)


def normalised_exp(loglik: Tensor) -> Tensor:
    """softmax over the last axis, written out: torch's softmax over 8 entries is 5x slower on the CPU."""
    out = (loglik - loglik.amax(dim=-1, keepdim=True)).exp_()
    return out.div_(out.sum(dim=-1, keepdim=True))


class BeliefPropagation:
    def __init__(self, grammar: Grammar, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64):
        self.grammar, self.dtype = grammar, dtype
        self.device = torch.device(device)
        self.rules = [r.to(self.device) for r in grammar.rules]
        g = grammar.spec
        self.select = [selection(r, g.v, dtype) for r in self.rules]  # upward: (s v, s m P)
        self.spread = [spreading(e, g.s, g.v) for e in self.select]  # downward: (m P, s v)

    def upward(self, loglik: Tensor) -> Upward:
        g = self.grammar.spec
        if loglik.ndim != 3 or loglik.shape[1:] != (self.grammar.length, g.v):
            raise ValueError(f"leaf evidence must be (B, {self.grammar.length}, {g.v}), got {tuple(loglik.shape)}")
        lam = [normalised_exp(loglik.to(self.device, self.dtype))]
        prods: list[Tensor] = []
        for select in reversed(self.select):  # level L-1 up to the root
            child = lam[0]
            b, width = child.shape[0], child.shape[1] // g.s
            prod = (child.reshape(b * width, g.s * g.v) @ select).reshape(b * width, g.s, -1).prod(dim=1)
            prod = prod.div_(prod.sum(dim=1, keepdim=True).clamp_min_(TINY)).reshape(b, width, g.m, -1)
            lam.insert(0, prod.sum(dim=2))
            prods.insert(0, prod.transpose(2, 3))  # (B, W, P, m), a view
        return Upward(lam, prods)

    def marginals(self, loglik: Tensor) -> list[Tensor]:
        """Posterior marginals per level: [(B, 1, n), (B, s, v), ..., (B, s^L, v)], rows sum to 1."""
        up = self.upward(loglik)
        g = self.grammar.spec
        out = [up.lam[0]]  # the root's prior is uniform: its posterior is lam
        for k, spread in enumerate(self.spread):
            parent, prod = out[-1], up.prods[k].transpose(2, 3)  # (B, W, P), (B, W, m, P)
            b, width = prod.shape[:2]
            scale = parent / up.lam[k].clamp_min(TINY)  # posterior over upward belief, per parent symbol
            joint = (prod * scale[:, :, None, :]).reshape(b * width, -1)  # (B W, m P): sums to 1 per node
            total = joint.sum(dim=1, keepdim=True).clamp_min_(TINY)  # 1 but for rounding and empty evidence
            child = joint.div_(total) @ spread  # (B W, s v)
            out.append(child.reshape(b, width * g.s, g.v))
        return out

    def sample(self, loglik: Tensor, noise: Noise | torch.Generator | None = None) -> Trees:
        """One exact draw of the whole generating tree from the posterior, per batch row (``noise``: one
        generator for the batch, or per-row streams)."""
        noise = noise if isinstance(noise, Noise) else Noise(noise or torch.Generator().manual_seed(0))
        up = self.upward(loglik)
        b = loglik.shape[0]
        root = noise.categorical(up.lam[0][:, 0, :])[:, None]  # (B, 1)
        symbols, choices = [root], []
        for k, table in enumerate(self.rules):
            prod = up.prods[k]  # (B, W, P, m)
            width = prod.shape[1]
            weights = torch.gather(prod, 2, symbols[-1][:, :, None, None].expand(b, width, 1, prod.shape[3]))
            r = noise.categorical(weights[:, :, 0, :])  # (B, W)
            choices.append(r)
            symbols.append(table[symbols[-1], r].reshape(b, width * self.grammar.spec.s))
        return Trees(symbols, choices)


def uniform_evidence(grammar: Grammar, batch: int) -> Tensor:
    """No evidence: sampling from it draws from the grammar's prior."""
    return torch.zeros(batch, grammar.length, grammar.spec.v)
