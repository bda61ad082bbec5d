"""The shape of a TreeVAE: a rooted tree whose nodes keep their ids for life.

Every node has 0 (a leaf: it decodes), 1 (a link left by pruning: it passes every sample on) or 2 children
(it routes). Splitting a leaf gives it two new children; pruning a leaf removes it and leaves its parent with
one child. Ids are never reused, so a leaf's index does not drift as the tree grows (a defect of the seed's
code). ``growing`` names the node whose new subtree is being trained (None outside a split phase).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    children: list[int] = field(default_factory=list)


@dataclass
class Tree:
    nodes: dict[int, Node]
    next_id: int
    growing: int | None = None

    @classmethod
    def initial(cls) -> Tree:
        """A root and two leaves."""
        tree = cls({0: Node(0, None, 0)}, 1)
        tree.split(0)
        return tree

    @classmethod
    def single(cls) -> Tree:
        """A root alone (a plain VAE)."""
        return cls({0: Node(0, None, 0)}, 1)

    root = 0  # the root's id (a class constant, not a field)

    # -- reading ------------------------------------------------------------------------------------------
    def leaves(self) -> list[int]:
        return [i for i, n in sorted(self.nodes.items()) if not n.children]

    def routers(self) -> list[int]:
        """Nodes with two children (each has a generative and an inference router)."""
        return [i for i, n in sorted(self.nodes.items()) if len(n.children) == 2]

    def order(self, start: int = 0) -> list[int]:
        """The subtree of ``start`` top-down (parents before children), children in id order."""
        out, todo = [], [start]
        while todo:
            i = todo.pop(0)
            out.append(i)
            todo.extend(self.nodes[i].children)
        return out

    def path(self, node: int) -> list[int]:
        """Root ... node."""
        out = [node]
        while self.nodes[out[-1]].parent is not None:
            out.append(self.nodes[out[-1]].parent)  # type: ignore[arg-type]
        return out[::-1]

    def subtree_leaves(self, node: int) -> list[int]:
        return [i for i in self.order(node) if not self.nodes[i].children]

    def depth(self) -> int:
        return max(n.depth for n in self.nodes.values())

    def children_map(self) -> dict[int, list[int]]:
        """{node: children}, for the clustering metrics."""
        return {i: list(n.children) for i, n in self.nodes.items()}

    # -- changing -----------------------------------------------------------------------------------------
    def split(self, leaf: int) -> tuple[int, int]:
        node = self.nodes[leaf]
        if node.children:
            raise ValueError(f"node {leaf} is not a leaf")
        ids = (self.next_id, self.next_id + 1)
        for i in ids:
            self.nodes[i] = Node(i, leaf, node.depth + 1)
        node.children = list(ids)
        self.next_id += 2
        return ids

    def prune(self, leaf: int) -> None:
        """Remove a leaf whose parent has two children (the sibling then receives every sample)."""
        node = self.nodes[leaf]
        parent = self.nodes[node.parent] if node.parent is not None else None
        if node.children or parent is None or len(parent.children) != 2:
            raise ValueError(f"node {leaf} cannot be pruned: only a leaf with a sibling can")
        parent.children.remove(leaf)
        del self.nodes[leaf]

    # -- JSON ---------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": [{"id": n.id, "parent": n.parent, "children": n.children} for _, n in sorted(self.nodes.items())],
            "next_id": self.next_id,
            "growing": self.growing,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tree:
        nodes = {
            int(d["id"]): Node(int(d["id"]), d["parent"], 0, [int(c) for c in d["children"]]) for d in data["nodes"]
        }
        tree = cls(nodes, int(data["next_id"]), data.get("growing"))
        for i in tree.order():
            p = nodes[i].parent
            nodes[i].depth = 0 if p is None else nodes[p].depth + 1
        return tree
