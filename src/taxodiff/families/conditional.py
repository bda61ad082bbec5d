"""An image denoiser eps(x_t, t, c) conditioned on a vector c made from a sample's labels, asked category by
category: what the flat, hierarchical and label-conditioned families share.

A subclass says what its condition is (``cond_dim``, ``condition(batch or labels)``) and, where it differs, how
a batch of samples is drawn (``draw``); training with condition dropout, classifier-free guided sampling of the
coarse request (n samples of every category), the samples' tag and figures and the image evaluation are here.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.families import images
from taxodiff.families.base import Commands, Family, Parent

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.families.module import FamilyModule
    from taxodiff.noise import Noise
    from taxodiff.processes.gaussian import GaussianProcess

FLAGS: dict[str, tuple[str, str]] = {
    "--sampler": ("sample.sampler", "ddpm (ancestral, default), ddim or dpmsolver++"),
    "--steps": ("sample.steps", "sampling steps (network evaluations per sample, x2 if guided)"),
    "--guidance": ("sample.guidance", "guidance scale of the image network; 0 = the conditional model"),
    "--guidance-method": (
        "sample.guidance_method",
        "cfg (default), interval, cads, apg, cfg-zero-star, tcfg, fdg, mambo",
    ),
    "--n-per-category": ("sample.n_per_category", "samples per category"),
}


class ConditionalImages(images.ImageScores, Family):
    data_kinds: ClassVar[tuple[str, ...]] = ("images",)
    sections: ClassVar[dict[str, type]] = {
        "net": images.ImageNet,
        "diffusion": images.GaussianDiffusion,
        "sample": images.ImageSample,
    }
    commands: ClassVar[Commands] = Commands(flags=FLAGS)

    @classmethod
    def check(cls, cfg: Any) -> None:
        images.check_image_sections(cfg)

    @cached_property
    def process(self) -> GaussianProcess:
        return images.gaussian_process(self.cfg)

    @property
    def cond_dim(self) -> int:
        raise NotImplementedError

    def condition(self, labels: Tensor) -> Tensor:
        """The condition vectors (B, cond_dim) of the labels a sample is asked for."""
        raise NotImplementedError

    def labels(self, batch: dict[str, Tensor]) -> Tensor:
        """The labels of a training batch that the condition is made from (default: the category)."""
        return batch["z2"]

    @property
    def p_uncond(self) -> float:
        return self.cfg.net.p_uncond

    def build(self, structure: dict[str, Any] | None = None, parent: Parent | None = None) -> FamilyModule:
        from taxodiff.families.module import FamilyModule

        return FamilyModule(self, {"net": self.network(structure, self.cond_dim)})

    def network(self, structure: dict[str, Any] | None, cond_dim: int, extra: int = 0) -> Any:
        """The image network for conditions of ``cond_dim``: the config's widths, the run's own, or matched to
        net.match_parameters with ``extra`` parameters of the family's other networks."""
        base = images.unet_config(self.cfg, self.source.image_shape()[0], cond_dim)
        channels, emb_dim = images.widths(self.cfg, base, structure, extra)
        return images.unet(self.cfg, base.in_channels, base.cond_dim, channels=channels, emb_dim=emb_dim)

    def structure(self, module: FamilyModule) -> dict[str, Any] | None:
        """The image network's widths where they were matched (the config alone defines them otherwise)."""
        if not self.cfg.net.match_parameters:
            return None
        net = self.image_network(module)
        return {"channels": list(net.cfg.channels), "emb_dim": net.cfg.emb_dim}

    def image_network(self, module: FamilyModule) -> Any:
        return module.net

    def loss(self, module: FamilyModule, batch: dict[str, Tensor], noise: Noise) -> dict[str, Tensor]:
        cond = self.condition(self.labels(batch))
        return {"loss": images.conditional_loss(module.net, self.process, batch["images"], cond, self.p_uncond, noise)}

    # -- sampling -----------------------------------------------------------------------------------------
    def sample_tag(self, sc: Any) -> str:
        return images.sample_tag(sc, self.roles.guidance)

    def sample_count(self, sc: Any) -> int | None:
        return sc.n_per_category * self.hierarchy.num_categories

    def generate(self, module: FamilyModule, sc: Any, seed: int, progress: bool = True) -> dict[str, Tensor]:
        import torch

        from taxodiff.families.sampling import draw_in_batches

        z2, keys = images.requests(self.hierarchy.num_categories, sc.n_per_category)
        bar = images.progress_bar(len(keys), f"sample {self.name} g={sc.guidance:g}", progress)

        @torch.no_grad()
        def draw(rows: slice, noise: Noise) -> dict[str, Tensor]:
            return self.draw(module, sc, z2[rows].to(module.device), noise)

        out = draw_in_batches(keys, sc.batch_size, seed, draw, bar.update)
        bar.close()
        return out | {"z2": z2}

    def draw(self, module: FamilyModule, sc: Any, labels: Tensor, noise: Noise) -> dict[str, Tensor]:
        """One batch of samples for the asked labels (B,): uint8 images (B, C, H, W)."""
        from taxodiff.evaluate.images import to_uint8

        cond = self.condition(labels)
        shape = (len(labels), *self.source.image_shape())
        x = images.guided_sample(module.net, cond, sc, sc.guidance, self.process, shape, noise, sc.sampler, sc.steps)
        return {"images": to_uint8(x.clamp(-1, 1))}

    def figures(self, module: FamilyModule, run_dir: Path, samples: dict[str, Tensor], tag: str) -> None:
        images.category_figure(
            self.source, samples, run_dir / "figures" / f"samples_{tag}.png", f"{self.name} model, {tag}"
        )
