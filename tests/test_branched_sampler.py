"""The branched samplers driven by the exact score of a Gaussian mixture whose class tree is known (no training).

Four classes N(mu_c, s^2 I) in 256-D ({0, 1} close, {2, 3} farther apart, the pairs far apart). A branch that
serves classes S denoises with the exact noise prediction of the equal mixture over S, so each class's samples
should land on that class: above a branch point the classes are (by the discovery rule) nearly indistinguishable,
below it each branch's score is exact. Checked for the per-path and the cached sampler, with their network
evaluations counted.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from taxodiff.families.branched.discovery import Branch, DiscoverySettings, discover, min_length
from taxodiff.families.branched.sampler import sample_cached, sample_paths
from taxodiff.families.branched.tree import BranchedTree
from taxodiff.noise import Noise
from taxodiff.processes.gaussian import GaussianConfig, GaussianProcess
from tests.test_branches import _mixture

S = 0.3  # the classes' spread (tests.test_branches._mixture)
E = torch.eye(256)
MEANS = torch.stack([3 * E[0] + 0.5 * E[1], 3 * E[0] - 0.5 * E[1], -3 * E[0] + 1.5 * E[2], -3 * E[0] - 1.5 * E[2]])
NAMES = ["a", "b", "c", "d"]


def _process() -> GaussianProcess:
    return GaussianProcess(GaussianConfig(beta_schedule="linear", prediction="epsilon", clip_sample=False))


def _tree(process: GaussianProcess) -> BranchedTree:
    """Discovery on process times 0, 5, ..., T. eps 0.001: in 256-D the cosine gaps are small, and at the default
    0.005 the pair {a, b} branches at t = 112 of 1,000, where the exact posterior still tells a from b: 20% of
    a's samples then end at b (measured); at 0.001 it branches at t = 286 and the samples match the classes."""
    levels = process.abar(torch.arange(0, process.T + 1, 5)).double().numpy()
    found = discover(_mixture(0), DiscoverySettings(seed=0, min_length=0.02, eps=0.001), levels)
    return BranchedTree.from_discovery(found.branches, NAMES, process.T)


@pytest.fixture(scope="module")
def tree() -> BranchedTree:
    return _tree(_process())


class ExactScore:
    """eps(x_t, t) of the equal mixture over the classes of each head; counts the rows it is asked for."""

    def __init__(self, tree: BranchedTree, process: GaussianProcess) -> None:
        self.members = {b.head: [NAMES.index(c) for c in b.classes] for b in tree.branches}
        self.process, self.rows = process, 0

    def __call__(self, x: Tensor, tn: Tensor, head: Tensor) -> Tensor:
        self.rows += len(x)
        a = self.process.abar(tn + 1).double()[:, None]
        out = torch.empty_like(x, dtype=torch.float64)
        for h in torch.unique(head).tolist():
            r = head == h
            mu = a[r, :, None].sqrt() * MEANS[self.members[h]].double().T[None]  # (b, D, k)
            v = a[r] * S**2 + 1 - a[r]  # (b, 1)
            diff = x[r].double()[:, :, None] - mu
            w = torch.softmax(-(diff**2).sum(1) / (2 * v), dim=1)  # (b, k)
            out[r] = (1 - a[r]).sqrt() * (diff * w[:, None]).sum(-1) / v
        return out.float()


def _check(name: str, x: Tensor, n: int) -> None:
    """Samples of class ``name`` against the class's own law. Nearest-mean accuracy of true samples: a, b
    Phi(0.5 / 0.3) = 0.952 (they differ along one axis by 1.0), c, d 1.0; allowed 0.05 under it (3 standard
    errors at n = 200)."""
    c = NAMES.index(name)
    nearest = torch.cdist(x.double(), MEANS.double()).argmin(1)
    truth = 0.952 if name in "ab" else 1.0
    assert (nearest == c).float().mean() >= truth - 0.05, name
    # the mean's error: standard error S / sqrt(n) per coordinate; 6 of them over 256 coordinates, plus the
    # discretisation of 100 ancestral steps (measured 0.01-0.02 on the 3-unit offset, so 0.05 allowed there)
    err = (x.double().mean(0) - MEANS[c].double()).abs()
    assert err[3:].max() < 6 * S / n**0.5, name
    assert err[:3].max() < 0.05, name
    assert x.double().std(0)[3:].mean() == pytest.approx(S, rel=0.1), name


