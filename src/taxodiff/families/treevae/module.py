"""A TreeVAE run's trainable part: the tree VAE (and, after its second stage starts, the refiner U-Net), with
the training phase it is in and the phase's current KL weight, which its loss reads."""

from __future__ import annotations

from typing import Any

from torch import nn

from taxodiff.families.module import FamilyModule


class TreeVAEModule(FamilyModule):
    def __init__(self, family: Any, vae: nn.Module) -> None:
        super().__init__(family, {"vae": vae})
        self.stage = ""  # the training phase (taxodiff.families.treevae.family: tree, split-k, ..., diffusion)
        self.kl_weight = 1.0  # the KL terms' weight at the current step (1 outside training)

    def enter(self, stage: str, kl_weight: float) -> None:
        """Before a training step: the phase it belongs to and its KL weight."""
        self.stage, self.kl_weight = stage, kl_weight
