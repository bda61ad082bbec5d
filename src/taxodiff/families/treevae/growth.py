"""Growing and pruning decisions, read off the tree's inference routers on the training images.

A leaf *holds* an image it receives with probability at least min(1/leaves, 0.5) (the seed's rule; an image
may be held by several leaves when its probabilities are spread). The leaf to split is the one holding the
most images among those above ``min_split`` and shallower than the depth limit; a split trains on the images
the leaf holds, however few (the trainer samples them with replacement when they are fewer than a batch).
Pruning removes leaves that are the most probable leaf of less than a share of the images, smallest first,
never both children of a node.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

BATCH = 1024


@torch.no_grad()
def node_probs(net: Any, data: Any, start: int = 0) -> dict[int, Tensor]:
    """Probability of reaching every node of ``start``'s subtree, for every image of ``data`` (on the CPU)."""
    device = next(net.parameters()).device
    was = net.training
    net.eval()
    parts: list[dict[int, Tensor]] = []
    for i in range(0, len(data), BATCH):
        x = (data.rows(slice(i, i + BATCH)).to(device) + 1) / 2
        parts.append({k: v.float().cpu() for k, v in net.node_probs(x, start).items()})
    net.train(was)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def assign(net: Any, data: Any) -> Tensor:
    """The most probable leaf (id) of every image."""
    prob = node_probs(net, data)
    leaves = net.tree.leaves()
    return torch.tensor(leaves)[torch.stack([prob[i] for i in leaves], dim=1).argmax(dim=1)]


def threshold(n_leaves: int) -> float:
    return min(1.0 / n_leaves, 0.5)


def held(net: Any, data: Any, node: int, n_leaves: int) -> Tensor:
    """Rows of ``data`` that ``node`` holds when the tree has ``n_leaves`` leaves."""
    return torch.nonzero(node_probs(net, data)[node] >= threshold(n_leaves)).flatten()


def leaf_to_split(net: Any, data: Any, max_depth: int, min_split: int) -> int | None:
    tree = net.tree
    prob, leaves = node_probs(net, data), tree.leaves()
    counts = {leaf: int((prob[leaf] >= threshold(len(leaves))).sum()) for leaf in leaves}
    ok = [leaf for leaf in leaves if tree.nodes[leaf].depth < max_depth and counts[leaf] >= min_split]
    return max(ok, key=lambda leaf: (counts[leaf], -leaf)) if ok else None


def leaves_to_prune(net: Any, data: Any, share: float) -> list[int]:
    """Leaves to remove, in order (each still has a sibling when its turn comes)."""
    tree = net.tree
    best = assign(net, data)
    counts = {leaf: int((best == leaf).sum()) for leaf in tree.leaves()}
    small = sorted((c, leaf) for leaf, c in counts.items() if c < share * len(data))
    out: list[int] = []
    children = {i: list(n.children) for i, n in tree.nodes.items()}
    for _, leaf in small:
        parent = tree.nodes[leaf].parent
        if parent is not None and len(children[parent]) == 2:
            children[parent].remove(leaf)
            out.append(leaf)
    return out


def category_nodes(net: Any, data: Any, n_categories: int) -> dict[str, Any]:
    """For every category: the node whose subtree's training images (most probable leaf) best match the
    category's (F1), with that F1."""
    tree = net.tree
    best = assign(net, data).numpy()
    z2 = data.z2.numpy()
    nodes, f1s = [], []
    for c in range(n_categories):
        truth = z2 == c
        scored = []
        for i in tree.order():
            inside = torch.isin(torch.from_numpy(best), torch.tensor(tree.subtree_leaves(i))).numpy()
            tp = float((inside & truth).sum())
            f1 = 2 * tp / max(float(inside.sum() + truth.sum()), 1.0)
            scored.append((f1, -tree.nodes[i].depth, i))
        f1, _, node = max(scored)
        nodes.append(node)
        f1s.append(round(f1, 4))
    return {"node": nodes, "f1": f1s}


def start_split(net: Any, data: Any, node: int, n_leaves: int, seed: int, steps: int = 200) -> None:
    """Break the symmetry of a new split without labels: 2-means of the bottom-up features of the images
    ``node`` holds, and both routers of ``node`` fitted to that partition (logistic loss, full batch) before the
    subtree's ELBO training starts. Without it the routers settled on one side within a few steps and most
    splits were emptied by pruning (digits: 5 of 10 leaves left, the rest single-child links)."""
    from sklearn.cluster import KMeans
    from torch.nn import functional as F

    rows = held(net, data, node, n_leaves)
    if len(rows) < 2:
        return
    device = next(net.parameters()).device
    was = net.training
    net.eval()
    with torch.no_grad():
        x = (data.rows(rows).to(device) + 1) / 2
        feats = net.feature(net.features(x), node).float()
        z = net.run(x, None).z[node].float()
    km = KMeans(2, n_init=4, random_state=seed % 2**31).fit(feats.cpu().numpy())
    left = torch.as_tensor(km.labels_ == 0, dtype=torch.float32, device=device)
    key = str(node)
    params = [*net.router_q[key].parameters(), *net.router_p[key].parameters()]
    net.router_q[key].train()  # their batch norms, if any, learn the held images' statistics
    net.router_p[key].train()
    opt = torch.optim.Adam(params, lr=1e-2)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(net.router_q[key](feats).squeeze(-1), left)
        loss = loss + F.binary_cross_entropy_with_logits(net.router_p[key](z).squeeze(-1), left)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.train(was)
