"""TreeVAE's networks (Manduchi et al. 2023): an encoder with a bottom-up ladder, and per node of the tree a
posterior estimate, a prior transformation (its parent's z -> its own), routers and leaf decoders.

The networks follow a :class:`taxodiff.families.treevae.tree.Tree`: ``sync()`` adds the modules of new nodes (a router
pair for every node with two children, a decoder for every leaf) and drops those that no longer apply, so
that ``TreeVAENet(cfg, tree)`` built from a saved tree has exactly a trained run's parameters. Two variants
share everything but the image ends: ``mlp`` (dense encoder and decoders) and ``conv`` (two stride-2
convolutions in, two transposed convolutions out, vector latents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from taxodiff.families.treevae import elbo
from taxodiff.families.treevae.tree import Tree
from taxodiff.noise import Noise


@dataclass(frozen=True)
class TreeVAEConfig:
    image_shape: tuple[int, int, int]
    arch: str = "mlp"  # mlp | conv
    hidden: int = 256  # encoder output and bottom-up width
    latent: int = 8  # latent dimensions of every node
    channels: tuple[int, ...] = (32, 64)  # conv: the two convolutions' widths
    max_depth: int = 6  # bottom-up features exist for depths 0..max_depth
    batch_norm: bool = False  # batch normalisation after every hidden layer (as the seed's networks)


def hidden(n_in: int, n_out: int, norm: bool, conv: tuple[int, int, int] | None = None) -> list[nn.Module]:
    """A hidden layer: linear (or a convolution: kernel, stride, padding), batch norm if ``norm``, LeakyReLU."""
    if conv is None:
        layer: nn.Module = nn.Linear(n_in, n_out, bias=not norm)
        bn: nn.Module = nn.BatchNorm1d(n_out)
    else:
        layer, bn = nn.Conv2d(n_in, n_out, *conv, bias=not norm), nn.BatchNorm2d(n_out)
    return [layer, bn, nn.LeakyReLU(0.1)] if norm else [layer, nn.LeakyReLU(0.1)]


def small_mlp(n_in: int, n_out: int, width: int, norm: bool = False) -> nn.Sequential:
    return nn.Sequential(*hidden(n_in, width, norm), nn.Linear(width, n_out))


class Encoder(nn.Module):
    def __init__(self, cfg: TreeVAEConfig) -> None:
        super().__init__()
        c, h, w = cfg.image_shape
        bn = cfg.batch_norm
        if cfg.arch == "conv":
            c1, c2 = cfg.channels
            side = (math.ceil(h / 4), math.ceil(w / 4))
            self.body: nn.Module = nn.Sequential(
                *hidden(c, c1, bn, (3, 2, 1)),
                *hidden(c1, c2, bn, (3, 2, 1)),
                nn.Flatten(),
                *hidden(c2 * side[0] * side[1], cfg.hidden, bn),
            )
        else:
            self.body = nn.Sequential(
                nn.Flatten(), *hidden(c * h * w, 2 * cfg.hidden, bn), *hidden(2 * cfg.hidden, cfg.hidden, bn)
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Decoder(nn.Module):
    """A leaf's decoder: z (B, latent) -> pixel logits (B, C, H, W)."""

    def __init__(self, cfg: TreeVAEConfig) -> None:
        super().__init__()
        self.shape = cfg.image_shape
        c, h, w = cfg.image_shape
        bn = cfg.batch_norm
        if cfg.arch == "conv":
            c1, c2 = cfg.channels
            self.side = (math.ceil(h / 4), math.ceil(w / 4))
            up = [nn.ConvTranspose2d(c2, c1, 4, 2, 1, bias=not bn), *([nn.BatchNorm2d(c1)] if bn else [])]
            self.body: nn.Module = nn.Sequential(
                *hidden(cfg.latent, cfg.hidden, bn),
                *hidden(cfg.hidden, c2 * self.side[0] * self.side[1], bn),
                nn.Unflatten(1, (c2, *self.side)),
                *up,
                nn.LeakyReLU(0.1),
                nn.ConvTranspose2d(c1, c, 4, 2, 1),
            )
        else:
            self.body = nn.Sequential(
                *hidden(cfg.latent, cfg.hidden, bn),
                *hidden(cfg.hidden, 2 * cfg.hidden, bn),
                nn.Linear(2 * cfg.hidden, c * h * w),
                nn.Unflatten(1, (c, h, w)),
            )

    def forward(self, z: Tensor) -> Tensor:
        c, h, w = self.shape
        return self.body(z)[:, :, :h, :w]


