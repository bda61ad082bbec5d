"""Clustering metrics of a learned hierarchy of clusters against true labels, and the Ward baseline.

A TreeVAE learns, without labels, a binary tree of clusters: every sample is routed to one leaf. We score
that hierarchy against the true classes in two ways:

* flat scores of the leaf assignment alone: Hungarian accuracy (best one-to-one matching of clusters to
  classes), normalised mutual information, adjusted Rand index, and leaf purity (each cluster counted
  as its majority class);
* dendrogram purity (Heller & Ghahramani 2005; Kobren et al. 2017), which also scores the tree above the
  leaves: for every pair of distinct points of the same class, take the smallest subtree holding both
  (under the lowest common ancestor of their leaves) and ask what fraction of its points have that class;
  average over all such pairs. A tree that joins the clusters of a class low down scores high, one that
  only meets them at the root scores like the class's share of the data.

A tree is ``Tree = Mapping[int, Sequence[int]]``, node id -> child ids (0, 1 or 2 children), with a root
id given separately; a node absent from the mapping, or mapped to no child, is a leaf. A node with a
single child is a mere link: it holds the same points as its child and creates no same-class pair of its
own, so it changes nothing. Leaves are bags of points: ``clusters`` (N,) holds the leaf id of each sample.

The baseline is Ward agglomerative clustering of features, whose dendrogram, cut to ``n_clusters``
leaves, is a tree of the same form (:func:`ward`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

Tree = Mapping[int, Sequence[int]]

__all__ = [
    "Tree",
    "class_histograms",
    "dendrogram_purity",
    "hungarian_accuracy",
    "leaf_purity",
    "scores",
    "ward",
]


def _check_pair(labels: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    clusters = np.asarray(clusters)
    if labels.ndim != 1 or clusters.shape != labels.shape or len(labels) == 0:
        raise ValueError(f"labels and clusters must be two non-empty (N,) arrays, got {labels.shape}, {clusters.shape}")
    if not (np.issubdtype(labels.dtype, np.integer) and np.issubdtype(clusters.dtype, np.integer)):
        raise ValueError(f"labels and clusters must be integer arrays, got {labels.dtype}, {clusters.dtype}")
    return labels, clusters


def _postorder(tree: Tree, root: int) -> list[int]:
    """Nodes under root (root included), every child before its parent; refuses cycles and shared nodes."""
    order: list[int] = []
    seen = {root}
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        children = list(tree.get(node, ()))
        if len(children) > 2:
            raise ValueError(f"node {node} has {len(children)} children; a tree node has at most 2")
        stack.append((node, True))
        for child in children:
            if child in seen:
                raise ValueError(f"node {child} is reached twice from root {root}: not a tree")
            seen.add(child)
            stack.append((child, False))
    return order


def hungarian_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Fraction of samples right under the best one-to-one matching of clusters to classes.

    The matching may be rectangular: with more clusters than classes the unmatched clusters' samples are
    all wrong, with fewer some classes go unmatched."""
    labels, clusters = _check_pair(labels, clusters)
    table = contingency_matrix(clusters, labels)  # (clusters, classes)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(labels))


