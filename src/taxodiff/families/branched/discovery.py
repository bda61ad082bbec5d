"""Branch points from data: when do two classes become indistinguishable under forward diffusion?

Per class, ``n`` samples are forward-diffused on a grid of times t in [0, 1] of the VP SDE with
beta(t) = beta_min + (beta_max - beta_min) t, so alpha_bar(t) = exp(-(beta_min t + (beta_max - beta_min) t^2 / 2)).
At each t the mean cosine similarity between the k-th noised sample of class i and the k-th of class j
(paired; within a class against the batch reversed, so no sample meets itself) fills sim[t, i, j], averaged
over ``draws`` noise draws and smoothed over the time index (Gaussian, ``smooth`` steps). Classes i and j
cross at the first t where sim_ij >= (sim_ii + sim_jj) / 2 - eps. Single linkage over the pairs sorted by
crossing time (union-find) gives the tree; its branches are (classes, t_start, t_end), 2C - 1 of them.
Time is streamed: one (C, C) similarity matrix per time point, never a (T, n, D) array.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class DiscoverySettings:
    times: int = 1000  # grid points in [0, 1]
    draws: int = 1  # noise draws averaged per time point
    smooth: float = 3.0  # Gaussian smoothing of the similarity curves, in grid steps (0: none)
    eps: float = 0.005  # tolerance of the crossing rule
    beta_min: float = 0.1
    beta_max: float = 20.0
    seed: int = 0
    # branches shorter than this (in units of the whole time span) are removed: an internal one is merged into
    # the branch above it (its children then branch off together), a leaf merge earlier than it is moved to it
    min_length: float = 0.0
    # every crossing's distance from t = 1 (pure noise) times this (0 <= x <= 1): below 1 classes part earlier in
    # generation and the shared root is shorter (0: every class parts at once, below a root of min_length)
    scale: float = 1.0


@dataclass(frozen=True)
class Branch:
    classes: tuple[int, ...]
    t_start: float  # lower end of the branch's time interval (0 for a leaf)
    t_end: float  # upper end (1 for the root)


@dataclass
class BranchTree:
    merges: list[tuple[tuple[int, ...], tuple[int, ...], float]]  # (group a, group b, time), in merge order
    branches: list[Branch]
    crossing: np.ndarray  # (C, C) crossing time of every pair (1.0 where they never cross)
    similarity: np.ndarray = field(repr=False)  # (T, C, C) smoothed curves
    times: np.ndarray = field(repr=False)


def alpha_bar(t: np.ndarray, s: DiscoverySettings) -> np.ndarray:
    return np.exp(-(s.beta_min * t + (s.beta_max - s.beta_min) * t**2 / 2))


def similarity_curves(
    data: list[torch.Tensor], s: DiscoverySettings, abar: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(times, sim (T, C, C)) for per-class sample sets (rows are flattened samples), compared pairwise k-th with
    k-th: the first n of every set, n the smallest set's size (the caller says so where it can happen).
    ``abar``: the signal level on an even grid of [0, 1] of another noise schedule (default: the VP SDE's on
    ``s.times`` points)."""
    n = min(len(x) for x in data)
    x0 = torch.stack([x[:n].reshape(n, -1).double() for x in data])  # (C, n, D)
    c = len(data)
    times = np.linspace(0.0, 1.0, s.times if abar is None else len(abar))
    levels = alpha_bar(times, s) if abar is None else np.asarray(abar, dtype=np.float64)
    gen = torch.Generator().manual_seed(s.seed)
    sim = np.zeros((len(times), c, c))
    for k, a in enumerate(levels.tolist()):
        for _ in range(s.draws):
            xt = a**0.5 * x0 + (1 - a) ** 0.5 * torch.randn(x0.shape, generator=gen, dtype=x0.dtype)
            u = xt / xt.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            cross = torch.einsum("ikd,jkd->ij", u, u) / n  # paired k-th with k-th
            own = (u * u.flip(1)).sum(-1).mean(-1)  # against the reversed batch
            m = cross.clone()
            m[range(c), range(c)] = own
            sim[k] += m.numpy() / s.draws
    if s.smooth > 0:
        from scipy.ndimage import gaussian_filter1d

        sim = gaussian_filter1d(sim, s.smooth, axis=0, mode="nearest")
    return times, sim


def crossing_times(times: np.ndarray, sim: np.ndarray, eps: float) -> np.ndarray:
    c = sim.shape[1]
    out = np.ones((c, c))
    for i in range(c):
        for j in range(i + 1, c):
            ok = sim[:, i, j] >= (sim[:, i, i] + sim[:, j, j]) / 2 - eps
            out[i, j] = out[j, i] = times[np.argmax(ok)] if ok.any() else 1.0
    np.fill_diagonal(out, 0.0)
    return out


