"""Model A, flat: one image denoiser eps(x_t, t, z2) conditioned on the coarse category only.

The baseline of every hierarchical family: the same decoder network, data and training budget, asked for a
category ("an animal") and left to find its subtypes' proportions on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from taxodiff.families.base import Roles
from taxodiff.families.conditional import ConditionalImages

if TYPE_CHECKING:
    from torch import Tensor


class Flat(ConditionalImages):
    name: ClassVar[str] = "flat"
    summary: ClassVar[str] = "one image denoiser conditioned on the category z2"
    roles: ClassVar[Roles] = Roles(compared=True, baseline=True, guidance={"guidance": "image"}, coarse=True)

    @property
    def cond_dim(self) -> int:
        return self.hierarchy.num_categories

    def condition(self, z2: Tensor) -> Tensor:
        from torch.nn import functional as F

        return F.one_hot(z2, self.hierarchy.num_categories).float()  # (B, K)
