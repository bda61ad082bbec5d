"""The branched family's baseline: one image denoiser eps(x_t, t, class) conditioned on the class (a leaf of the
class tree), with as many parameters as a branched run when ``net.match_parameters`` names its count.

It answers the same requests as the branched family (a coarse request draws each sample's class from
p(class | category) from the same streams, so both are asked for the same classes). Continual learning: a run
whose config names ``parent:`` (a trained labelled run) and holds one class more fine-tunes the whole network,
on the new class's images only (``train.continual_data: new``, what forgets) or on all classes (``all``); the
new class gets its own input column in the condition embedding, the old classes keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice
from taxodiff.config.schema import TrainConfig
from taxodiff.errors import TaxodiffError
from taxodiff.families import images, requests
from taxodiff.families.base import Commands, Parent, Roles, Stage
from taxodiff.families.conditional import FLAGS, ConditionalImages

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.families.module import FamilyModule
    from taxodiff.noise import Noise


@dataclass(frozen=True)
class LabelledTrain(TrainConfig):
    continual_data: str = choice("new", ("new", "all"))  # with parent: fine-tune on the new class only, or on all


class Labelled(ConditionalImages):
    name: ClassVar[str] = "labelled"
    summary: ClassVar[str] = (
        "one image denoiser conditioned on the class: the equal-size baseline of class-tree families"
    )
    sections: ClassVar[dict[str, type]] = {
        "net": images.ImageNet,
        "diffusion": images.GaussianDiffusion,
        "train": LabelledTrain,
        "sample": requests.LeafSample,
    }
    defaults: ClassVar[dict[str, Any]] = requests.DEFAULTS
    extends_parent: ClassVar[bool] = True
    roles: ClassVar[Roles] = Roles(guidance={"guidance": "image"}, coarse=True, weights="given")
    commands: ClassVar[Commands] = Commands(flags={**FLAGS, **requests.FLAGS})

    @classmethod
    def check(cls, cfg: Any) -> None:
        images.check_image_sections(cfg)
        if cfg.sample.request == "classes-cached":
            raise TaxodiffError(
                f"sample.request = 'classes-cached' is invalid for the {cls.name} family: allowed are categories, "
                "classes (its classes share no trajectories)"
            )

    @property
    def cond_dim(self) -> int:
        return self.hierarchy.num_leaves

    def condition(self, leaf: Tensor) -> Tensor:
        from torch.nn import functional as F

        return F.one_hot(leaf, self.hierarchy.num_leaves).float()

    def labels(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["z1"]

    def build(self, structure: dict[str, Any] | None = None, parent: Parent | None = None) -> FamilyModule:
        """The network at the run's own widths, the parent run's (a continual run: it inherits its weights), the
        config's, or matched to net.match_parameters."""
        from taxodiff.families.module import FamilyModule

        if parent is not None and structure is None:
            pc = parent.module.net.cfg
            structure = {"channels": list(pc.channels), "emb_dim": pc.emb_dim}
            net = self.network(structure, self.cond_dim)
            self.inherit(net, parent)
        else:
            net = self.network(structure, self.cond_dim)
        return FamilyModule(self, {"net": net})

    def structure(self, module: FamilyModule) -> dict[str, Any]:
        return {"channels": list(module.net.cfg.channels), "emb_dim": module.net.cfg.emb_dim}

    def inherit(self, net: Any, parent: Parent) -> None:
        """The parent's weights, each old class's condition column moved to its index in this run's tree."""
        if parent.family.name != self.name:
            raise TaxodiffError(f"parent is a {parent.family.name!r} run: a labelled run extends a labelled run")
        names, old = self.hierarchy.leaf_names, parent.family.hierarchy.leaf_names
        self.added_leaf  # noqa: B018 - refuses a tree that does not add exactly one class
        state = net.state_dict()
        for key, value in parent.module.net.state_dict().items():
            if state[key].shape == value.shape:
                state[key] = value.clone()
                continue
            moved = state[key].clone()
            axis = 0 if key.endswith("freqs") else 1
            for i, name in enumerate(old):
                j = names.index(name)
                moved.narrow(axis, j, 1).copy_(value.narrow(axis, i, 1))
            if axis == 1:  # the Fourier features' columns follow the one-hot ones
                k = len(old)
                moved[:, len(names) :] = value[:, k:]
            state[key] = moved
        net.load_state_dict(state)

    @cached_property
    def added_leaf(self) -> int:
        return requests.added_leaf(self)

    def train_set(self) -> Any:
        data = self.source.train_set()
        if not self.cfg.parent or self.cfg.train.continual_data == "all":
            return data
        import torch

        return data.subset(torch.nonzero(data.z1 == self.added_leaf).flatten())

    def stages(self) -> list[Stage]:
        return [Stage("fine-tune" if self.cfg.parent else "train", self.cfg.train.steps)]

    def sample_tag(self, sc: Any) -> str:
        return requests.tag(sc, self.roles.guidance)

    def sample_count(self, sc: Any) -> int:
        return requests.count(self.hierarchy, sc)

    def generate(self, module: FamilyModule, sc: Any, seed: int, progress: bool = True) -> dict[str, Tensor]:
        import torch

        req = requests.request(self.hierarchy, sc, seed)
        bar = images.progress_bar(len(req.keys), f"sample {self.name} g={sc.guidance:g}", progress)

        @torch.no_grad()
        def draw(rows: slice, noise: Noise) -> dict[str, Tensor]:
            return self.draw(module, sc, req.leaf[rows].to(module.device), noise)

        out = requests.draw_request(req, sc.batch_size, seed, draw, sc.request == "classes", bar.update)
        bar.close()
        return out | {"z2": req.z2, "leaf": req.leaf}

    def figures(self, module: FamilyModule, run_dir: Path, samples: dict[str, Tensor], tag: str) -> None:
        requests.figure(self.source, samples, run_dir / "figures" / f"samples_{tag}.png", f"{self.name}, {tag}", tag)
