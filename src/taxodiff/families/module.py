"""The trainable part of any family: its named networks in one ``nn.Module``.

Checkpoint keys are ``<network>.<parameter>``; ``forward(batch, noise)`` is the family's training loss, so a
data-parallel wrapper sees the call; ``param_groups()`` gives the optimiser its groups. The family object
(config, processes, how to sample) rides along, outside the module's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

if TYPE_CHECKING:
    from taxodiff.noise import Noise


class FamilyModule(nn.Module):
    def __init__(self, family: Any, nets: dict[str, nn.Module]) -> None:  # family: a taxodiff Family
        super().__init__()
        self.family = family  # not a module: an attribute, not in the state dict
        for name, net in nets.items():
            self.add_module(name, net)

    def forward(self, batch: dict[str, Tensor], noise: Noise) -> dict[str, Tensor]:
        return self.family.loss(self, batch, noise)

    def param_groups(self) -> list[dict[str, Any]]:
        return self.family.param_groups(self)

    @property
    def device(self) -> Any:
        return next(self.parameters()).device
