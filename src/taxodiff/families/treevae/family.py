"""Model C, TreeVAE (seed 003): a binary tree of clusters grown without labels, and its plain-VAE baseline.

Training runs in phases, each a stage of the one trainer (resumable anywhere, the tree saved with every
checkpoint):

- ``tree``: the root alone (a one-node VAE: encoder, ladder, root latent, one decoder);
- ``split-k``: the leaf holding the most training images (those it receives with probability at least
  min(1/leaves, 0.5)) gets two children; only the new subtree trains (``net.joint_root_split``: the root's
  split trains everything, as the seed's initial tree does), on the images that leaf holds, each weighted by
  its probability of reaching the leaf (the trainer draws batches with replacement when they are fewer than a
  batch, so small leaves split too); a leaf at ``net.max_depth`` or holding fewer than ``net.min_split``
  images is never chosen, and when no leaf can be split the phase fine-tunes the whole tree instead. The new
  routers start from 2-means of the leaf's bottom-up features (:func:`taxodiff.families.treevae.growth.start_split`).
  ``split-1`` splits the root: the seed starts from a root with two leaves trained together, whose routers
  here sent every image one way (digits, first seed: the root's split emptied by pruning);
- ``finetune-k`` every ``train.finetune_every`` splits: the whole tree;
- ``prune``: leaves holding less than ``net.prune_share`` of the images are removed (their sibling receives
  their images), then the whole tree is fine-tuned.

The KL terms' weight is the seed's annealing, reset at every phase: it rises linearly to ``train.kl_growth``
(0.15) over each growth phase, and to 1 over the first half of the final one (:func:`kl_weight`). Labels are
never read in training. The ``vae`` family is the same encoder, ladder and decoder on one node, trained
through the same phases without growing: the baseline whose latents Ward clusters.

Sampling: ``tree`` (from the root, routed by the generative routers), ``node`` (under ``sample.node``: the
path to it drawn from the priors, then routed inside its subtree), ``leaves`` (``n_per_leaf`` from every
leaf), ``categories`` (the coarse request: each category is answered by the learned node whose subtree best
matches it on the training images, F1 with labels read after training only, so the family is scored by the
same mode metrics as the others).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice, nonneg, positive, unit
from taxodiff.config.schema import TrainConfig
from taxodiff.errors import TaxodiffError
from taxodiff.families import images
from taxodiff.families.base import Commands, Family, Parent, Roles, Stage
from taxodiff.families.treevae.evaluation import ClusteringEvaluation
from taxodiff.processes.choices import SAMPLERS

if TYPE_CHECKING:
    from torch import Tensor

    from taxodiff.families.module import FamilyModule
    from taxodiff.families.treevae.module import TreeVAEModule
    from taxodiff.noise import Noise
    from taxodiff.processes.gaussian import GaussianProcess

REQUESTS = ("categories", "tree", "node", "leaves")
FLAGS: dict[str, tuple[str, str]] = {
    "--request": ("sample.request", "categories (default), tree, node (with --node) or leaves"),
    "--node": ("sample.node", "request node: the learned node to sample under"),
    "--n": ("sample.n_samples", "samples of request tree / node"),
    "--n-per-leaf": ("sample.n_per_leaf", "samples per leaf (request leaves)"),
    "--n-per-category": ("sample.n_per_category", "samples per category (request categories)"),
    "--decoder": ("sample.decoder", "vae (the leaf decoders) or diffusion (the second stage); default auto"),
    "--mode": ("sample.mode", "drawn (a leaf per sample) or every-leaf (request tree: every leaf per root draw)"),
    "--steps": ("sample.steps", "sampling steps of the second stage"),
}


@dataclass(frozen=True)
class TreeVAENet(images.ImageNet):  # the U-Net fields: the second stage's denoiser
    vae_arch: str = choice("mlp", ("mlp", "conv"))  # dense or convolutional encoder and decoders
    vae_hidden: int = positive(256)  # encoder output and bottom-up width
    vae_latent: int = positive(8)  # latent dimensions of every node
    vae_channels: tuple[int, ...] = (32, 64)  # conv: the two convolutions' widths
    joint_root_split: bool = False  # the root's split trains the whole tree, encoder included (as the seed's
    # initial tree does); later splits train their new subtree only
    vae_batch_norm: bool = False  # batch normalisation after every hidden layer (the seed's networks have it)
    leaves: int = positive(10)  # leaf budget: growth stops there
    max_depth: int = positive(6)  # no leaf deeper than this is split
    min_split: int = positive(16)  # a leaf holding fewer training images is not split
    prune_share: float = unit(0.01)  # leaves holding less of the training images are pruned
    condition: str = choice("path", ("path", "leaf"))  # second stage: the U-Net reads the leaf's path, or the leaf
    guide_noise: float = nonneg(0.0)  # second stage: Gaussian noise of this std added to the leaf decoding it reads
    # (in [-1, 1] units), in training and sampling alike: conditioning augmentation (Ho et al. 2021's cascades)


@dataclass(frozen=True)
class TreeVAETrain(TrainConfig):
    steps: int = positive(600)  # the first phase (root and two leaves)
    batch_size: int = positive(256)
    lr: float = positive(1e-3)
    warmup: int = nonneg(20)
    split_steps: int = positive(300)  # every split's subtree
    finetune_steps: int = positive(300)
    finetune_every: int = positive(3)  # a whole-tree phase after this many splits
    final_steps: int = positive(600)  # after pruning
    # The KL terms' weight (the seed's annealing, reset at every phase): in the growth phases (tree, splits,
    # fine-tunes) it rises linearly from 0 to kl_growth over the phase's first kl_growth_warmup share (the
    # seed: 0.001 per epoch over 150 epochs, so 0.15 at the end); in the final phase (after pruning) from 0 to
    # 1 over its first kl_final_warmup share, then stays at 1, so the model ends on its ELBO.
    kl_growth: float = unit(0.15)
    kl_growth_warmup: float = unit(1.0)
    kl_final_warmup: float = unit(0.5)
    # the second stage (0: none): a DDPM refining the leaf decoders' images, trained with the tree frozen
    diffusion_steps: int = nonneg(0)
    diffusion_batch: int = positive(64)
    diffusion_lr: float = positive(2e-3)


@dataclass(frozen=True)
class TreeVAESample:
    request: str = choice("categories", REQUESTS)
    node: int | None = None  # request node: the learned node to sample under (ids as in tree.json)
    n_samples: int = positive(256)  # request tree / node
    n_per_leaf: int = positive(64)  # request leaves
    n_per_category: int = positive(256)  # request categories
    batch_size: int = positive(512)
    decoder: str = choice("auto", ("auto", "vae", "diffusion"))  # auto: the second stage where the run has one
    mode: str = choice("drawn", ("drawn", "every-leaf"))  # every-leaf: one root sample decoded by every leaf
    sampler: str = choice("ddpm", SAMPLERS)  # the second stage's sampler
    steps: int = positive(100)


class TreeVAE(Family):
    name: ClassVar[str] = "treevae"
    summary: ClassVar[str] = "a tree of clusters grown without labels, a decoder per leaf (seed 003)"
    data_kinds: ClassVar[tuple[str, ...]] = ("images",)
    sections: ClassVar[dict[str, type]] = {
        "net": TreeVAENet,
        "diffusion": images.GaussianDiffusion,  # the second stage's process
        "train": TreeVAETrain,
        "sample": TreeVAESample,
    }
    grows: ClassVar[bool] = True  # splits and prunes in its phases (the plain VAE goes through them unchanged)
    evaluation: ClassVar[type] = ClusteringEvaluation
    commands: ClassVar[Commands] = Commands(flags=FLAGS, alias=True)
    roles: ClassVar[Roles] = Roles(
        coarse=True,
        weights="unlabelled",
        budget={"steps": "diffusion_steps", "batch_size": "diffusion_batch", "lr": "diffusion_lr"},
    )

    @classmethod
    def check(cls, cfg: Any) -> None:
        n = cfg.net
        if n.leaves < 2:
            raise TaxodiffError(f"net.leaves = {n.leaves} is invalid: a tree has at least 2 leaves (allowed: >= 2)")
        if n.leaves > 2**n.max_depth:
            raise TaxodiffError(
                f"net.leaves = {n.leaves} is invalid with net.max_depth = {n.max_depth}: allowed is at most "
                f"2^max_depth = {2**n.max_depth}"
            )
        if len(n.vae_channels) != 2 or min(n.vae_channels) < 1:
            raise TaxodiffError(f"net.vae_channels = {list(n.vae_channels)} is invalid: allowed are two widths >= 1")
        images.check_image_sections(cfg)
        if cfg.sample.request == "node" and (cfg.sample.node is None or cfg.sample.node < 0):
            raise TaxodiffError(
                f"sample.node = {cfg.sample.node} is invalid with request node: allowed is the id of a learned node "
                "(tree.json of the run; --node)"
            )
        if cfg.sample.mode == "every-leaf" and cfg.sample.request != "tree":
            raise TaxodiffError(
                f"sample.mode = 'every-leaf' is invalid with request {cfg.sample.request!r}: allowed with request tree"
            )
        if cfg.sample.decoder == "diffusion" and cfg.train.diffusion_steps == 0:
            raise TaxodiffError(
                "sample.decoder = 'diffusion' is invalid: this run has no second stage (train.diffusion_steps = 0); "
                "allowed: vae or auto"
            )

    # -- building -----------------------------------------------------------------------------------------
    def build(self, structure: dict[str, Any] | None = None, parent: Parent | None = None) -> FamilyModule:
        from taxodiff.families.treevae.module import TreeVAEModule
        from taxodiff.families.treevae.net import TreeVAEConfig, TreeVAENet
        from taxodiff.families.treevae.tree import Tree

        n = self.cfg.net
        tree = Tree.from_json(structure["tree"]) if structure else Tree.single()
        cfg = TreeVAEConfig(
            image_shape=self.source.image_shape(),
            arch=n.vae_arch,
            hidden=n.vae_hidden,
            latent=n.vae_latent,
            channels=tuple(n.vae_channels),
            max_depth=n.max_depth,
            batch_norm=n.vae_batch_norm,
        )
        module = TreeVAEModule(self, TreeVAENet(cfg, tree))
        if structure and structure.get("refiner"):
            self.add_refiner(module, int(structure["refiner"]["cond_dim"]), structure["refiner"])
        return module

    def add_refiner(self, module: FamilyModule, cond_dim: int, structure: dict[str, Any] | None = None) -> None:
        """The second stage's U-Net: image and leaf decoding in (2C channels), prediction out (C); its widths the
        config's, the run's own, or matched to net.match_parameters (the second stage alone: the tree's networks
        grow in phases and are not matched)."""
        c = self.source.image_shape()[0]
        base = images.unet_config(self.cfg, 2 * c, cond_dim, out_channels=c)
        channels, emb_dim = images.widths(self.cfg, base, structure)
        module.add_module("refiner", images.unet(self.cfg, 2 * c, cond_dim, c, channels, emb_dim))

    def structure(self, module: FamilyModule) -> dict[str, Any]:
        out: dict[str, Any] = {"tree": module.vae.tree.to_json()}
        if hasattr(module, "refiner"):
            r = module.refiner.cfg
            out["refiner"] = {"cond_dim": r.cond_dim, "channels": list(r.channels), "emb_dim": r.emb_dim}
        return out

    @cached_property
    def process(self) -> GaussianProcess:
        return images.gaussian_process(self.cfg)

    # -- the phases ---------------------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        t = self.cfg.train
        out = self.vae_stages()
        if t.diffusion_steps:
            out.append(Stage("diffusion", t.diffusion_steps, warmup=100, batch_size=t.diffusion_batch))
        return out

    def vae_stages(self) -> list[Stage]:
        t = self.cfg.train
        out = [Stage("tree", t.steps)]
        splits = self.cfg.net.leaves - 1
        for k in range(1, splits + 1):
            out.append(Stage(f"split-{k}", t.split_steps))
            if k % t.finetune_every == 0 and k < splits:
                out.append(Stage(f"finetune-{k // t.finetune_every}", t.finetune_steps))
        out.append(Stage("prune", t.final_steps))
        return out

    @cached_property
    def full_train_set(self) -> Any:
        return self.source.train_set()

    def train_set(self) -> Any:
        return self.full_train_set

    def grow(self, module: FamilyModule, stage: Stage) -> None:
        from taxodiff import seeds
        from taxodiff.families.treevae import growth

        net, data = module.vae, self.full_train_set
        net.tree.growing = None
        if stage.name.startswith("split-") and self.grows:
            leaf = growth.leaf_to_split(net, data, self.cfg.net.max_depth, self.cfg.net.min_split)
            if leaf is not None:
                net.tree.split(leaf)
                net.tree.growing = leaf
                net.sync()
                n_leaves = len(net.tree.leaves()) - 1
                growth.start_split(net, data, leaf, n_leaves, seeds.derive(self.cfg.seed, "split", stage.name))
        elif stage.name == "prune" and self.grows:
            for leaf in growth.leaves_to_prune(net, data, self.cfg.net.prune_share):
                net.tree.prune(leaf)
        elif stage.name == "diffusion":
            self.add_refiner(module, net.tree.next_id)
        net.sync()

    def freeze(self, module: FamilyModule, stage: Stage) -> None:
        net = module.vae
        s = net.tree.growing
        prefixes = None
        if s is not None and not (s == net.tree.root and self.cfg.net.joint_root_split):
            prefixes = [f"vae.router_q.{s}.", f"vae.router_p.{s}."]
            prefixes += [f"vae.{p}" for i in net.tree.order(s)[1:] for p in net.node_modules(i)]
        if stage.name == "diffusion":
            prefixes = ["refiner."]
        for name, p in module.named_parameters():
            p.requires_grad_(name.startswith(tuple(prefixes)) if prefixes is not None else name.startswith("vae."))

    def stage_data(self, module: FamilyModule, stage: Stage, data: Any) -> Any:
        from taxodiff.families.treevae import growth

        s = module.vae.tree.growing
        if s is None:
            return data
        return data.subset(growth.held(module.vae, data, s, len(module.vae.tree.leaves()) - 1))

    def at_step(self, module: TreeVAEModule, stage: Stage, step: int) -> None:  # type: ignore[override]
        module.enter(stage.name, kl_weight(self.cfg.train, stage, step))

    def loss(self, module: FamilyModule, batch: dict[str, Tensor], noise: Noise) -> dict[str, Tensor]:
        if module.stage == "diffusion":
            return self.refiner_loss(module, batch, noise)
        net = module.vae
        start = net.tree.growing if net.tree.growing is not None else net.tree.root
        terms = {k: v.mean() for k, v in net.loss_terms((batch["images"] + 1) / 2, noise, start).items()}
        a = module.kl_weight
        loss = terms["reconstruction"] + a * (terms["kl_nodes"] + terms["kl_routers"])
        return {"loss": loss, **{k: v.detach() for k, v in terms.items()}, "kl_weight": loss.new_tensor(a)}

    def refiner_loss(self, module: FamilyModule, batch: dict[str, Tensor], noise: Noise) -> dict[str, Tensor]:
        from taxodiff.families.treevae import refiner

        x0 = batch["images"]
        guide, leaf = refiner.training_pairs(module.vae, (x0 + 1) / 2, noise)
        guide = refiner.augment(guide, self.cfg.net.guide_noise, noise)
        cond = refiner.condition(module.vae.tree, leaf, self.cfg.net.condition, module.refiner.cfg.cond_dim)
        return {"loss": self.process.loss(refiner.denoiser(module.refiner, guide, cond), x0, noise)}

    def param_groups(self, module: FamilyModule) -> list[dict[str, Any]]:
        groups = [{"params": list(module.vae.parameters()), "lr": self.cfg.train.lr}]
        if hasattr(module, "refiner"):
            groups.append({"params": list(module.refiner.parameters()), "lr": self.cfg.train.diffusion_lr})
        return groups

    # -- sampling -----------------------------------------------------------------------------------------
    def refines(self, sc: Any) -> bool:
        """Whether samples go through the second stage."""
        return sc.decoder == "diffusion" or (sc.decoder == "auto" and self.cfg.train.diffusion_steps > 0)

    def sample_tag(self, sc: Any) -> str:
        r = sc.request
        tag = {"node": f"node{sc.node}", "leaves": "leaves"}.get(r, r)
        tag += f"_{sc.sampler}{sc.steps}" if self.refines(sc) else "_vae"
        return tag + ("_every-leaf" if sc.mode == "every-leaf" else "")

    def sample_count(self, sc: Any) -> int | None:
        if sc.mode == "every-leaf" or sc.request == "leaves":
            return None  # as many as the learned tree has leaves (pruning may leave fewer than the budget)
        return sc.n_per_category * self.hierarchy.num_categories if sc.request == "categories" else sc.n_samples

    def category_nodes(self, module: FamilyModule) -> dict[str, Any]:
        """The learned node answering each category (F1 of its subtree's training images against the
        category's), chosen with labels after training."""
        from taxodiff.families.treevae import growth

        data = self.full_train_set
        return growth.category_nodes(module.vae, data, self.hierarchy.num_categories)

    def generate(self, module: FamilyModule, sc: Any, seed: int, progress: bool = True) -> dict[str, Tensor]:
        import torch

        from taxodiff.families.sampling import draw_in_batches

        net, r = module.vae, sc.request
        if r == "node" and sc.node not in net.tree.nodes:
            raise TaxodiffError(
                f"sample.node = {sc.node} is not a node of this tree: allowed are {sorted(net.tree.nodes)}"
            )
        if r == "categories":
            nodes = self.category_nodes(module)["node"]
            z2, keys = images.requests(self.hierarchy.num_categories, sc.n_per_category)
            start = torch.tensor([nodes[c] for c in z2.tolist()])
        elif r == "leaves":
            leaves = net.tree.leaves()
            start = torch.tensor(leaves).repeat_interleave(sc.n_per_leaf)
            keys = [("leaf", leaf, k) for leaf in leaves for k in range(sc.n_per_leaf)]
        else:
            node = sc.node if r == "node" else net.tree.root
            start = torch.full((sc.n_samples,), node)
            keys = [("node", node, k) for k in range(sc.n_samples)]
        bar = images.progress_bar(len(keys), f"sample {self.name} {r}", progress)

        def draw(rows: slice, noise: Noise) -> dict[str, Tensor]:
            if sc.mode == "every-leaf":
                return self.draw_every_leaf(module, sc, rows.stop - rows.start, noise)
            return self.draw(module, sc, start[rows], noise)

        out = draw_in_batches(keys, sc.batch_size, seed, draw, bar.update)
        bar.close()
        out["start"] = start
        if r == "categories":
            out["z2"] = z2
        return out

    def draw(self, module: FamilyModule, sc: Any, start: Tensor, noise: Noise) -> dict[str, Tensor]:
        """Samples under the nodes ``start`` (B,): latents from the priors, leaves by the generative routers, the
        leaf decoders' images (refined by the second stage where asked)."""
        import torch

        from taxodiff.evaluate.images import to_uint8

        net, device = module.vae, module.device
        x = torch.empty(len(start), *net.cfg.image_shape, device=device)
        leaf = torch.empty(len(start), dtype=torch.long, device=device)
        for s in start.unique().tolist():
            rows = torch.nonzero(start == s).flatten()
            sub = noise.subset(rows.tolist())
            z = net.prior_latents(len(rows), sub, device, s)
            leaf[rows] = net.draw_leaves(z, sub, s)
            x[rows] = net.decode(z, leaf[rows])
        x = x * 2 - 1
        if self.refines(sc):
            x = self.refine(module, sc, x, leaf, noise)
        return {"images": to_uint8(x.clamp(-1, 1)), "node_leaf": leaf}

    def draw_every_leaf(self, module: FamilyModule, sc: Any, n: int, noise: Noise) -> dict[str, Tensor]:
        """One root draw per sample, decoded by every leaf (its path's latents drawn from the priors): n x leaves
        images, sample-major."""
        import torch

        from taxodiff.evaluate.images import to_uint8

        net, device = module.vae, module.device
        z = net.prior_latents(n, noise, device)
        leaves = net.tree.leaves()
        xs, ls = [], []
        for leaf in leaves:
            ids = torch.full((n,), leaf, device=device)
            x = net.decode(z, ids) * 2 - 1
            xs.append(self.refine(module, sc, x, ids, noise) if self.refines(sc) else x)
            ls.append(ids)
        x = torch.stack(xs, dim=1).flatten(0, 1)
        return {"images": to_uint8(x.clamp(-1, 1)), "node_leaf": torch.stack(ls, dim=1).flatten()}

    def refine(self, module: FamilyModule, sc: Any, guide: Tensor, leaf: Tensor, noise: Noise) -> Tensor:
        """The second stage: a DDPM sample conditioned on the leaf decodings ``guide`` (in [-1, 1]) and leaves."""
        from taxodiff.families.treevae import refiner

        if not hasattr(module, "refiner"):
            raise TaxodiffError("sample.decoder = 'diffusion' needs a run with a second stage (train.diffusion_steps)")
        cond = refiner.condition(module.vae.tree, leaf, self.cfg.net.condition, module.refiner.cfg.cond_dim)
        guide = refiner.augment(guide, self.cfg.net.guide_noise, noise)
        x = self.process.prior(tuple(guide.shape), noise, guide.device)
        den = refiner.denoiser(module.refiner, guide, cond)
        return self.process.sample(den, x, noise, steps=sc.steps, sampler=sc.sampler)

    # -- after sampling -----------------------------------------------------------------------------------
    def figures(self, module: FamilyModule, run_dir: Path, samples: dict[str, Tensor], tag: str) -> None:
        """The samples by learned leaf (by asked category for the coarse request), and the learned tree
        (tree.json and figures/tree.png)."""
        from taxodiff import runs
        from taxodiff.families.treevae import report

        figs = run_dir / "figures"
        if "z2" in samples:  # the coarse request: the samples by asked category
            images.category_figure(self.source, samples, figs / f"samples_{tag}.png", f"{self.name}, {tag}")
        else:
            report.leaf_grid(samples, module.vae.tree, figs / f"samples_{tag}.png", f"{self.name}, {tag}")
        runs.write_json(run_dir / "tree.json", module.vae.tree.to_json())
        report.tree_figure(module, self.held_out, self.hierarchy, figs / "tree.png")

    @cached_property
    def held_out(self) -> Any:
        """Labelled images never trained on: what the clustering is scored on."""
        return self.source.classifier_sets()[1]

    # -- evaluation ---------------------------------------------------------------------------------------
    def evaluate(self, module: FamilyModule, samples: dict[str, Tensor], progress: bool = True) -> dict:
        from dataclasses import asdict

        from taxodiff.families.treevae import scoring

        head = {"model": self.name, "checkpoint_step": int(samples["step"][0]), "sample": asdict(self.cfg.sample)}
        out = head | {"refined": self.refines(self.cfg.sample)} | scoring.clustering(self, module)
        if self.cfg.sample.request == "categories":
            scores, pred = images.evaluation(self, samples, module.device, progress)
            out |= {k: v for k, v in scores.items() if k not in head}
            out["category_nodes"] = self.category_nodes(module)
        out["generated"] = scoring.generated(self, module, samples, progress)
        return out


def kl_weight(t: TreeVAETrain, stage: Stage, step: int) -> float:
    """The KL terms' weight at ``step`` of ``stage`` (see TreeVAETrain)."""
    final = stage.name == "prune"
    top, share = (1.0, t.kl_final_warmup) if final else (t.kl_growth, t.kl_growth_warmup)
    ramp = share * (stage.steps - 1)
    return top if ramp <= 0 else top * min(1.0, step / ramp)


class VAE(TreeVAE):
    """The plain VAE: TreeVAE's encoder, ladder and decoder on a single node, trained through the same phases
    (steps, batch, learning-rate restarts and KL weights) without growing, on all the data in every phase (with
    ``train.diffusion_steps``, the same second stage on its one decoder: DiffuseVAE)."""

    name: ClassVar[str] = "vae"
    summary: ClassVar[str] = "TreeVAE's networks on one node, the same phases: the baseline Ward clusters"
    grows: ClassVar[bool] = False
    commands: ClassVar[Commands] = Commands(flags=FLAGS)
    roles: ClassVar[Roles] = Roles()  # one node: no learned node answers a category

    @classmethod
    def check(cls, cfg: Any) -> None:
        TreeVAE.check(cfg)
