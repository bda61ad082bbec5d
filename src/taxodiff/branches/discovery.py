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


def similarity_curves(data: list[torch.Tensor], s: DiscoverySettings) -> tuple[np.ndarray, np.ndarray]:
    """(times, sim (T, C, C)) for per-class sample sets of equal size n (rows are flattened samples)."""
    n = min(len(x) for x in data)
    x0 = torch.stack([x[:n].reshape(n, -1).double() for x in data])  # (C, n, D)
    c = len(data)
    times = np.linspace(0.0, 1.0, s.times)
    gen = torch.Generator().manual_seed(s.seed)
    sim = np.zeros((s.times, c, c))
    for k, t in enumerate(times):
        a = float(alpha_bar(np.array(t), s))
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


def discover(data: list[torch.Tensor], settings: DiscoverySettings | None = None) -> BranchTree:
    """The branched tree of per-class sample sets (each (n, ...) tensor; the first n of each are used)."""
    s = settings or DiscoverySettings()
    if len(data) < 2 or min(len(x) for x in data) < 2:
        raise ValueError("branch discovery needs at least 2 classes of at least 2 samples each")
    times, sim = similarity_curves(data, s)
    crossing = crossing_times(times, sim, s.eps)
    merges, branches = single_linkage(crossing)
    return BranchTree(merges, branches, crossing, sim, times)