def leaf_purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Sum over clusters of the size of its majority class, over N."""
    labels, clusters = _check_pair(labels, clusters)
    return float(contingency_matrix(clusters, labels).max(axis=1).sum() / len(labels))


def class_histograms(
    labels: np.ndarray, clusters: np.ndarray, tree: Tree, root: int, n_classes: int
) -> dict[int, np.ndarray]:
    """Class histogram (n_classes,) of the points under every node reachable from root.

    labels must lie in [0, n_classes); every cluster id must be a leaf under root."""
    labels, clusters = _check_pair(labels, clusters)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]")
    order = _postorder(tree, root)
    leaves = [node for node in order if not tree.get(node, ())]
    stray = np.setdiff1d(np.unique(clusters), np.asarray(leaves, dtype=clusters.dtype))
    if len(stray):
        raise ValueError(f"cluster ids {stray.tolist()} are not leaves of the tree under root {root}")
    hist: dict[int, np.ndarray] = {}
    for node in order:
        children = tree.get(node, ())
        if children:
            hist[node] = np.sum([hist[child] for child in children], axis=0)
        else:
            hist[node] = np.bincount(labels[clusters == node], minlength=n_classes).astype(np.int64)
    return hist


def _pairs(counts: np.ndarray) -> np.ndarray:
    return counts * (counts - 1) // 2


def dendrogram_purity(labels: np.ndarray, clusters: np.ndarray, tree: Tree, root: int) -> float:
    """Dendrogram purity of the tree whose leaves hold the points, as in Kobren et al. 2017.

    Average, over the unordered pairs of distinct points of one class c, of the fraction of class-c points
    under the lowest common ancestor of their two leaves (two points in one leaf: that leaf). Counting per
    node its class histogram h and the pairs whose LCA it is (C(h_c, 2) minus the same inside each child)
    makes it O(nodes x classes). NaN when no class has two points (no pair to average over)."""
    labels, clusters = _check_pair(labels, clusters)
    classes, codes = np.unique(labels, return_inverse=True)
    hist = class_histograms(codes.reshape(-1), clusters, tree, root, len(classes))
    total_pairs = int(_pairs(hist[root]).sum())
    if total_pairs == 0:
        return float("nan")
    acc = 0.0
    for node, h in hist.items():
        here = _pairs(h) - sum((_pairs(hist[child]) for child in tree.get(node, ())), np.zeros_like(h))
        if here.any():
            acc += float((here * h).sum()) / float(h.sum())
    return acc / total_pairs


def scores(labels: np.ndarray, clusters: np.ndarray, tree: Tree, root: int) -> dict[str, float]:
    """accuracy (Hungarian), nmi, ari, leaf_purity, dendrogram_purity, and clusters (distinct leaves used)."""
    labels, clusters = _check_pair(labels, clusters)
    return {
        "accuracy": hungarian_accuracy(labels, clusters),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ari": float(adjusted_rand_score(labels, clusters)),
        "leaf_purity": leaf_purity(labels, clusters),
        "dendrogram_purity": dendrogram_purity(labels, clusters, tree, root),
        "clusters": float(len(np.unique(clusters))),
    }


def ward(features: np.ndarray, n_clusters: int) -> tuple[np.ndarray, dict[int, list[int]], int]:
    """Ward clustering of features (N, D) into n_clusters, with the top of its dendrogram as the tree.

    Returns (clusters, tree, root). The tree's leaves 0..n_clusters-1 are the clusters present after the
    first N - n_clusters merges (numbered by first appearance among the samples, so sample 0 is in leaf 0);
    its internal nodes n_clusters..2 n_clusters-2 are the last n_clusters - 1 merges in merge order, each
    with two children, the root being the final merge."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got {x.shape}")
    n = len(x)
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters must lie in [1, {n}], got {n_clusters}")
    if n == 1:
        return np.zeros(1, dtype=np.int64), {0: []}, 0
    model = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward", compute_full_tree=True).fit(x)
    merges = np.asarray(model.children_, dtype=np.int64)  # merge i joins merges[i] into node n + i
    first_top = n - n_clusters  # merges [first_top, n - 1) form the top tree
    # Top-level ancestor of every node created before the cut, walking merges from last to first.
    top = np.arange(n + first_top)
    for i in range(first_top - 1, -1, -1):
        top[merges[i]] = top[n + i]
    members = top[:n]
    _, first = np.unique(members, return_index=True)
    leaf_nodes = members[np.sort(first)]  # sklearn node ids of the cut's clusters, by first appearance
    leaf_id = {int(node): k for k, node in enumerate(leaf_nodes)}
    clusters = np.array([leaf_id[int(node)] for node in members], dtype=np.int64)

    def rename(node: int) -> int:
        return leaf_id[node] if node < n + first_top else n_clusters + node - n - first_top

    tree: dict[int, list[int]] = {k: [] for k in range(n_clusters)}
    for i in range(first_top, n - 1):
        tree[rename(n + i)] = [rename(int(c)) for c in merges[i]]
    return clusters, tree, 2 * n_clusters - 2