def test_the_mixture_tree_on_process_times(tree: BranchedTree) -> None:
    assert len(tree.branches) == 7
    clades = {b.classes for b in tree.branches}
    assert {("a", "b"), ("c", "d"), ("a", "b", "c", "d")} <= clades
    assert tree.meet("a", "b") < tree.meet("c", "d") < tree.meet("a", "c") == tree.root.t_start
    table = tree.head_table(NAMES)
    for name, row in zip(NAMES, table, strict=True):
        for t in (0, 1, tree.meet("a", "b"), tree.root.t_start, tree.T):
            assert int(row[t]) == tree.branch_at(name, t).head


def test_cached_and_per_path_sampling_with_the_exact_score(tree: BranchedTree) -> None:
    process = _process()
    n, steps = 200, 100
    grid = process.timesteps(steps, process.T, 0)
    tree.check_grid(grid, NAMES)

    per_path = ExactScore(tree, process)
    leaf = torch.arange(4).repeat_interleave(n)
    keys = [("class", NAMES[int(c)], k) for c, k in zip(leaf, list(range(n)) * 4, strict=True)]
    noise = Noise.per_sample(0, keys)
    x = sample_paths(per_path, tree.head_table(NAMES)[leaf], process, process.prior((4 * n, 256), noise), noise, steps)
    for c, name in enumerate(NAMES):
        _check(name, x[leaf == c], n)

    cached = ExactScore(tree, process)
    found: dict[str, Tensor] = {}
    ks = list(range(n))
    x0 = process.prior((n, 256), Noise.per_sample(0, [("cached", "root", k) for k in ks]))
    sample_cached(cached, tree, process, x0, ks, grid, 0, found.__setitem__)
    assert sorted(found) == NAMES
    for name in NAMES:
        _check(name, found[name], n)

    # network evaluations: C whole chains against the tree's branches, each the grid steps inside it
    assert per_path.rows == 4 * n * steps
    branch_steps = sum(len(tree.grid_steps(grid, b)) for b in tree.branches)
    assert cached.rows == n * branch_steps
    theory = 4 / tree.total_length()
    assert per_path.rows / cached.rows == pytest.approx(theory, rel=0.05)


def test_min_length_merges_short_internal_branches_and_lengthens_leaves() -> None:
    # ((0, 1) at 0.02, 2) at 0.5, 3) at 0.53, root to 1
    tree = [
        Branch((0,), 0.0, 0.02),
        Branch((1,), 0.0, 0.02),
        Branch((0, 1), 0.02, 0.5),
        Branch((2,), 0.0, 0.5),
        Branch((0, 1, 2), 0.5, 0.53),
        Branch((3,), 0.0, 0.53),
        Branch((0, 1, 2, 3), 0.53, 1.0),
    ]
    out = {b.classes: (b.t_start, b.t_end) for b in min_length(tree, 0.05)}
    assert out[(0,)] == (0.0, 0.05) and out[(0, 1)] == (0.05, 0.53)  # leaf merge moved up to 0.05
    assert (0, 1, 2) not in out  # 0.03 long: merged into the root, whose children are now (0, 1), 2 and 3
    assert out[(2,)] == (0.0, 0.53) and out[(3,)] == (0.0, 0.53) and out[(0, 1, 2, 3)] == (0.53, 1.0)
    assert min_length(tree, 0.0) == tree
    assert np.isclose(sum(e - s for s, e in out.values()), 0.05 * 2 + 0.48 + 0.53 * 2 + 0.47)


def test_min_length_lengthens_leaves_that_meet_at_time_zero() -> None:
    """Two classes alike even unnoised (a crossing at t = 0: seen on MNIST's imbalanced regime, whose rare
    classes leave discovery 53 images each) meet at min_length, not at 0 with leaves of no length."""
    tree = [
        Branch((0,), 0.0, 0.0),
        Branch((1,), 0.0, 0.0),
        Branch((0, 1), 0.0, 0.6),
        Branch((2,), 0.0, 0.6),
        Branch((0, 1, 2), 0.6, 1.0),
    ]
    out = {b.classes: (b.t_start, b.t_end) for b in min_length(tree, 0.05)}
    assert out[(0,)] == (0.0, 0.05) and out[(1,)] == (0.0, 0.05) and out[(0, 1)] == (0.05, 0.6)
    assert all(e > s for s, e in out.values())
