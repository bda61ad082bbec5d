"""Model A, flat: one image denoiser eps(x_t, t, z2) conditioned on the coarse category only."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from taxodiff.config import RunConfig, SampleConfig
from taxodiff.hierarchy import Hierarchy
from taxodiff.models.common import decoder_net, gaussian_process, image_loss, sample_images


class FlatModel(nn.Module):
    family = "flat"

    def __init__(self, cfg: RunConfig, hierarchy: Hierarchy) -> None:
        super().__init__()
        self.cfg, self.hierarchy = cfg, hierarchy
        self.net = decoder_net(cfg, cond_dim=hierarchy.num_categories)
        self.process = gaussian_process(cfg)

    def condition(self, z2: Tensor) -> Tensor:
        return F.one_hot(z2, self.hierarchy.num_categories).float()  # (B, K)

    def loss(self, batch: dict[str, Tensor], gen: torch.Generator) -> dict[str, Tensor]:
        return {
            "loss": image_loss(
                self.net, self.process, batch["images"], self.condition(batch["z2"]), self.cfg.net.p_uncond, gen
            )
        }

    def forward(self, batch: dict[str, Tensor], gen: torch.Generator) -> dict[str, Tensor]:
        return self.loss(batch, gen)

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.parameters()), "lr": self.cfg.train.lr}]

    @torch.no_grad()
    def sample(
        self, z2: Tensor, sc: SampleConfig, gen: torch.Generator, progress: Callable[[int], None] | None = None
    ) -> dict[str, Tensor]:
        """Images (B, 3, H, W) in [-1, 1] for categories z2 (B,)."""
        device = next(self.parameters()).device
        cond = self.condition(z2.to(device))
        x = sample_images(self.net, cond, sc, self.process, self.cfg.data.size, gen, progress)
        return {"images": x}
