"""What the image families share: their config sections, the U-Net decoder and its Gaussian process, the
conditional loss with condition dropout, guided sampling, the request (n samples of every category), the
evaluation and the sample grids. A family module composes these; none of them knows a family by name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taxodiff.config.fields import choice, nonneg, pair, positive, unit
from taxodiff.errors import TaxodiffError
from taxodiff.evaluate.results import ImageEvaluation
from taxodiff.processes.choices import BETA_SCHEDULES, GUIDANCE_METHODS, GUIDANCE_SPACES, PREDICTIONS, SAMPLERS
from taxodiff.processes.guiders import Guiders

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from taxodiff.data.base import DataSource
    from taxodiff.noise import Noise
    from taxodiff.processes.gaussian import GaussianProcess
    from taxodiff.processes.guidance import CondNet, Guidance


@dataclass(frozen=True)
class ImageNet:
    arch: str = choice("unet", ("unet", "diffusers"))  # taxodiff's U-Net, or diffusers' UNet2DModel (same widths)
    channels: tuple[int, ...] = (32, 64, 64)  # decoder U-Net widths, one per resolution
    blocks_per_level: int = positive(1)
    emb_dim: int = positive(128)
    # pixel-unshuffle factor of the U-Net's input (1 = none). 2 trains 3x faster but predicts each 2x2 block
    # from one feature vector: on the demo (600 steps) its samples were speckled, pixel SWD 77.6 against the
    # data's 29.3; at 1 (the default) 41.5 (benchmarks/bench_networks.py, BENCHMARKS.md).
    patch: int = positive(1)
    p_uncond: float = unit(0.1)  # condition dropout for classifier-free guidance
    # > 0: the image network's widths (net.channels scaled by one factor, multiples of 8, and emb_dim) chosen so
    # that the family has this many parameters, its other networks counted (a TreeVAE: its second stage alone);
    # 0: net.channels as given. How families of one comparison are given equal size (a run keeps its widths).
    match_parameters: int = nonneg(0)


@dataclass(frozen=True)
class GaussianDiffusion:
    num_train_timesteps: int = positive(1000)
    beta_start: float = positive(1e-4)
    beta_end: float = positive(0.02)
    beta_schedule: str = choice("squaredcos_cap_v2", BETA_SCHEDULES)  # cosine (Nichol & Dhariwal)
    prediction: str = choice("v_prediction", PREDICTIONS)  # network target (v measured better here)
    # > 0: min-SNR loss weights (Hang et al. 2023): min(SNR, gamma)/SNR for eps, min(SNR, gamma)/(SNR+1) for v.
    # Off by default: with v-prediction it starves the high-noise steps where the subtype is decided
    # (hierarchical, guidance 0, 1,000 steps: off-category 0.031 with gamma 5, 0.000 with plain MSE).
    min_snr_gamma: float = nonneg(0.0)


@dataclass(frozen=True)
class ImageSample:
    sampler: str = choice("ddpm", SAMPLERS)  # ancestral; measured far better than DDIM / DPM-Solver++ here
    steps: int = positive(25)
    guidance: float = nonneg(0.0)  # guidance scale of the image network; 0 = the plain conditional model
    # the rule (taxodiff.processes.guiders): cfg, interval (Kynkäänniemi 2024), cads (Sadat 2024) and diffusers'
    # apg, cfg-zero-star, tcfg, fdg, mambo; scale 0 is the conditional model under every rule
    guidance_method: str = choice("cfg", GUIDANCE_METHODS)
    guidance_window: tuple[float, ...] = pair((0.0, 1.0), 0.0, 1.0)  # diffusers' rules: (start, stop) share of steps
    guidance_space: str = choice("auto", GUIDANCE_SPACES)  # the prediction a rule acts on; auto: the rule's own
    guiders: Guiders = field(default_factory=Guiders)  # each rule's own settings: guiders.<rule>.<setting>
    n_per_category: int = positive(256)
    batch_size: int = positive(256)


def check_image_sections(cfg: Any) -> None:
    ch = cfg.net.channels
    if not ch or any(c < 8 or c % 8 for c in ch):
        raise TaxodiffError(f"net.channels = {list(ch)} is invalid: allowed are one or more multiples of 8")
    if cfg.net.arch == "diffusers" and cfg.net.patch != 1:
        raise TaxodiffError(
            f"net.patch = {cfg.net.patch} is a taxodiff U-Net setting: with net.arch diffusers allowed is patch 1"
        )
    d = cfg.diffusion
    if d.beta_start >= d.beta_end or d.beta_end >= 1:
        raise TaxodiffError(
            f"diffusion betas {d.beta_start}..{d.beta_end} are invalid: allowed is 0 < beta_start < beta_end < 1"
        )
    for key in ("steps", "prior_steps"):
        steps = getattr(cfg.sample, key, None)
        if steps is not None and steps > d.num_train_timesteps:
            raise TaxodiffError(
                f"sample.{key} = {steps} is invalid: allowed is at most diffusion.num_train_timesteps = "
                f"{d.num_train_timesteps}"
            )


# -- building ---------------------------------------------------------------------------------------------
def unet(
    cfg: Any,
    in_channels: int,
    cond_dim: int,
    out_channels: int = 0,
    channels: tuple[int, ...] | None = None,
    emb_dim: int | None = None,
) -> torch.nn.Module:
    """The image network the config names: taxodiff's U-Net or diffusers' UNet2DModel, same interface
    (``channels``, ``emb_dim``: other widths than the config's)."""
    from taxodiff.nets.unet import UNet, UNetConfig

    n = cfg.net
    network = UNet
    if n.arch == "diffusers":
        from taxodiff.nets.diffusers_unet import DiffusersUNet as network  # type: ignore[assignment]
    return network(
        UNetConfig(
            in_channels=in_channels,
            out_channels=out_channels,
            channels=channels or n.channels,
            blocks_per_level=n.blocks_per_level,
            cond_dim=cond_dim,
            emb_dim=emb_dim or n.emb_dim,
            patch=n.patch,
        )
    )


def unet_config(cfg: Any, in_channels: int, cond_dim: int, out_channels: int = 0) -> Any:
    """The config's U-Net for these inputs and conditions (taxodiff.nets.unet.UNetConfig)."""
    from taxodiff.nets.unet import UNetConfig

    n = cfg.net
    return UNetConfig(
        in_channels=in_channels,
        out_channels=out_channels,
        channels=tuple(n.channels),
        blocks_per_level=n.blocks_per_level,
        cond_dim=cond_dim,
        emb_dim=n.emb_dim,
        patch=n.patch,
    )


def widths(
    cfg: Any,
    base: Any,
    structure: dict[str, Any] | None = None,
    extra: int = 0,
    count: Any = None,
) -> tuple[tuple[int, ...], int]:
    """(widths, embedding width) of a family's image network of config ``base`` (a UNetConfig): the run's own
    (``structure`` saved with its checkpoints), the config's, or scaled so that the network (as ``count``
    counts it; default: the config's architecture) plus ``extra`` parameters of the family's other networks
    make ``net.match_parameters`` (a search of about a second, once per run)."""
    if structure is not None and "channels" in structure:
        return tuple(structure["channels"]), int(structure["emb_dim"])
    target = cfg.net.match_parameters
    if not target:
        return tuple(base.channels), base.emb_dim
    from taxodiff.nets.unet import matched_config

    got = matched_config(base, max(target - extra, 1), count or (lambda c: _count(cfg, c)))
    return got.channels, got.emb_dim


def _count(cfg: Any, c: Any) -> int:
    """Parameters of the config's image network with UNetConfig ``c``, built on no device."""
    import torch

    with torch.device("meta"):
        net = unet(cfg, c.in_channels, c.cond_dim, c.out_channels, c.channels, c.emb_dim)
    return sum(p.numel() for p in net.parameters())


def gaussian_process(cfg: Any, clip_sample: bool = True) -> GaussianProcess:
    from taxodiff.processes.gaussian import GaussianConfig, GaussianProcess

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


# -- training ---------------------------------------------------------------------------------------------
def conditional_loss(
    net: CondNet, process: GaussianProcess, x0: Tensor, cond: Tensor, p_uncond: float, noise: Noise
) -> Tensor:
    """The process's loss for a conditional network, with condition dropout (classifier-free guidance)."""
    from taxodiff.processes.guidance import drop_mask

    drop = drop_mask(x0.shape[0], p_uncond, noise, x0.device)
    return process.loss(lambda x, t: net(x, t, cond, drop), x0, noise)


# -- sampling ---------------------------------------------------------------------------------------------
def guidance_at(sc: Any, scale: float) -> Guidance:
    """The sampling config's guidance rule, with its settings, at one scale."""
    from taxodiff.processes.guidance import Guidance

    window = (sc.guidance_window[0], sc.guidance_window[1])
    return Guidance(scale, sc.guiders.rule(sc.guidance_method), window, sc.guidance_space)


def guided_sample(
    net: CondNet,
    cond: Tensor,
    sc: Any,
    scale: float,
    process: GaussianProcess,
    shape: tuple[int, ...],
    noise: Noise,
    sampler: str,
    steps: int,
    progress: Any = None,
) -> Tensor:
    """Samples of shape ``shape`` from a conditional network under the config's guidance rule at ``scale``."""
    from taxodiff.processes.guidance import guided

    denoiser = guided(net, cond, guidance_at(sc, scale), process, noise, process.calls(steps, sampler))
    x = process.prior(shape, noise, cond.device)
    return process.sample(denoiser, x, noise, steps=steps, sampler=sampler, progress=progress)


def sample_tag(sc: Any, knobs: dict[str, str]) -> str:
    """Samples' file name: sampler, steps, every guidance scale of the family, the rule's settings."""
    tag = f"{sc.sampler}{sc.steps}_g{sc.guidance:g}"
    for key in knobs:
        if key != "guidance":
            tag += f"_{''.join(w[0] for w in key.split('_')[:-1])}g{getattr(sc, key):g}"
    tag += sc.guiders.rule(sc.guidance_method).tag()
    if tuple(sc.guidance_window) != (0.0, 1.0):
        tag += f"_window{sc.guidance_window[0]:g}-{sc.guidance_window[1]:g}"
    return tag + (f"_{sc.guidance_space}" if sc.guidance_space != "auto" else "")


def requests(num_categories: int, n_per_category: int) -> tuple[torch.Tensor, list[tuple[str | int, ...]]]:
    """(asked category of every sample, its stream key): the k-th sample of category c is ("sample", c, k)."""
    import torch

    z2 = torch.arange(num_categories).repeat_interleave(n_per_category)
    keys = [("sample", c, k) for c in range(num_categories) for k in range(n_per_category)]
    return z2, keys


def progress_bar(total: int, desc: str, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not progress, dynamic_ncols=True, leave=False)


# -- after sampling ---------------------------------------------------------------------------------------
def category_figure(source: DataSource, samples: dict[str, Tensor], path: Path, title: str) -> None:
    from taxodiff.report import figures

    h = source.hierarchy
    figures.category_grid(samples["images"].numpy(), samples["z2"].numpy(), h.category_names, path, title)


class ImageScores:
    """What an image family's evaluation is by default: the image metrics of its samples."""

    evaluation: ClassVar[type] = ImageEvaluation

    def evaluate(self, module: Any, samples: dict[str, Tensor], progress: bool = True) -> dict:
        result, _ = evaluation(self, samples, module.device, progress)
        return result


def evaluation(family: Any, samples: dict[str, Tensor], device: Any, progress: bool) -> tuple[dict, Any]:
    """The image metrics of ``samples`` with the run's identification; (result, assigned leaves)."""
    from taxodiff.evaluate.images import score

    scores, pred = score(family.source, samples, device, progress)
    head = {"model": family.name, "checkpoint_step": int(samples["step"][0]), "sample": asdict(family.cfg.sample)}
    return head | scores, pred
