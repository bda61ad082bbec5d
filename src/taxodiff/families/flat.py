"""Model A, flat: one image denoiser eps(x_t, t, z2) conditioned on the coarse category only.

The baseline of every hierarchical family: the same decoder network, data and training budget, asked for a
category ("an animal") and left to find its subtypes' proportions on its own.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.families import images
from taxodiff.families.base import Family, Parent

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.families.module import FamilyModule
    from taxodiff.noise import Noise


class Flat(images.ImageScores, Family):
    name: ClassVar[str] = "flat"
    summary: ClassVar[str] = "one image denoiser conditioned on the category z2"
    data_kinds: ClassVar[tuple[str, ...]] = ("images",)
    sections: ClassVar[dict[str, type]] = {
        "net": images.ImageNet,
        "diffusion": images.GaussianDiffusion,
        "sample": images.ImageSample,
    }
    guidance_knobs: ClassVar[dict[str, str]] = {"guidance": "image"}
    flags: ClassVar[dict[str, tuple[str, str]]] = {
        "--sampler": ("sample.sampler", "ddpm (ancestral, default), ddim or dpmsolver++"),
        "--steps": ("sample.steps", "sampling steps (network evaluations per sample, x2 if guided)"),
        "--guidance": ("sample.guidance", "guidance scale of the image network; 0 = the conditional model"),
        "--guidance-method": (
            "sample.guidance_method",
            "cfg (default), interval, cads, apg, cfg-zero-star, tcfg, fdg, mambo",
        ),
        "--n-per-category": ("sample.n_per_category", "samples per category"),
    }

    @classmethod
    def check(cls, cfg: Any) -> None:
        images.check_image_sections(cfg)

    @cached_property
    def process(self) -> Any:
        return images.gaussian_process(self.cfg)

    def condition(self, z2: Tensor) -> Tensor:
        from torch.nn import functional as F

        return F.one_hot(z2, self.hierarchy.num_categories).float()  # (B, K)

    def build(self, structure: dict[str, Any] | None = None, parent: Parent | None = None) -> FamilyModule:
        from taxodiff.families.module import FamilyModule

        channels = self.source.image_shape()[0]
        return FamilyModule(self, {"net": images.unet(self.cfg, channels, self.hierarchy.num_categories)})

    def loss(self, module: FamilyModule, batch: dict[str, Tensor], noise: Noise) -> dict[str, Tensor]:
        cond = self.condition(batch["z2"])
        return {"loss": images.conditional_loss(module.net, self.process, batch["images"], cond, self.p_uncond, noise)}

    @property
    def p_uncond(self) -> float:
        return self.cfg.net.p_uncond

    def sample_tag(self, sc: Any) -> str:
        return images.sample_tag(sc, self.guidance_knobs)

    def sample_count(self, sc: Any) -> int:
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

    def draw(self, module: FamilyModule, sc: Any, z2: Tensor, noise: Noise) -> dict[str, Tensor]:
        """One batch of samples for the asked categories z2 (B,): uint8 images (B, C, H, W)."""
        from taxodiff.evaluate.images import to_uint8

        cond = self.condition(z2)
        shape = (len(z2), *self.source.image_shape())
        x = images.guided_sample(module.net, cond, sc, sc.guidance, self.process, shape, noise, sc.sampler, sc.steps)
        return {"images": to_uint8(x.clamp(-1, 1))}

    def save_figures(self, run_dir: Path, samples: dict[str, Tensor], tag: str) -> None:
        images.category_figure(
            self.source, samples, run_dir / "figures" / f"samples_{tag}.png", f"{self.name} model, {tag}"
        )
