"""Pieces the model families share: building the decoder U-Net and the process, the conditional image loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from taxodiff.config import RunConfig, SampleConfig
from taxodiff.nets.unet import UNet, UNetConfig
from taxodiff.processes.gaussian import Denoiser, GaussianConfig, GaussianProcess
from taxodiff.processes.guidance import CondNet, Guidance, drop_mask, guided


def decoder_net(cfg: RunConfig, cond_dim: int) -> UNet:
    n = cfg.net
    return UNet(
        UNetConfig(
            in_channels=3,
            channels=n.channels,
            blocks_per_level=n.blocks_per_level,
            cond_dim=cond_dim,
            emb_dim=n.emb_dim,
            patch=n.patch,
        )
    )


def gaussian_process(cfg: RunConfig, clip_sample: bool = True) -> GaussianProcess:
    d = cfg.diffusion
    return GaussianProcess(
        GaussianConfig(
            num_train_timesteps=d.num_train_timesteps,
            beta_start=d.beta_start,
            beta_end=d.beta_end,
            beta_schedule=d.beta_schedule,
            clip_sample=clip_sample,
            min_snr_gamma=d.min_snr_gamma,
            prediction=d.prediction,
        )
    )


def image_loss(
    net: CondNet, process: GaussianProcess, x0: Tensor, cond: Tensor, p_uncond: float, gen: torch.Generator
) -> Tensor:
    """Conditional eps loss with condition dropout (classifier-free guidance training)."""
    drop = drop_mask(x0.shape[0], p_uncond, gen, x0.device)
    return process.loss(lambda x, t: net(x, t, cond, drop), x0, gen)


def guidance_rule(sc: SampleConfig, scale: float) -> Guidance:
    """The sampling config's guidance method and settings at one scale (prior and decoder have their own)."""
    return Guidance(
        scale=scale,
        method=sc.guidance_method,
        interval=(sc.guidance_interval[0], sc.guidance_interval[1]),
        cads_tau=(sc.cads_tau[0], sc.cads_tau[1]),
        cads_noise=sc.cads_noise,
        cads_psi=sc.cads_psi,
    )


def guided_denoiser(
    net: CondNet, cond: Tensor, sc: SampleConfig, scale: float, process: GaussianProcess, gen: torch.Generator
) -> Denoiser:
    return guided(net, cond, guidance_rule(sc, scale), process.alphas_cumprod, gen)


def sample_images(
    net: CondNet,
    cond: Tensor,
    sc: SampleConfig,
    process: GaussianProcess,
    size: int,
    gen: torch.Generator,
    progress: Callable[[int], None] | None = None,
) -> Tensor:
    """Images (B, 3, size, size) in [-1, 1] from an image denoiser under the sampling config's guidance."""
    x = process.sample(
        guided_denoiser(net, cond, sc, sc.guidance, process, gen),
        (len(cond), 3, size, size),
        gen,
        sc.sampler,
        sc.steps,
        cond.device,
        progress,
    )
    return x.clamp(-1, 1)
