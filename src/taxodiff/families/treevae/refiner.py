"""The second stage (Diffuse-TreeVAE, Goncalves et al. 2024): a DDPM that refines a leaf's blurry decoding.

The denoiser is the project's image U-Net on the Gaussian process of the run's ``diffusion`` section. Its input
is the noisy image concatenated with the leaf decoder's image (channels); its condition vector names the leaf,
either one-hot over the tree's node ids (``leaf``) or multi-hot over the nodes of the leaf's path from the root
(``path``, as the successor TreeDiffusion does: the U-Net's linear condition embedding then sums one learned
vector per node on the path). In training every image is paired with the decoding of a leaf drawn from its
inference-router probabilities, from a posterior sample; in sampling with the decoding of a generated sample.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from taxodiff.noise import Noise


def condition(tree: Any, leaves: Tensor, mode: str, dim: int) -> Tensor:
    """(B, dim) condition vectors of the leaves (node ids) ``leaves``."""
    out = torch.zeros(len(leaves), dim, device=leaves.device)
    for leaf in leaves.unique().tolist():
        nodes = tree.path(leaf) if mode == "path" else [leaf]
        out[(leaves == leaf).nonzero().flatten().unsqueeze(1), torch.tensor(nodes, device=leaves.device)] = 1.0
    return out


@torch.no_grad()
def training_pairs(net: Any, x01: Tensor, noise: Noise) -> tuple[Tensor, Tensor]:
    """(decodings in [-1, 1], their leaves): a leaf per image drawn from its inference-router probabilities,
    decoded from a posterior sample of its latent."""
    p = net.run(x01, noise)
    leaves = net.tree.leaves()
    prob = torch.stack([p.prob[i] for i in leaves], dim=1)
    leaf = torch.tensor(leaves, device=x01.device)[noise.categorical(prob)]
    return net.decode(p.z, leaf) * 2 - 1, leaf


def augment(guide: Tensor, std: float, noise: Noise) -> Tensor:
    """The decoding the DDPM reads, with Gaussian noise of ``std`` added (none at 0: the random streams unchanged).
    Trained on reconstructions of its own targets, the DDPM learns to copy them; noise on them in training and
    in sampling alike makes it lean on what it learned of the images, where a generated decoding is worse than
    a reconstruction."""
    return guide if std == 0 else guide + std * noise.randn(tuple(guide.shape), guide.device)


def denoiser(unet: Any, guide: Tensor, cond: Tensor) -> Any:
    """The U-Net as a denoiser of the process: (x_t, t) -> prediction, with the decoding as extra channels."""
    return lambda x, t: unet(torch.cat([x, guide.to(x.dtype)], dim=1), t, cond)
