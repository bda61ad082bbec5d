"""Model B, hierarchical: a diffusion prior p(z1 | z2) over z1 embeddings, then an image decoder p(x | z1).

Sampling: z1 ~ prior(. | z2) (an MLP denoiser in embedding space), then x ~ decoder(. | z1). The decoder
is the same network as the flat model's, trained for the same steps on the same images; only its
condition differs (the z1 anchor instead of the category). The prior adds an MLP on a 2-D (or d-D) vector.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from taxodiff.config import RunConfig, SampleConfig
from taxodiff.hierarchy import Hierarchy
from taxodiff.models.common import decoder_net, gaussian_process, guided_denoiser, image_loss, sample_images
from taxodiff.nets.mlp import MLPConfig, MLPDenoiser


class TwoStageModel(nn.Module):
    family = "hierarchical"

    def __init__(self, cfg: RunConfig, hierarchy: Hierarchy) -> None:
        super().__init__()
        self.cfg, self.hierarchy = cfg, hierarchy
        d = hierarchy.embed_dim
        self.register_buffer("anchors", torch.tensor(hierarchy.anchors(), dtype=torch.float32), persistent=False)
        self.prior = MLPDenoiser(
            MLPConfig(
                dim=d, cond_dim=hierarchy.num_categories, hidden=cfg.net.prior_hidden, layers=cfg.net.prior_layers
            )
        )
        self.decoder = decoder_net(cfg, cond_dim=d)
        self.process = gaussian_process(cfg)
        self.prior_process = gaussian_process(cfg, clip_sample=False)

    def category(self, z2: Tensor) -> Tensor:
        return F.one_hot(z2, self.hierarchy.num_categories).float()  # (B, K)

    def loss(self, batch: dict[str, Tensor], gen: torch.Generator) -> dict[str, Tensor]:
        z1 = self.anchors[batch["z1"]]  # (B, d)
        dec = image_loss(self.decoder, self.process, batch["images"], z1, self.cfg.net.p_uncond, gen)
        r = self.cfg.net.prior_repeats
        prior = image_loss(
            self.prior,
            self.prior_process,
            z1.repeat(r, 1),
            self.category(batch["z2"]).repeat(r, 1),
            self.cfg.net.p_uncond,
            gen,
        )
        return {"loss": dec + prior, "decoder": dec.detach(), "prior": prior.detach()}

    def forward(self, batch: dict[str, Tensor], gen: torch.Generator) -> dict[str, Tensor]:
        return self.loss(batch, gen)

    def param_groups(self) -> list[dict]:
        return [
            {"params": list(self.decoder.parameters()), "lr": self.cfg.train.lr},
            {"params": list(self.prior.parameters()), "lr": self.cfg.train.prior_lr},
        ]

    def nearest_anchor(self, z: Tensor) -> Tensor:
        """Index of the closest z1 anchor of every row of z (B, d)."""
        return torch.cdist(z.float(), self.anchors.to(z.device)).argmin(dim=1)

    @torch.no_grad()
    def sample_prior(self, z2: Tensor, sc: SampleConfig, gen: torch.Generator) -> Tensor:
        device = self.anchors.device
        cond = self.category(z2.to(device))
        return self.prior_process.sample(
            guided_denoiser(self.prior, cond, sc, sc.prior_guidance, self.prior_process, gen),
            (len(z2), self.hierarchy.embed_dim),
            gen,
            sc.prior_sampler,
            sc.prior_steps,
            device,
        )

    @torch.no_grad()
    def sample(
        self, z2: Tensor, sc: SampleConfig, gen: torch.Generator, progress: Callable[[int], None] | None = None
    ) -> dict[str, Tensor]:
        """Images (B, 3, H, W) in [-1, 1], the prior's z1 samples (B, d) and their nearest anchors (B,)."""
        z1 = self.sample_prior(z2, sc, gen)
        x = sample_images(self.decoder, z1, sc, self.process, self.cfg.data.size, gen, progress)
        return {"images": x, "z1": z1, "z1_anchor": self.nearest_anchor(z1)}
