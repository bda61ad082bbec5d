"""Model D, branched (seed 004): one U-Net trunk and a decoder head per branch of a class tree found in the data.

At the start of training the branch points are discovered on the training images (taxodiff.families.branched.discovery,
on this process's own noise schedule: a branch point is a noise level) and kept as a tree on process times
(taxodiff.families.branched.tree). A training sample (class c, time t) trains the head of the branch that holds c at t;
the trunk is shared by all. Sampling a class follows its path from the root down; a coarse request ("an
animal") draws each sample's class from p(class | category) and sends it down that class's path, so the
family is scored by the same mode metrics as the others; ``classes-cached`` samples every class at once,
sharing each trajectory above the branch points (each branch's steps are the sampling grid's steps inside it).

Continual learning: a run whose config names ``parent:`` (a trained branched run) and holds one class more
than it attaches that class as a new leaf branch, joined where the new class crosses its nearest class, and
trains only that branch's head on that class's images; every other weight stays as it was, so the old classes'
samples are bit-identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice, nonneg, positive, within
from taxodiff.errors import TaxodiffError
from taxodiff.families import images, requests
from taxodiff.families.base import Commands, Family, Parent, Roles, Stage
from taxodiff.families.branched.commands import VERBS

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.families.branched.tree import BranchedTree
    from taxodiff.families.module import FamilyModule
    from taxodiff.noise import Noise
    from taxodiff.processes.gaussian import GaussianProcess


@dataclass(frozen=True)
class BranchedNet(images.ImageNet):
    # up levels of the U-Net that each branch has to itself (the rest is the shared trunk); as many as
    # net.channels: a whole decoder per branch, as in the seed's network
    head_levels: int = positive(1)
    # true: the trunk also reads a learned vector per branch (added to its time embedding); false (the seed's
    # design): the trunk is unconditional. On MNIST it changed nothing measurable (class accuracy 0.481 vs 0.484)
    branch_codes: bool = False
    # heads: a shared trunk and head_levels up levels per branch; whole: a whole U-Net per branch (encoder and
    # middle included), nothing shared, as the seed trains it
    branch_network: str = choice("heads", ("heads", "whole"))
    branch_per_class: int = positive(100)  # training images per class that discovery reads
    branch_eps: float = nonneg(0.005)  # tolerance of the crossing rule
    branch_smooth: float = nonneg(3.0)  # Gaussian smoothing of the similarity curves (time-grid steps)
    branch_draws: int = positive(1)  # noise draws per time point
    # shortest branch, as a share of the process's time (0 <= x < 0.5): shorter internal branches are merged into
    # the branch above, leaf branches lengthened to it (taxodiff.families.branched.discovery.min_length)
    branch_min_length: float = nonneg(0.05)
    # every discovered branch point's distance from pure noise times this (0 <= x <= 1): below 1 the classes part
    # earlier in generation and the unconditional root is shorter (1: as discovered; 0: every class its own
    # branch below a root of branch_min_length)
    branch_scale: float = within(1.0, 0.0, 1.0)


class Branched(images.ImageScores, Family):
    name: ClassVar[str] = "branched"
    summary: ClassVar[str] = "a U-Net trunk and a head per branch of a class tree discovered in the data (seed 004)"
    data_kinds: ClassVar[tuple[str, ...]] = ("images",)
    sections: ClassVar[dict[str, type]] = {
        "net": BranchedNet,
        "diffusion": images.GaussianDiffusion,
        "sample": requests.LeafSample,
    }
    defaults: ClassVar[dict[str, Any]] = requests.DEFAULTS
    extends_parent: ClassVar[bool] = True
    roles: ClassVar[Roles] = Roles(coarse=True, weights="given")
    commands: ClassVar[Commands] = Commands(
        flags={
            "--steps": ("sample.steps", "sampling steps over the whole time span (a branch gets those inside it)"),
            "--n-per-category": ("sample.n_per_category", "samples per category (request categories)"),
            **requests.FLAGS,
        },
        verbs=VERBS,
        alias=True,
    )

    @classmethod
    def check(cls, cfg: Any) -> None:
        images.check_image_sections(cfg)
        n, sc = cfg.net, cfg.sample
        if n.arch != "unet":
            raise TaxodiffError(f"net.arch = {n.arch!r} is invalid for the branched family: allowed is unet")
        if n.head_levels > len(n.channels):
            raise TaxodiffError(
                f"net.head_levels = {n.head_levels} is invalid: allowed is 1..{len(n.channels)} (one per width)"
            )
        if n.branch_network == "whole" and n.branch_codes:
            raise TaxodiffError(
                "net.branch_codes = true is invalid with net.branch_network = 'whole': allowed is false (whole "
                "networks share no trunk to tell which branch it serves)"
            )
        if not n.branch_min_length < 0.5:
            raise TaxodiffError(f"net.branch_min_length = {n.branch_min_length} is invalid: allowed is 0 <= x < 0.5")
        if sc.sampler != "ddpm":
            raise TaxodiffError(f"sample.sampler = {sc.sampler!r} is invalid for the branched family: allowed is ddpm")
        if sc.guidance != 0:
            raise TaxodiffError(
                f"sample.guidance = {sc.guidance} is invalid: the branched family has no condition to guide "
                "(allowed: 0)"
            )

    @cached_property
    def process(self) -> GaussianProcess:
        return images.gaussian_process(self.cfg)

    # -- the tree -----------------------------------------------------------------------------------------
    def discovery_settings(self) -> Any:
        from taxodiff import seeds
        from taxodiff.families.branched.discovery import DiscoverySettings

        n = self.cfg.net
        return DiscoverySettings(
            draws=n.branch_draws,
            smooth=n.branch_smooth,
            eps=n.branch_eps,
            seed=seeds.derive(self.cfg.seed, "branches", "noise") % 2**31,
            min_length=max(n.branch_min_length, 1.5 / self.process.T),  # whole process steps, never 0
            scale=n.branch_scale,
        )

    def levels(self) -> Any:
        """The signal level abar at process times 0..T, on which discovery runs."""
        import torch

        return self.process.abar(torch.arange(self.process.T + 1)).double().numpy()

    def class_images(self) -> list[Tensor]:
        from taxodiff.families.branched.discovery_runs import class_samples

        h = self.hierarchy
        return class_samples(self.full_train_set, h.num_leaves, self.cfg.net.branch_per_class, self.cfg.seed)

    def discover(self) -> BranchedTree:
        """The branched tree of the training data, on this process's times."""
        from taxodiff.families.branched.discovery import discover
        from taxodiff.families.branched.tree import BranchedTree

        found = discover(self.class_images(), self.discovery_settings(), self.levels())
        return BranchedTree.from_discovery(found.branches, self.hierarchy.leaf_names, self.process.T)

    def join(self, tree: BranchedTree, new: str) -> tuple[str, int]:
        """(nearest old class, process time) where class ``new`` joins the tree: its earliest crossing."""
        from taxodiff.families.branched.discovery import crossings, similarity_curves

        names = self.hierarchy.leaf_names
        s = self.discovery_settings()
        curves_t, sim = similarity_curves(self.class_images(), s, self.levels())
        cross = crossings(curves_t, sim, s)[names.index(new)]
        old = [i for i, name in enumerate(names) if name != new]
        near = min(old, key=lambda i: cross[i])
        T, m = self.process.T, math.ceil(self.cfg.net.branch_min_length * self.process.T)
        return names[near], min(max(round(cross[near] * T), m, 1), T - max(m, 1))

    # -- building and training ----------------------------------------------------------------------------
    def build(self, structure: dict[str, Any] | None = None, parent: Parent | None = None) -> FamilyModule:
        import copy

        from taxodiff.families.branched.module import BranchedModule
        from taxodiff.families.branched.tree import BranchedTree

        if structure is not None:
            tree = BranchedTree.from_json(structure["tree"])
            net = self.network(tree.heads, structure)
        elif parent is not None:
            if parent.family.name != self.name:
                raise TaxodiffError(f"parent is a {parent.family.name!r} run: a branched run extends a branched run")
            old: BranchedTree = parent.module.tree
            new = self.hierarchy.leaf_names[self.added_leaf]
            near, t = self.join(old, new)
            net = copy.deepcopy(parent.module.net)
            head = net.add_head(like=old.path(near)[-1].head)
            tree = old.attach(new, near, t, head)
        else:
            tree = self.discover()
            net = self.network(tree.heads)
        missing = set(self.hierarchy.leaf_names) ^ set(tree.classes)
        if missing:
            raise TaxodiffError(
                f"the branched tree's classes ({', '.join(tree.classes)}) differ from the class tree's in "
                f"{', '.join(sorted(missing))}"
            )
        return BranchedModule(self, net, tree)

    def network(self, heads: int, structure: dict[str, Any] | None = None) -> Any:
        """The branched U-Net with ``heads`` heads: the config's widths, the run's own, or matched (heads
        counted) to net.match_parameters."""
        from dataclasses import replace

        from taxodiff.families.branched.net import branched_network, parameter_count

        n = self.cfg.net
        base = images.unet_config(self.cfg, self.source.image_shape()[0], 2)
        whole = n.branch_network == "whole"

        def count(c: Any) -> int:
            return parameter_count(c, heads, n.head_levels, n.branch_codes, whole)

        channels, emb_dim = images.widths(self.cfg, base, structure, count=count)
        cfg = replace(base, channels=channels, emb_dim=emb_dim)
        return branched_network(cfg, heads, n.head_levels, n.branch_codes, whole)

    def structure(self, module: FamilyModule) -> dict[str, Any]:
        c = module.net.cfg
        return {"tree": module.tree.to_json(), "channels": list(c.channels), "emb_dim": c.emb_dim}

    def added_head(self, module: FamilyModule) -> int | None:
        """The head that a continual-learning run trains (None: a run trained from scratch)."""
        if not self.cfg.parent:
            return None
        return module.tree.path(self.hierarchy.leaf_names[self.added_leaf])[-1].head

    @cached_property
    def added_leaf(self) -> int:
        return requests.added_leaf(self)

    @cached_property
    def full_train_set(self) -> Any:
        """The source's training set, loaded once: for discovery and for training."""
        return self.source.train_set()

    def train_set(self) -> Any:
        data = self.full_train_set
        if not self.cfg.parent:
            return data
        import torch

        return data.subset(torch.nonzero(data.z1 == self.added_leaf).flatten())

    def stages(self) -> list[Stage]:
        return [Stage("add-class" if self.cfg.parent else "train", self.cfg.train.steps)]

    def freeze(self, module: FamilyModule, stage: Stage) -> None:
        head = self.added_head(module)
        for name, p in module.named_parameters():
            p.requires_grad_(head is None or name.startswith(f"net.heads.{head}."))

    def loss(self, module: FamilyModule, batch: dict[str, Tensor], noise: Noise) -> dict[str, Tensor]:
        leaf, net, table = batch["z1"], module.net, module.table

        def denoiser(x: Tensor, tn: Tensor) -> Tensor:
            return net(x, tn, table[leaf, tn + 1])

        return {"loss": self.process.loss(denoiser, batch["images"], noise)}

    # -- sampling -----------------------------------------------------------------------------------------
    def sample_tag(self, sc: Any) -> str:
        return requests.tag(sc, {})

    def sample_count(self, sc: Any) -> int:
        return requests.count(self.hierarchy, sc)

    def grid(self, sc: Any) -> list[int]:
        return self.process.timesteps(sc.steps, self.process.T, 0)

    def generate(self, module: FamilyModule, sc: Any, seed: int, progress: bool = True) -> dict[str, Tensor]:
        h = self.hierarchy
        req = requests.request(h, sc, seed)
        grid = self.grid(sc)
        module.tree.check_grid(grid, sorted({h.leaf_names[i] for i in req.leaf.tolist()}))
        bar = images.progress_bar(len(req.keys), f"sample {self.name} {sc.request}", progress)
        if sc.request == "classes-cached":
            out = self.cached(module, sc, seed, grid, bar.update)
        else:

            def draw(rows: slice, noise: Noise) -> dict[str, Tensor]:
                return self.draw(module, sc, req.leaf[rows].to(module.device), noise)

            out = requests.draw_request(req, sc.batch_size, seed, draw, sc.request == "classes", bar.update)
        bar.close()
        return out | {"z2": req.z2, "leaf": req.leaf}

    def draw(self, module: FamilyModule, sc: Any, leaf: Tensor, noise: Noise) -> dict[str, Tensor]:
        """Samples of the classes ``leaf`` (B,), each down its own path: uint8 images (B, C, H, W)."""
        from taxodiff.evaluate.images import to_uint8
        from taxodiff.families.branched.sampler import sample_paths

        x = self.process.prior((len(leaf), *self.source.image_shape()), noise, module.device)
        x = sample_paths(module.net, module.table[leaf], self.process, x, noise, sc.steps)
        return {"images": to_uint8(x.clamp(-1, 1))}

    def cached(self, module: FamilyModule, sc: Any, seed: int, grid: list[int], progress: Any) -> dict[str, Tensor]:
        """``n_per_class`` samples of every class, the classes sharing each trajectory above their branch points."""
        import torch

        from taxodiff.evaluate.images import to_uint8
        from taxodiff.families.branched.sampler import sample_cached
        from taxodiff.noise import Noise

        names = requests.asked_classes(self.hierarchy, sc)
        found: dict[str, list[Tensor]] = {name: [] for name in names}

        def keep(name: str, x: Tensor) -> None:
            found[name].append(to_uint8(x.clamp(-1, 1)).cpu())
            progress(len(x))

        n = sc.n_per_class
        for start in range(0, n, sc.batch_size):
            ks = list(range(start, min(n, start + sc.batch_size)))
            noise = Noise.per_sample(seed, [("cached", "root", k) for k in ks])
            x = self.process.prior((len(ks), *self.source.image_shape()), noise, module.device)
            sample_cached(module.net, module.tree, self.process, x, ks, grid, seed, keep, wanted=set(names))
        return {"images": torch.cat([torch.cat(found[name]) for name in names])}

    def figures(self, module: FamilyModule, run_dir: Path, samples: dict[str, Tensor], tag: str) -> None:
        requests.figure(self.source, samples, run_dir / "figures" / f"samples_{tag}.png", f"{self.name}, {tag}", tag)
