"""A branched run's trainable part: the branched U-Net and the tree it was built for.

The tree (branches on process times, the head of each) is part of the run's structure, saved with every
checkpoint; ``table`` (classes x times -> head) is rebuilt from it and never saved."""

from __future__ import annotations

from typing import Any

from torch import nn

from taxodiff.families.branched.tree import BranchedTree
from taxodiff.families.module import FamilyModule


class BranchedModule(FamilyModule):
    def __init__(self, family: Any, net: nn.Module, tree: BranchedTree) -> None:
        super().__init__(family, {"net": net})
        self.tree = tree
        self.register_buffer("table", tree.head_table(family.hierarchy.leaf_names), persistent=False)
