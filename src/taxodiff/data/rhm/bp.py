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
    prods: list[Tensor]  # per level k < L: (B, s^k, n or v, m), prod_j lam_child_j(rule[a, r, j]) (rescaled)


class BeliefPropagation:
    def __init__(self, grammar: Grammar, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64):
        self.grammar, self.dtype = grammar, dtype
        self.device = torch.device(device)
        self.rules = [r.to(self.device) for r in grammar.rules]

    def upward(self, loglik: Tensor) -> Upward:
        g = self.grammar.spec
        if loglik.ndim != 3 or loglik.shape[1:] != (self.grammar.length, g.v):
            raise ValueError(f"leaf evidence must be (B, {self.grammar.length}, {g.v}), got {tuple(loglik.shape)}")
        lam = [torch.softmax(loglik.to(self.device, self.dtype), dim=-1)]
        prods: list[Tensor] = []
        for table in reversed(self.rules):  # level L-1 up to the root
            child = lam[0]
            b, width = child.shape[0], child.shape[1] // g.s
            groups = child.reshape(b, width, g.s, g.v)
            prod = torch.ones(b, width, *table.shape[:2], dtype=self.dtype, device=self.device)
            for j in range(g.s):
                prod = prod * groups[:, :, j, :][:, :, table[:, :, j]]  # (B, width, P, m)
            prod = prod / prod.amax(dim=(2, 3), keepdim=True).clamp_min(TINY)
            parent = prod.sum(dim=3)
            lam.insert(0, parent / parent.sum(dim=2, keepdim=True).clamp_min(TINY))
            prods.insert(0, prod)
        return Upward(lam, prods)

    def marginals(self, loglik: Tensor) -> list[Tensor]:
        """Posterior marginals per level: [(B, 1, n), (B, s, v), ..., (B, s^L, v)], rows sum to 1."""
        up = self.upward(loglik)
        g = self.grammar.spec
        out = [up.lam[0]]  # the root's prior is uniform: its posterior is lam
        for k, table in enumerate(self.rules):
            parent, prod = out[-1], up.prods[k]  # (B, W, P), (B, W, P, m)
            joint = parent[..., None] * prod / prod.sum(dim=3, keepdim=True).clamp_min(TINY)  # (B, W, P, m)
            b, width = joint.shape[:2]
            flat = joint.reshape(b, width, -1)
            child = torch.zeros(b, width, g.s, g.v, dtype=self.dtype, device=self.device)
            for j in range(g.s):
                idx = table[:, :, j].reshape(1, 1, -1).expand(b, width, -1)
                child[:, :, j, :].scatter_add_(2, idx, flat)
            child = child.reshape(b, width * g.s, g.v)
            out.append(child / child.sum(dim=2, keepdim=True).clamp_min(TINY))
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
