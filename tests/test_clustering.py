"""Clustering metrics of a tree of clusters: Hungarian accuracy, leaf and dendrogram purity, and the Ward baseline."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score

from taxodiff.metrics.clustering import (
    class_histograms,
    dendrogram_purity,
    hungarian_accuracy,
    leaf_purity,
    scores,
    ward,
)


def _random_tree(rng: np.random.Generator, steps: int) -> dict[int, list[int]]:
    """Grow a tree from root 0 by giving a random leaf one child (a link) or two."""
    tree: dict[int, list[int]] = {0: []}
    for _ in range(steps):
        leaf = int(rng.choice([node for node, kids in tree.items() if not kids]))
        kids = list(range(len(tree), len(tree) + int(rng.integers(1, 3))))
        tree[leaf] = kids
        tree.update({k: [] for k in kids})
    return tree


def _brute_dendrogram_purity(labels: np.ndarray, clusters: np.ndarray, tree: dict[int, list[int]], root: int) -> float:
    parent = {child: node for node, kids in tree.items() for child in kids}

    def ancestors(node: int) -> list[int]:  # node first, root last
        chain = [node]
        while chain[-1] != root:
            chain.append(parent[chain[-1]])
        return chain

    purities = []
    for i, j in combinations(range(len(labels)), 2):
        if labels[i] != labels[j]:
            continue
        up_i = set(ancestors(int(clusters[i])))
        lca = next(node for node in ancestors(int(clusters[j])) if node in up_i)
        under = np.array([lca in ancestors(int(c)) for c in clusters])
        purities.append(np.mean(labels[under] == labels[i]))
    return float(np.mean(purities))


def test_dendrogram_purity_matches_brute_force_on_random_trees() -> None:
    rng = np.random.default_rng(0)
    links = 0
    for case in range(30):
        tree = _random_tree(rng, int(rng.integers(0, 9)))
        links += sum(len(kids) == 1 for kids in tree.values())
        leaves = [node for node, kids in tree.items() if not kids]
        n = int(rng.integers(2, 25))
        clusters = rng.choice(leaves, size=n)
        labels = rng.integers(0, int(rng.integers(1, 5)), size=n) * 3 + 7  # class ids need not be 0..C-1
        if len(np.unique(labels)) == n:  # no same-class pair: covered below
            continue
        fast = dendrogram_purity(labels, clusters, tree, 0)
        slow = _brute_dendrogram_purity(labels, clusters, tree, 0)
        assert abs(fast - slow) < 1e-12, (case, fast, slow)
    assert links > 5  # the random trees did contain single-child nodes


def test_dendrogram_purity_by_hand() -> None:
    # root 4 -> [3, 5]; 3 -> [0, 1]; 5 -> [2] (a link). Leaf 0: A A, leaf 1: A B, leaf 2: B.
    # Class A pairs: the two in leaf 0 -> LCA leaf 0, purity 2/2 = 1; each with leaf 1's A -> LCA 3, which holds
    # 3 A of 4 points: 3/4 (twice). Class B: leaf 1 with leaf 2 -> LCA root, 2 B of 5 points: 2/5.
    # Average of the 4 pairs: (1 + 3/4 + 3/4 + 2/5) / 4 = 2.9 / 4 = 0.725.
    tree = {4: [3, 5], 3: [0, 1], 5: [2], 0: [], 1: [], 2: []}
    labels = np.array([0, 0, 0, 1, 1])
    clusters = np.array([0, 0, 1, 1, 2])
    assert dendrogram_purity(labels, clusters, tree, 4) == pytest.approx(0.725, abs=1e-12)
    # Same points with the link removed (leaf 2 straight under the root): nothing changes.
    assert dendrogram_purity(labels, clusters, {4: [3, 2], 3: [0, 1]}, 4) == pytest.approx(0.725, abs=1e-12)
    hist = class_histograms(labels, clusters, tree, 4, 2)
    assert {k: v.tolist() for k, v in hist.items()} == {
        0: [2, 0],
        1: [1, 1],
        2: [0, 1],
        5: [0, 1],
        3: [3, 1],
        4: [3, 2],
    }


def test_dendrogram_purity_edge_cases() -> None:
    tree = {2: [0, 1]}
    assert math.isnan(dendrogram_purity(np.array([0, 1, 2]), np.array([0, 0, 1]), tree, 2))  # no same-class pair
    assert dendrogram_purity(np.array([5, 5, 9, 9]), np.array([0, 0, 1, 1]), tree, 2) == 1.0
    # Classes split across the two leaves: every pair meets at the root, purity = the class's share 1/2.
    assert dendrogram_purity(np.array([5, 9, 5, 9]), np.array([0, 0, 1, 1]), tree, 2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="not leaves"):
        dendrogram_purity(np.array([0, 0]), np.array([0, 2]), tree, 2)  # 2 is internal
    with pytest.raises(ValueError, match="not leaves"):
        dendrogram_purity(np.array([0, 0]), np.array([0, 7]), tree, 2)  # 7 is not in the tree
    with pytest.raises(ValueError, match="not a tree"):
        dendrogram_purity(np.array([0, 0]), np.array([0, 1]), {2: [0, 1], 1: [0]}, 2)


def test_hungarian_accuracy() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 3])
    perm = np.array([2, 3, 0, 1])  # a perfect clustering under other names
    assert hungarian_accuracy(labels, perm[labels] + 10) == 1.0
    # More clusters than classes: cluster 0 -> class 0 (2), cluster 2 -> class 1 (3); cluster 1 unmatched: 5/6.
    assert hungarian_accuracy(np.array([0, 0, 0, 1, 1, 1]), np.array([0, 0, 1, 2, 2, 2])) == pytest.approx(5 / 6)
    # Fewer clusters than classes: cluster 0 -> class 0 or 1 (2), cluster 1 -> class 2 (2): 4/6.
    assert hungarian_accuracy(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 0, 0, 1, 1])) == pytest.approx(4 / 6)
    # Both clusters' majority is class 0, but only one may take it: max(3 + 0, 1 + 2) = 3 of 6.
    labels, clusters = np.array([0, 0, 0, 1, 0, 0]), np.array([0, 0, 0, 0, 1, 1])
    assert hungarian_accuracy(labels, clusters) == pytest.approx(3 / 6)
    assert leaf_purity(labels, clusters) == pytest.approx(5 / 6)  # majority counts 3 + 2, no matching


def test_leaf_purity_by_hand() -> None:
    # Cluster 0: classes 0 0 1 -> 2; cluster 1: 0 1 1 1 -> 3; total 5 of 7.
    labels = np.array([0, 0, 1, 0, 1, 1, 1])
    clusters = np.array([0, 0, 0, 1, 1, 1, 1])
    assert leaf_purity(labels, clusters) == pytest.approx(5 / 7)
    assert leaf_purity(labels, np.zeros(7, dtype=int)) == pytest.approx(4 / 7)
    assert leaf_purity(labels, np.arange(7)) == 1.0


def _blobs(centres: list[tuple[float, float]], per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(centres)), per)
    x = np.asarray(centres, dtype=float)[labels] + 0.05 * rng.standard_normal((len(labels), 2))
    order = rng.permutation(len(labels))
    return x[order], labels[order]


def _check_ward_tree(clusters: np.ndarray, tree: dict[int, list[int]], root: int, k: int) -> None:
    leaves = sorted(node for node, kids in tree.items() if not kids)
    internal = sorted(node for node, kids in tree.items() if kids)
    assert leaves == list(range(k))
    assert internal == list(range(k, 2 * k - 1))
    assert all(len(tree[node]) == 2 for node in internal)
    assert root == 2 * k - 2
    assert set(np.unique(clusters).tolist()) == set(leaves)
    children = [c for node in internal for c in tree[node]]
    assert sorted(children) == sorted(set(tree) - {root})  # every node but the root is a child exactly once


def test_ward_recovers_separated_blobs() -> None:
    x, labels = _blobs([(0, 0), (10, 0), (0, 10), (10, 10)], per=15, seed=1)
    clusters, tree, root = ward(x, 4)
    _check_ward_tree(clusters, tree, root, 4)
    s = scores(labels, clusters, tree, root)
    assert s["accuracy"] == 1.0 and s["dendrogram_purity"] == pytest.approx(1.0)
    assert s["nmi"] == pytest.approx(1.0) and s["ari"] == pytest.approx(1.0) and s["leaf_purity"] == 1.0
    assert s["clusters"] == 4
    assert clusters[0] == 0  # leaves numbered by first appearance


def test_ward_top_tree_follows_the_merge_order() -> None:
    x, labels = _blobs([(0, 0), (1, 0), (50, 0)], per=10, seed=2)  # blobs 0 and 1 are close
    clusters, tree, root = ward(x, 3)
    _check_ward_tree(clusters, tree, root, 3)
    leaf_of = {int(c): int(labels[clusters == c][0]) for c in np.unique(clusters)}
    inner = next(child for child in tree[root] if tree[child])
    far = next(child for child in tree[root] if not tree[child])
    assert sorted(leaf_of[c] for c in tree[inner]) == [0, 1]
    assert leaf_of[far] == 2


def test_ward_top_tree_cuts_agree_with_sklearn() -> None:
    # On unstructured data, undoing the top tree's last merges one by one must give sklearn's cut at each level.
    x = np.random.default_rng(3).standard_normal((40, 3))
    k = 6
    clusters, tree, root = ward(x, k)
    _check_ward_tree(clusters, tree, root, k)
    ref = AgglomerativeClustering(n_clusters=k, linkage="ward").fit(x).labels_
    assert adjusted_rand_score(ref, clusters) == 1.0
    for level in range(1, k + 1):
        made = range(k, 2 * k - level)  # internal nodes created before the cut at `level` clusters
        top = {node: node for node in range(k)}
        for node in made:
            for child in tree[node]:
                for leaf in [lf for lf, t in top.items() if t == child]:
                    top[leaf] = node
        cut = np.array([top[int(c)] for c in clusters])
        assert len(np.unique(cut)) == level
        ref = AgglomerativeClustering(n_clusters=level, linkage="ward").fit(x).labels_
        assert adjusted_rand_score(ref, cut) == 1.0, level


def test_ward_extremes() -> None:
    x, _ = _blobs([(0, 0), (5, 5)], per=4, seed=4)
    clusters, tree, root = ward(x, 1)
    assert (clusters == 0).all() and tree == {0: []} and root == 0
    clusters, tree, root = ward(x, len(x))
    _check_ward_tree(clusters, tree, root, len(x))
    assert sorted(clusters.tolist()) == list(range(len(x)))
    with pytest.raises(ValueError):
        ward(x, len(x) + 1)
