"""Model families. Each is an nn.Module with ``loss(batch, gen)``, ``param_groups()`` and ``sample(...)``.

Add a family: one new module and one line in ``FAMILIES``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from taxodiff.config import RunConfig
    from taxodiff.hierarchy import Hierarchy


def build_model(cfg: RunConfig, hierarchy: Hierarchy) -> nn.Module:
    from taxodiff.models.flat import FlatModel
    from taxodiff.models.two_stage import TwoStageModel

    families = {"flat": FlatModel, "hierarchical": TwoStageModel}
    return families[cfg.model](cfg, hierarchy)
