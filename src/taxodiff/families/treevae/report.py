"""The learned tree drawn: every node with its share of the held-out images and their class histogram, every
leaf with reconstructions of images it holds; and sample grids by learned leaf."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from taxodiff.families.treevae import growth, scoring
from taxodiff.report import figures


def leaf_grid(samples: dict[str, torch.Tensor], tree: Any, path: Path, title: str) -> Path:
    """One panel per learned leaf with its samples."""
    leaves = [i for i in tree.leaves() if (samples["node_leaf"] == i).any()]
    index = {leaf: k for k, leaf in enumerate(leaves)}
    z = np.array([index.get(int(i), -1) for i in samples["node_leaf"]])
    names = [f"leaf {i}" for i in leaves]
    return figures.category_grid(samples["images"].numpy(), z, names, path, title, per_category=16, cols=8)


def layout(tree: Any) -> dict[int, tuple[float, float]]:
    """(x, y) of every node: leaves evenly spaced left to right, a parent above the middle of its children."""
    pos: dict[int, tuple[float, float]] = {}
    leaves = [i for i in _in_order(tree, tree.root) if not tree.nodes[i].children]
    for k, leaf in enumerate(leaves):
        pos[leaf] = (k, -tree.nodes[leaf].depth)
    for i in reversed(tree.order()):
        kids = tree.nodes[i].children
        if kids:
            pos[i] = (float(np.mean([pos[c][0] for c in kids])), -tree.nodes[i].depth)
    return pos


def _in_order(tree: Any, node: int) -> list[int]:
    out = [node]
    for c in tree.nodes[node].children:
        out += _in_order(tree, c)
    return out


@torch.no_grad()
def tree_figure(module: Any, data: Any, hierarchy: Any, path: Path, per_leaf: int = 4) -> Path:
    plt = figures.pyplot()
    net = module.vae
    tree, info = net.tree, scoring.summary(net, data, hierarchy)["nodes"]
    pos = layout(tree)
    n_leaves, depth = len(tree.leaves()), tree.depth()
    fig = plt.figure(figsize=(max(6.0, 1.5 * n_leaves), 1.7 * (depth + 1) + 1.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.6, n_leaves - 0.4)
    ax.set_ylim(-depth - 1.35, 0.45)
    ax.axis("off")
    for i, node in tree.nodes.items():
        for c in node.children:
            ax.plot([pos[i][0], pos[c][0]], [pos[i][1] - 0.18, pos[c][1] + 0.3], color="0.6", lw=1, zorder=0)
    names = hierarchy.leaf_labels
    for i in tree.order():
        x, y = pos[i]
        counts = np.array(info[str(i)]["classes"], dtype=float)
        inset = _axes_at(fig, ax, x - 0.42, y - 0.12, 0.84, 0.38)
        inset.bar(range(len(counts)), counts / max(counts.sum(), 1), color="tab:blue")
        inset.set_ylim(0, 1)
        inset.set_xticks(range(len(names)))
        inset.set_xticklabels(names, fontsize=5, rotation=90 if len(names) > 4 else 0)
        inset.set_yticks([])
        inset.set_title(f"node {i}: {100 * info[str(i)]['share']:.0f}%", fontsize=7, pad=2)
    best = growth.assign(net, data)
    device = next(net.parameters()).device
    for leaf in tree.leaves():
        rows = torch.nonzero(best == leaf).flatten()[:per_leaf]
        if len(rows) == 0:
            continue
        rec, _ = net.reconstruct((data.rows(rows).to(device) + 1) / 2)
        x, y = pos[leaf]
        strip = rec.cpu().numpy().transpose(0, 2, 3, 1)
        tile = np.concatenate(list(strip), axis=0)
        img = _axes_at(fig, ax, x - 0.2, y - 1.25, 0.4, 0.95)
        img.imshow(tile.squeeze(-1) if tile.shape[-1] == 1 else tile, cmap="gray", vmin=0, vmax=1)
        img.axis("off")
    return figures.save(fig, path)


def _axes_at(fig: Any, ax: Any, x: float, y: float, w: float, h: float) -> Any:
    """New axes at data coordinates (x, y, w, h) of ``ax``."""
    to_fig = ax.transData + fig.transFigure.inverted()
    (x0, y0), (x1, y1) = to_fig.transform([(x, y), (x + w, y + h)])
    return fig.add_axes((x0, y0, x1 - x0, y1 - y0))


def purity_figure(hist: dict[str, dict[str, list[int]]], class_names: list[str], path: Path) -> Path:
    """One panel per learned leaf: the class histogram (shares) of every set in ``hist`` ({set: {leaf: counts}})."""
    plt = figures.pyplot()
    leaves = sorted({leaf for h in hist.values() for leaf in h}, key=int)
    cols = min(5, len(leaves))
    rows = -(-len(leaves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 1.9 * rows + 0.5), squeeze=False)
    width = 0.8 / len(hist)
    for ax, leaf in zip(axes.flat, leaves, strict=False):
        for k, (name, h) in enumerate(hist.items()):
            counts = np.array(h.get(leaf, [0] * len(class_names)), dtype=float)
            xs = np.arange(len(class_names)) + (k - (len(hist) - 1) / 2) * width
            ax.bar(xs, counts / max(counts.sum(), 1), width, label=name)
        ax.set_title(f"leaf {leaf}", fontsize=8)
        ax.set_xticks(range(len(class_names)))
        ax.set_xticklabels(class_names, fontsize=6)
        ax.set_ylim(0, 1)
        ax.tick_params(axis="y", labelsize=6)
    for ax in axes.flat[len(leaves) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    return figures.save(fig, path)