def toward_noise(crossing: np.ndarray, scale: float) -> np.ndarray:
    """Crossing times moved toward t = 1: each pair's 1 - t times ``scale`` (a class's own 0 on the diagonal kept)."""
    if scale == 1.0:
        return crossing
    out = 1.0 - (1.0 - crossing) * scale
    np.fill_diagonal(out, 0.0)
    return out


def crossings(times: np.ndarray, sim: np.ndarray, s: DiscoverySettings) -> np.ndarray:
    """Every pair's crossing time under ``s``: the first within its eps, moved toward noise by its scale."""
    return toward_noise(crossing_times(times, sim, s.eps), s.scale)


def single_linkage(crossing: np.ndarray) -> tuple[list[tuple[tuple[int, ...], tuple[int, ...], float]], list[Branch]]:
    """Union-find over pairs sorted by crossing time: the merges, and the 2C - 1 branches."""
    c = len(crossing)
    parent = list(range(c))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    members = {i: (i,) for i in range(c)}
    born = {(i,): 0.0 for i in range(c)}
    merges, branches = [], []
    pairs = sorted((crossing[i, j], i, j) for i in range(c) for j in range(i + 1, c))
    for t, i, j in pairs:
        ri, rj = find(i), find(j)
        if ri == rj:
            continue
        a, b = members.pop(ri), members.pop(rj)
        merged = tuple(sorted(a + b))
        branches += [Branch(a, born.pop(a), float(t)), Branch(b, born.pop(b), float(t))]
        parent[rj] = ri
        members[ri] = merged
        born[merged] = float(t)
        merges.append((a, b, float(t)))
    (root,) = members.values()
    branches.append(Branch(root, born[root], 1.0))
    return merges, branches


def min_length(branches: list[Branch], m: float) -> list[Branch]:
    """The tree without branches shorter than ``m`` (0 <= m < 0.5): every branch point is moved into [m, 1 - m];
    then, from the root down, an internal branch shorter than ``m`` is removed and its children branch off
    where it ended (a node with more than two children). Leaves keep their order; no branch gets shorter."""
    if m <= 0:
        return list(branches)
    top = max(branches, key=lambda b: len(b.classes))
    # a leaf starts at 0; every other branch point (one at t = 0 too: two classes alike even unnoised) in [m, 1 - m]
    nodes = {b.classes: min(max(b.t_start, m), 1 - m) if len(b.classes) > 1 else 0.0 for b in branches}
    parent = {b.classes: _parent(b, branches) for b in branches if b is not top}
    for node in sorted(parent, key=lambda k: -nodes[k]):  # from the root down
        up = parent[node]
        if nodes[node] > 0 and nodes[up] - nodes[node] < m:
            for child in [k for k, p in parent.items() if p == node]:
                parent[child] = up
            del parent[node]
    kept = [top.classes, *parent]
    return [Branch(k, nodes[k], 1.0 if k == top.classes else nodes[parent[k]]) for k in kept]


def _parent(b: Branch, branches: list[Branch]) -> tuple[int, ...]:
    """The classes of the smallest branch that holds ``b``'s classes and starts where ``b`` ends."""
    above = [a for a in branches if set(b.classes) < set(a.classes)]
    return min(above, key=lambda a: len(a.classes)).classes


def discover(
    data: list[torch.Tensor], settings: DiscoverySettings | None = None, abar: np.ndarray | None = None
) -> BranchTree:
    """The branched tree of per-class sample sets (each (n, ...) tensor; the first n of each are used), on the
    VP SDE's time or, given ``abar``, on another schedule's (see :func:`similarity_curves`)."""
    s = settings or DiscoverySettings()
    if len(data) < 2 or min(len(x) for x in data) < 2:
        raise ValueError("branch discovery needs at least 2 classes of at least 2 samples each")
    if not 0 <= s.scale <= 1:
        raise ValueError(f"scale = {s.scale} is invalid: allowed is 0 <= scale <= 1")
    if not 0 <= s.min_length < 0.5:
        raise ValueError(f"min_length = {s.min_length} is invalid: allowed is 0 <= min_length < 0.5")
    times, sim = similarity_curves(data, s, abar)
    crossing = crossings(times, sim, s)
    merges, branches = single_linkage(crossing)
    return BranchTree(merges, min_length(branches, s.min_length), crossing, sim, times)