class Residual(nn.Module):
    """A bottom-up step: x + W LeakyReLU(LayerNorm(x)). Residual, so the root's features (max_depth steps above
    the encoder) train as fast as the leaves' (a plain chain of layers left the MNIST posteriors collapsed)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.LayerNorm(width), nn.LeakyReLU(0.1), nn.Linear(width, width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@dataclass
class Pass:
    """One pass of a batch through (part of) the tree: per node its latent and reaching probability."""

    z: dict[int, Tensor]  # sampled latents
    prob: dict[int, Tensor]  # (B,) probability of reaching the node from the pass's start (inference routers)
    kl: dict[int, Tensor]  # (B,) KL of the node's posterior against its prior
    router_kl: dict[int, Tensor]  # (B,) of every router
    reach: Tensor  # (B,) probability of reaching the start from the root (1 at the root; no gradient)


class TreeVAENet(nn.Module):
    def __init__(self, cfg: TreeVAEConfig, tree: Tree) -> None:
        super().__init__()
        self.cfg = cfg
        self.tree = tree
        self.encoder = Encoder(cfg)
        self.bottom_up = nn.ModuleList(Residual(cfg.hidden) for _ in range(cfg.max_depth))
        self.posterior = nn.ModuleDict()  # bottom-up features -> (mu_hat, sd_hat)
        self.prior = nn.ModuleDict()  # parent's z -> (mu_p, sd_p); not the root
        self.router_q = nn.ModuleDict()  # inference router: bottom-up features -> logit of going left
        self.router_p = nn.ModuleDict()  # generative router: z -> logit of going left
        self.decoder = nn.ModuleDict()
        self.sync()

    def sync(self) -> None:
        """Make the modules match the tree: create those of new nodes, drop those that no longer apply."""
        cfg, tree, width = self.cfg, self.tree, self.cfg.hidden // 2
        for i in tree.order():
            key = str(i)
            if key not in self.posterior:
                self.posterior[key] = small_mlp(cfg.hidden, 2 * cfg.latent, width, cfg.batch_norm)
                if tree.nodes[i].parent is not None:
                    self.prior[key] = small_mlp(cfg.latent, 2 * cfg.latent, width, cfg.batch_norm)
        routers, leaves = {str(i) for i in tree.routers()}, {str(i) for i in tree.leaves()}
        for key in sorted(routers - set(self.router_q), key=int):
            self.router_q[key] = small_mlp(cfg.hidden, 1, width, cfg.batch_norm)
            self.router_p[key] = small_mlp(cfg.latent, 1, width, cfg.batch_norm)
        for key in sorted(leaves - set(self.decoder), key=int):
            self.decoder[key] = Decoder(cfg)
        alive = {str(i) for i in tree.nodes}
        for table, keep in (
            (self.posterior, alive),
            (self.prior, alive),
            (self.router_q, routers),
            (self.router_p, routers),
            (self.decoder, leaves),
        ):
            for key in [k for k in table if k not in keep]:
                del table[key]

    def node_modules(self, node: int) -> list[str]:
        """Parameter-name prefixes of a node's own modules."""
        key = str(node)
        tables = ("posterior", "prior", "router_q", "router_p", "decoder")
        return [f"{name}.{key}." for name in tables if key in getattr(self, name)]

    # -- inference ----------------------------------------------------------------------------------------
    def features(self, x01: Tensor) -> list[Tensor]:
        """Bottom-up features; a node at depth d reads ``features[max_depth - d]`` (the root the most processed)."""
        out = [self.encoder(x01)]
        for layer in self.bottom_up:
            out.append(layer(out[-1]))
        return out

    def feature(self, feats: list[Tensor], node: int) -> Tensor:
        return feats[self.cfg.max_depth - self.tree.nodes[node].depth]

    def route_q(self, feats: list[Tensor], node: int) -> Tensor:
        return torch.sigmoid(self.router_q[str(node)](self.feature(feats, node)).float().squeeze(-1))

    def run(self, x01: Tensor, noise: Noise | None, start: int = 0) -> Pass:
        """Latents of the path root..start and of start's subtree (sampled; posterior means if ``noise`` is None),
        reaching probabilities from ``start``, and every KL term."""
        tree, feats = self.tree, self.features(x01)
        z: dict[int, Tensor] = {}
        kl: dict[int, Tensor] = {}
        for i in tree.path(start)[:-1] + tree.order(start):
            mu, sd = elbo.gaussian_params(self.posterior[str(i)](self.feature(feats, i)))
            parent = tree.nodes[i].parent
            if parent is None:
                kl[i] = elbo.standard_kl(mu, sd)
            else:
                mu_p, sd_p = elbo.gaussian_params(self.prior[str(i)](z[parent]))
                mu, sd = elbo.combine(mu, sd, mu_p, sd_p)
                kl[i] = elbo.gaussian_kl(mu, sd, mu_p, sd_p)
            z[i] = mu if noise is None else mu + sd * noise.randn(mu.shape, mu.device)
        prob = {start: torch.ones(len(x01), device=x01.device)}
        router_kl: dict[int, Tensor] = {}
        for i in tree.order(start):
            kids = tree.nodes[i].children
            if len(kids) == 1:
                prob[kids[0]] = prob[i]
            elif len(kids) == 2:
                q = self.route_q(feats, i)
                p = torch.sigmoid(self.router_p[str(i)](z[i]).float().squeeze(-1))
                prob[kids[0]], prob[kids[1]] = prob[i] * q, prob[i] * (1 - q)
                router_kl[i] = elbo.bernoulli_kl(q, p)
        return Pass(z, prob, kl, router_kl, self.reach(feats, start))

    @torch.no_grad()
    def reach(self, feats: list[Tensor], node: int) -> Tensor:
        """(B,) probability of reaching ``node`` from the root under the inference routers."""
        out = torch.ones(len(feats[0]), device=feats[0].device)
        path = self.tree.path(node)
        for parent, child in zip(path[:-1], path[1:], strict=True):
            kids = self.tree.nodes[parent].children
            if len(kids) == 2:
                q = self.route_q(feats, parent)
                out = out * (q if child == kids[0] else 1 - q)
        return out

    def loss_terms(self, x01: Tensor, noise: Noise, start: int = 0) -> dict[str, Tensor]:
        """Per-image terms of the negative ELBO of ``start``'s subtree: reconstruction, node KL, router KL. Below
        the root (a split being trained, the rest frozen) every image's terms are weighted by its probability of
        reaching ``start``, as in the full tree's ELBO."""
        tree, p = self.tree, self.run(x01, noise, start)
        rec = sum(
            p.prob[leaf] * elbo.reconstruction(self.decoder[str(leaf)](p.z[leaf]), x01)
            for leaf in tree.subtree_leaves(start)
        )
        nodes = sum(p.prob[i] * p.kl[i] for i in tree.order(start) if i != start)
        if start == tree.root:
            nodes = nodes + p.kl[start]
        routers = sum((p.prob[i] * k for i, k in p.router_kl.items()), torch.zeros_like(p.prob[start]))
        terms = {"reconstruction": rec, "kl_nodes": nodes, "kl_routers": routers}
        if start != tree.root:
            terms = {k: p.reach * v for k, v in terms.items()}
        return terms  # type: ignore[return-value]

    def node_probs(self, x01: Tensor, start: int = 0) -> dict[int, Tensor]:
        """Probability of reaching every node of ``start``'s subtree under the inference routers (no sampling)."""
        feats, prob = self.features(x01), {start: torch.ones(len(x01), device=x01.device)}
        for i in self.tree.order(start):
            kids = self.tree.nodes[i].children
            if len(kids) == 1:
                prob[kids[0]] = prob[i]
            elif len(kids) == 2:
                q = self.route_q(feats, i)
                prob[kids[0]], prob[kids[1]] = prob[i] * q, prob[i] * (1 - q)
        return prob

    def leaf_probs(self, x01: Tensor) -> Tensor:
        """(B, leaves) in ``tree.leaves()`` order; rows sum to 1."""
        prob = self.node_probs(x01)
        return torch.stack([prob[leaf] for leaf in self.tree.leaves()], dim=1)

    def reconstruct(self, x01: Tensor) -> tuple[Tensor, Tensor]:
        """(pixel probabilities decoded by each image's most probable leaf from posterior means, that leaf's id)."""
        p = self.run(x01, None)
        leaves = torch.tensor(self.tree.leaves(), device=x01.device)
        best = leaves[torch.stack([p.prob[i] for i in self.tree.leaves()], dim=1).argmax(dim=1)]
        out = torch.empty(len(x01), *self.cfg.image_shape, device=x01.device)
        for leaf in best.unique().tolist():
            rows = best == leaf
            out[rows] = torch.sigmoid(self.decoder[str(leaf)](p.z[leaf][rows]).float())
        return out, best

    # -- generation ---------------------------------------------------------------------------------------
    def prior_latents(self, n: int, noise: Noise, device: torch.device, start: int = 0) -> dict[int, Tensor]:
        """Latents drawn from the generative model: the root from N(0, I), every node of the path to ``start``
        and of its subtree from its prior given its parent's draw."""
        tree, z = self.tree, {}
        for i in tree.path(start)[:-1] + tree.order(start):
            eps = noise.randn((n, self.cfg.latent), device)
            parent = tree.nodes[i].parent
            if parent is None:
                z[i] = eps
            else:
                mu_p, sd_p = elbo.gaussian_params(self.prior[str(i)](z[parent]))
                z[i] = mu_p + sd_p * eps
        return z

    def draw_leaves(self, z: dict[int, Tensor], noise: Noise, start: int = 0) -> Tensor:
        """The leaf each sample reaches from ``start`` under the generative routers (ids, (n,))."""
        n = len(z[start])
        where = torch.full((n,), start, dtype=torch.long, device=z[start].device)
        routers = [i for i in self.tree.order(start) if len(self.tree.nodes[i].children) == 2]
        u = {i: noise.rand((n,), z[start].device) for i in routers}
        for i in self.tree.order(start):
            kids, rows = self.tree.nodes[i].children, where == i
            if len(kids) == 1:
                where[rows] = kids[0]
            elif len(kids) == 2:
                left = u[i] < torch.sigmoid(self.router_p[str(i)](z[i]).float().squeeze(-1))
                where[rows & left] = kids[0]
                where[rows & ~left] = kids[1]
        return where

    def decode(self, z: dict[int, Tensor], leaf: Tensor) -> Tensor:
        """Pixel probabilities of every sample from its leaf's decoder."""
        out = torch.empty(len(leaf), *self.cfg.image_shape, device=leaf.device)
        for i in leaf.unique().tolist():
            rows = leaf == i
            out[rows] = torch.sigmoid(self.decoder[str(i)](z[i][rows]).float())
        return out
