"""Branch discovery on a data source, repeated over seeds: the tree (JSON), how often each clade recurs, whether
the class tree of the config is recovered, and a figure (crossing gaps against time; the dendrogram)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from taxodiff import runs, seeds
from taxodiff.config import RunConfig
from taxodiff.errors import TaxodiffError
from taxodiff.families.branched.discovery import BranchTree, DiscoverySettings, discover


def image_source(cfg: RunConfig) -> Any:
    from taxodiff.data import get_source

    source = get_source(cfg.data.source)(cfg)
    if source.kind != "images":
        raise TaxodiffError(f"branch discovery reads images; data.source = {source.name!r} holds {source.kind}")
    return source


def class_samples(train: Any, num_leaves: int, per_class: int, seed: int) -> list[torch.Tensor]:
    """Up to ``per_class`` training images of every leaf of the class tree, a draw seeded by ``seed``."""
    gen = torch.Generator().manual_seed(seeds.derive(seed, "branches"))
    out = []
    for leaf in range(num_leaves):
        rows = torch.nonzero(train.z1 == leaf).flatten()
        out.append(train.rows(rows[torch.randperm(len(rows), generator=gen)[:per_class]]))
    return out


def clades(tree: BranchTree, names: list[str]) -> list[tuple[str, ...]]:
    """The internal nodes of a tree as sorted tuples of leaf names (the root included)."""
    return [tuple(sorted(names[i] for i in a + b)) for a, b, _ in tree.merges]


def true_clades(root: Any) -> list[tuple[str, ...]]:
    """The internal nodes (with more than one child) of a class tree, as sorted tuples of leaf names."""
    if root.is_leaf:
        return []
    below = [x for c in root.children for x in true_clades(c)]
    mine = tuple(sorted(leaf for c in root.children for leaf in _leaves(c)))
    return below + ([mine] if len(root.children) > 1 else [])


def _leaves(node: Any) -> list[str]:
    return [node.name] if node.is_leaf else [x for c in node.children for x in _leaves(c)]


def never_crossed(tree: BranchTree, names: list[str], eps: float) -> list[list[str]]:
    """Pairs whose similarity never met the crossing rule on the grid (merged at t = 1 only by convention)."""
    sim, c = tree.similarity, len(names)
    return [
        [names[i], names[j]]
        for i in range(c)
        for j in range(i + 1, c)
        if not (sim[:, i, j] >= (sim[:, i, i] + sim[:, j, j]) / 2 - eps).any()
    ]


def tree_json(tree: BranchTree, names: list[str]) -> dict[str, Any]:
    return {
        "classes": names,
        "merges": [{"a": [names[i] for i in a], "b": [names[i] for i in b], "t": t} for a, b, t in tree.merges],
        "branches": [
            {"classes": [names[i] for i in br.classes], "t_start": br.t_start, "t_end": br.t_end}
            for br in tree.branches
        ],
    }


def run_discovery(
    cfg: RunConfig, out: Path, settings: DiscoverySettings, per_class: int, n_seeds: int
) -> dict[str, Any]:
    """Discovery at seeds cfg.seed, +1, ...; writes tree.json (the first seed's tree and the recurrence) and
    figures/branches.png under ``out``."""
    source = image_source(cfg)
    h, train = source.hierarchy, source.train_set()  # the training set is the same for every seed: load it once
    names = list(h.leaf_names)
    trees, used = [], per_class
    for k in range(n_seeds):
        s = cfg.seed + k
        data = class_samples(train, h.num_leaves, per_class, s)
        used = min(len(x) for x in data)  # the paired similarities compare equal numbers of every class
        noise_seed = seeds.derive(s, "branches", "noise") % 2**31
        trees.append(discover(data, replace(settings, seed=noise_seed)))
    counts = Counter(c for t in trees for c in set(clades(t, names)))
    truth = true_clades(h.root)
    result = {
        "settings": settings.__dict__,
        "per_class": per_class,
        "per_class_used": used,  # the smallest class's count when it has fewer images than per_class
        "seeds": [cfg.seed + k for k in range(n_seeds)],
        "tree": tree_json(trees[0], names),
        "never_crossed": never_crossed(trees[0], names, settings.eps),
        "recurrence": [{"clade": list(c), "share": n / n_seeds} for c, n in counts.most_common()],
        "true_tree_recovered": [set(clades(t, names)) == set(truth) for t in trees],
    }
    out.mkdir(parents=True, exist_ok=True)
    runs.write_json(out / "tree.json", result)
    figure(trees[0], names, out / "figures" / "branches.png")
    return result


def figure(tree: BranchTree, names: list[str], path: Path) -> Path:
    from scipy.cluster.hierarchy import dendrogram

    from taxodiff.report.figures import pyplot, save

    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    sim, t, c = tree.similarity, tree.times, len(names)
    for i in range(c):
        for j in range(i + 1, c):
            gap = sim[:, i, j] - (sim[:, i, i] + sim[:, j, j]) / 2
            ax1.plot(t, gap, lw=0.8, alpha=0.7, label=f"{names[i]}-{names[j]}")
    if c * (c - 1) // 2 <= 10:
        ax1.legend(fontsize=7)
    ax1.axhline(0, color="0.5", lw=0.8, ls=":")
    ax1.set_xlabel("diffusion time t")
    ax1.set_ylabel("sim_ij - (sim_ii + sim_jj) / 2")
    ax1.set_title("class pairs: similarity gap (crossing at about 0)")
    ids = {(i,): i for i in range(c)}
    rows = []
    for a, b, when in tree.merges:
        ids[tuple(sorted(a + b))] = c + len(rows)
        rows.append([ids[a], ids[b], when, len(a) + len(b)])
    dendrogram(np.array(rows, dtype=float), labels=names, ax=ax2, color_threshold=0)
    ax2.set_ylabel("merge time t")
    ax2.set_title("branch points (single linkage)")
    return save(fig, path)
