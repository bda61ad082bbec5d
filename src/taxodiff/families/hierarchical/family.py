"""Model B, hierarchical: a diffusion prior p(z1 | z2) over z1 embeddings, then an image decoder p(x | z1).

Sampling: z1 ~ prior(. | z2) (an MLP denoiser in embedding space), then x ~ decoder(. | z1). The decoder is
the flat model's network, trained for the same steps on the same images; only its condition differs (the
z1 anchor instead of the category). The prior adds an MLP on a 2-D (or d-D) vector, trained in the same
steps with its own learning rate. Its samples are also scored on their own: each is assigned to the
nearest anchor (prior KL), and each image is checked against the z1 it was decoded from (fidelity).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice, nonneg, positive
from taxodiff.config.schema import TrainConfig
from taxodiff.families import images
from taxodiff.families.base import Commands, Parent, Roles
from taxodiff.families.conditional import FLAGS, ConditionalImages
from taxodiff.processes.choices import SAMPLERS

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.families.module import FamilyModule
    from taxodiff.noise import Noise
    from taxodiff.processes.gaussian import GaussianProcess


@dataclass(frozen=True)
class TwoStageNet(images.ImageNet):
    prior_hidden: int = positive(256)  # z1 prior MLP width
    prior_layers: int = positive(3)
    prior_repeats: int = positive(8)  # noise draws of each z1 per step (the prior is cheap)


@dataclass(frozen=True)
class TwoStageTrain(TrainConfig):
    prior_lr: float = positive(1e-3)


@dataclass(frozen=True)
class TwoStageSample(images.ImageSample):
    prior_sampler: str = choice("ddpm", SAMPLERS)
    prior_steps: int = positive(1000)  # the prior is an MLP on a few numbers: full ancestral sampling is cheap
    prior_guidance: float = nonneg(0.0)  # guidance scale of the prior (the decoder's is ``guidance``)


class TwoStage(ConditionalImages):
    name: ClassVar[str] = "hierarchical"
    summary: ClassVar[str] = "a diffusion prior p(z1 | z2) on subtype embeddings, then an image decoder p(x | z1)"
    sections: ClassVar[dict[str, type]] = {
        "net": TwoStageNet,
        "diffusion": images.GaussianDiffusion,
        "train": TwoStageTrain,
        "sample": TwoStageSample,
    }
    roles: ClassVar[Roles] = Roles(
        compared=True, guidance={"guidance": "decoder", "prior_guidance": "prior"}, coarse=True
    )
    commands: ClassVar[Commands] = Commands(
        flags={**FLAGS, "--prior-guidance": ("sample.prior_guidance", "guidance scale of the z1 prior")}
    )

    @property
    def cond_dim(self) -> int:
        return self.hierarchy.num_categories

    def condition(self, z2: Tensor) -> Tensor:
        """The prior's condition: the category, one-hot (B, K)."""
        from torch.nn import functional as F

        return F.one_hot(z2, self.hierarchy.num_categories).float()

    @cached_property
    def prior_process(self) -> GaussianProcess:
        return images.gaussian_process(self.cfg, clip_sample=False)

    def build(self, structure: dict[str, Any] | None = None, parent: Parent | None = None) -> FamilyModule:
        import torch

        from taxodiff.families.module import FamilyModule
        from taxodiff.nets.mlp import MLPConfig, MLPDenoiser

        h, n = self.hierarchy, self.cfg.net
        prior = MLPDenoiser(
            MLPConfig(dim=h.embed_dim, cond_dim=h.num_categories, hidden=n.prior_hidden, layers=n.prior_layers)
        )
        decoder = self.network(structure, h.embed_dim, extra=sum(p.numel() for p in prior.parameters()))
        module = FamilyModule(self, {"prior": prior, "decoder": decoder})
        module.register_buffer("anchors", torch.tensor(h.anchors(), dtype=torch.float32), persistent=False)
        return module

    def image_network(self, module: FamilyModule) -> Any:
        return module.decoder

    def loss(self, module: FamilyModule, batch: dict[str, Tensor], noise: Noise) -> dict[str, Tensor]:
        z1 = module.anchors[batch["z1"]]  # (B, d)
        dec = images.conditional_loss(module.decoder, self.process, batch["images"], z1, self.p_uncond, noise)
        r = self.cfg.net.prior_repeats
        cat = self.condition(batch["z2"]).repeat(r, 1)
        prior = images.conditional_loss(module.prior, self.prior_process, z1.repeat(r, 1), cat, self.p_uncond, noise)
        return {"loss": dec + prior, "decoder": dec.detach(), "prior": prior.detach()}

    def param_groups(self, module: FamilyModule) -> list[dict[str, Any]]:
        return [
            {"params": list(module.decoder.parameters()), "lr": self.cfg.train.lr},
            {"params": list(module.prior.parameters()), "lr": self.cfg.train.prior_lr},
        ]

    def draw(self, module: FamilyModule, sc: Any, z2: Tensor, noise: Noise) -> dict[str, Tensor]:
        """z1 ~ prior(. | z2), then images ~ decoder(. | z1); also the z1 samples and their nearest anchors."""
        import torch

        from taxodiff.evaluate.images import to_uint8

        cat, d = self.condition(z2), self.hierarchy.embed_dim
        prior_shape = (len(z2), d)
        z1 = images.guided_sample(
            module.prior,
            cat,
            sc,
            sc.prior_guidance,
            self.prior_process,
            prior_shape,
            noise,
            sc.prior_sampler,
            sc.prior_steps,
        )
        shape = (len(z2), *self.source.image_shape())
        x = images.guided_sample(module.decoder, z1, sc, sc.guidance, self.process, shape, noise, sc.sampler, sc.steps)
        nearest = torch.cdist(z1.float(), module.anchors.to(z1.device)).argmin(dim=1)
        return {"images": to_uint8(x.clamp(-1, 1)), "z1": z1, "z1_anchor": nearest}

    def evaluate(self, module: FamilyModule, samples: dict[str, Tensor], progress: bool = True) -> dict:
        """The image metrics, plus the prior's own mode metrics (nearest anchor), the fidelity of the images
        to the z1 they were decoded from, and how far the prior's samples lie from the anchors."""
        import torch

        from taxodiff.evaluate.images import settings
        from taxodiff.metrics.modes import fidelity, mode_metrics

        result, pred = images.evaluation(self, samples, module.device, progress)
        h = self.hierarchy
        anchor = samples["z1_anchor"].numpy()
        result["prior"] = mode_metrics(h, samples["z2"].numpy(), anchor, settings(self.source))
        result["fidelity"] = fidelity(anchor, pred, self.cfg.eval.bootstrap, 0)
        dist = torch.cdist(samples["z1"].float(), torch.tensor(h.anchors())).min(dim=1).values
        result["prior_anchor_distance"] = {"mean": float(dist.mean()), "p95": float(dist.quantile(0.95))}
        return result
