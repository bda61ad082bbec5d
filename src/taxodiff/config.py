"""Run configuration: frozen dataclasses, every default in one place, loaded from YAML with strict checks.

A YAML file overrides any subset of the defaults::

    hierarchy: {animal: {dog: 0.5, cat: 0.5}, vehicle: {car: 0.7, truck: 0.3}}
    data: {size: 32, n_train: 10000}
    train: {steps: 1500}

Unknown keys and values of the wrong type or range are refused with one line that names them and says
what is allowed. This module imports neither torch nor numpy.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taxodiff.errors import TaxodiffError
from taxodiff.hierarchy import Hierarchy

DEFAULT_HIERARCHY: dict[str, Any] = {"animal": {"dog": 0.5, "cat": 0.5}, "vehicle": {"car": 0.5, "truck": 0.5}}
FAMILIES = ("flat", "hierarchical")
SAMPLERS = ("ddpm", "ddim", "dpmsolver++")
GUIDANCE_METHODS = ("cfg", "interval", "cads")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class DataConfig:
    size: int = 32  # image side in pixels: 32 or 64 (any multiple of 16 works)
    n_train: int = 10_000  # training images, rendered once per run from the data seed
    max_offset: float = 0.12  # style: largest shift of the figure, in half-frames
    scale_min: float = 0.72  # style: figure scale range
    scale_max: float = 0.95
    brightness_min: float = 0.35  # style: HSV value range of the figure's colour
    brightness_max: float = 0.85
    background: float = 1.0  # grey level of the background in [0, 1]


@dataclass(frozen=True)
class ModelConfig:
    channels: tuple[int, ...] = (32, 64, 64)  # decoder U-Net widths, one per resolution
    blocks_per_level: int = 1
    emb_dim: int = 128
    patch: int = 2  # pixel-unshuffle factor of the U-Net's input (1 = none)
    p_uncond: float = 0.1  # condition dropout for classifier-free guidance
    prior_hidden: int = 256  # hierarchical model: z1 prior MLP width
    prior_layers: int = 3
    prior_repeats: int = 8  # hierarchical model: noise draws of each z1 per step (the prior is cheap)


@dataclass(frozen=True)
class DiffusionConfig:
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: str = "squaredcos_cap_v2"  # cosine (Nichol & Dhariwal); the seed's is "linear" 1e-4..0.02
    prediction: str = "v_prediction"  # network target: "epsilon" or "v_prediction" (measured better here)
    # > 0: min-SNR loss weights (Hang et al. 2023): min(SNR, gamma)/SNR for eps, min(SNR, gamma)/(SNR+1) for v.
    # Off by default: with v-prediction it starves the high-noise steps where the subtype is decided
    # (hierarchical, guidance 0, 1,000 steps: off-category 0.031 with gamma 5, 0.000 with plain MSE).
    min_snr_gamma: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 600  # batch 64: 38,400 images seen; the demo's two models train in 4-7 min on 2 CPU cores
    batch_size: int = 64
    lr: float = 2e-3
    prior_lr: float = 1e-3
    warmup: int = 100
    lr_schedule: str = "cosine"  # after warm-up: "cosine" decay to 10% at the last step, or "constant"
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    precision: str = "auto"  # auto: bf16 autocast where the CPU or GPU supports it natively, else fp32
    checkpoint_every: int = 200
    log_every: int = 20


@dataclass(frozen=True)
class SampleConfig:
    sampler: str = "ddpm"  # ancestral; measured far better than DDIM / DPM-Solver++ at equal steps here
    steps: int = 25
    guidance: float = 0.0  # decoder (or flat model) guidance scale; 0 = the plain conditional model
    prior_sampler: str = "ddpm"
    prior_steps: int = 1000  # the prior is an MLP on a few numbers: full ancestral sampling is cheap
    prior_guidance: float = 0.0
    guidance_method: str = "cfg"  # "cfg", "interval" (Kynkäänniemi et al. 2024) or "cads" (Sadat et al. 2024)
    guidance_interval: tuple[float, ...] = (0.28, 5.42)  # "interval": guide only for sigma_t in (lo, hi]
    cads_tau: tuple[float, ...] = (0.6, 0.9)  # "cads": condition pure noise above tau2, clean below tau1 (t/T)
    cads_noise: float = 0.25  # "cads": noise scale s on the condition
    cads_psi: float = 1.0  # "cads": mix of the rescaled noised condition
    n_per_category: int = 256
    batch_size: int = 256


@dataclass(frozen=True)
class EvalConfig:
    coverage_rel: float = 0.25  # a subtype is covered when its generated share >= coverage_rel * p_data
    kl_smoothing: float = 0.5  # pseudo-count added to every subtype's generated count before the KL
    bootstrap: int = 1000  # bootstrap resamples for the 95% intervals
    classifier_train: int = 8000
    classifier_test: int = 2000
    classifier_epochs: int = 3
    features: bool = True  # also PRDC, Fréchet distance, Vendi scores and memorisation (classifier features)
    prdc_k: int = 5  # neighbours for precision / recall / density / coverage
    memorisation_ratio: float = 1 / 3  # a sample is a copy when d1 < ratio * d2 to its two nearest training images


@dataclass(frozen=True)
class RunConfig:
    hierarchy: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_HIERARCHY))
    cond_level: int = 1  # tree level of the coarse condition z2 (1 = the root's children)
    embed_dim: int = 2  # dimension of the z1 anchors
    model: str = "hierarchical"  # one of FAMILIES
    seed: int = 0
    device: str = "auto"
    data: DataConfig = field(default_factory=DataConfig)
    net: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def build_hierarchy(self) -> Hierarchy:
        from taxodiff.data.shapes import SHAPE_NAMES

        return Hierarchy.from_spec(
            self.hierarchy, cond_level=self.cond_level, embed_dim=self.embed_dim, shapes=SHAPE_NAMES
        )


# -- loading and checking --------------------------------------------------------------------------------
_CHOICES: dict[str, tuple[str, ...]] = {
    "model": FAMILIES,
    "device": DEVICES,
    "train.precision": PRECISIONS,
    "train.lr_schedule": ("cosine", "constant"),
    "sample.sampler": SAMPLERS,
    "sample.prior_sampler": SAMPLERS,
    "sample.guidance_method": GUIDANCE_METHODS,
    "diffusion.prediction": ("epsilon", "v_prediction"),
    "diffusion.beta_schedule": ("linear", "scaled_linear", "squaredcos_cap_v2"),
}
_POSITIVE = {
    "data.size",
    "data.n_train",
    "net.emb_dim",
    "net.patch",
    "net.prior_hidden",
    "net.prior_layers",
    "net.prior_repeats",
    "net.blocks_per_level",
    "diffusion.num_train_timesteps",
    "train.steps",
    "train.batch_size",
    "train.checkpoint_every",
    "train.log_every",
    "sample.steps",
    "sample.prior_steps",
    "sample.n_per_category",
    "sample.batch_size",
    "eval.bootstrap",
    "eval.classifier_train",
    "eval.classifier_test",
    "eval.classifier_epochs",
    "eval.prdc_k",
    "train.lr",
    "train.prior_lr",
    "diffusion.beta_start",
    "diffusion.beta_end",
    "data.scale_min",
    "data.scale_max",
}
_UNIT = {
    "net.p_uncond",
    "train.ema_decay",
    "eval.coverage_rel",
    "data.background",
    "data.brightness_min",
    "data.brightness_max",
    "sample.cads_psi",
    "eval.memorisation_ratio",
}
_NONNEG = {
    "seed",
    "train.warmup",
    "train.weight_decay",
    "train.grad_clip",
    "sample.guidance",
    "sample.prior_guidance",
    "sample.cads_noise",
    "eval.kl_smoothing",
    "diffusion.min_snr_gamma",
    "data.max_offset",
}


def from_dict(data: Mapping[str, Any] | None, base: RunConfig | None = None) -> RunConfig:
    """Overlay a (possibly partial) nested mapping on ``base`` (default: the defaults), then check it."""
    cfg = overlay(base or RunConfig(), data or {}, "")
    check(cfg)
    return cfg


def load(
    path: str | Path | None, overrides: Mapping[str, Any] | None = None, under: Mapping[str, Any] | None = None
) -> RunConfig:
    """Read a YAML config (None = defaults) and apply dotted overrides such as {"train.steps": 10}.

    ``under``: dotted values that replace the defaults but give way to the file and the overrides (a preset)."""
    data = nest({}, under or {})
    if path is not None:
        merge(data, read_yaml(path))
    return from_dict(nest(data, overrides or {}))


def merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if key != "hierarchy" and isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def with_overrides(cfg: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """``cfg`` with dotted overrides applied, checked."""
    return from_dict(nest({}, overrides), base=cfg)


def nest(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise TaxodiffError(f"config file {str(p)!r} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise TaxodiffError(f"config file {str(p)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TaxodiffError(f"config file {str(p)!r} must hold a mapping at the top level")
    return data


def to_dict(cfg: Any) -> Any:
    """Plain nested dict (tuples as lists), ready for YAML or JSON."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (tuple, list)):
        return [to_dict(v) for v in cfg]
    return cfg


def dump_yaml(cfg: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def overlay(obj: Any, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise TaxodiffError(f"config section {prefix.rstrip('.') or 'top'} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in fields:
            raise TaxodiffError(f"unknown config key {name!r}; allowed here: {', '.join(fields)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            changes[key] = overlay(current, value, f"{name}.")
        else:
            changes[key] = _coerce(value, hints[key], name)
    return dataclasses.replace(obj, **changes)


def _coerce(value: Any, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise TaxodiffError(f"{name} = {value!r} is invalid: allowed is true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TaxodiffError(f"{name} = {value!r} is invalid: allowed is an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TaxodiffError(f"{name} = {value!r} is invalid: allowed is a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TaxodiffError(f"{name} = {value!r} is invalid: allowed is a string")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            raise TaxodiffError(f"{name} = {value!r} is invalid: allowed is a non-empty list")
        return tuple(_coerce(v, typing.get_args(hint)[0], name) for v in value)
    if origin in (Mapping, dict) or hint is Mapping or origin is types.UnionType:
        if not isinstance(value, Mapping):
            raise TaxodiffError(f"{name} must be a mapping, got {value!r}")
        return dict(value)
    return value


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out.update(flatten(v, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = v
    return out


def _check_pair(key: str, pair: tuple[float, ...], lo: float, hi: float) -> None:
    if len(pair) != 2 or not lo <= pair[0] < pair[1] <= hi:
        raise TaxodiffError(f"{key} = {list(pair)} is invalid: allowed are two numbers a < b in [{lo}, {hi}]")


def check_values(
    cfg: Any, choices: Mapping[str, tuple[str, ...]], positive: set[str], nonneg: set[str], unit: set[str]
) -> None:
    """Raise TaxodiffError naming the first value outside its choices or range (keys are dotted paths)."""
    flat = flatten(cfg)
    for key, allowed in choices.items():
        if flat[key] not in allowed:
            raise TaxodiffError(f"{key} = {flat[key]!r} is invalid: allowed are {', '.join(allowed)}")
    for key in positive:
        if not flat[key] > 0:
            raise TaxodiffError(f"{key} = {flat[key]!r} is invalid: allowed is a positive number")
    for key in nonneg:
        if flat[key] < 0:
            raise TaxodiffError(f"{key} = {flat[key]!r} is invalid: allowed is a number >= 0")
    for key in unit:
        if not 0 <= flat[key] <= 1:
            raise TaxodiffError(f"{key} = {flat[key]!r} is invalid: allowed is a number in [0, 1]")


def check(cfg: RunConfig) -> None:
    """Raise TaxodiffError naming the first invalid value."""
    check_values(cfg, _CHOICES, _POSITIVE, _NONNEG, _UNIT)
    if any(c < 8 or c % 8 for c in cfg.net.channels):
        raise TaxodiffError(f"net.channels = {list(cfg.net.channels)} is invalid: allowed are multiples of 8")
    divisor = cfg.net.patch * 2 ** (len(cfg.net.channels) - 1)
    if cfg.data.size % divisor:
        raise TaxodiffError(
            f"data.size = {cfg.data.size} is invalid for patch {cfg.net.patch} and {len(cfg.net.channels)} "
            f"levels: allowed are multiples of {divisor}"
        )
    _check_pair("sample.guidance_interval", cfg.sample.guidance_interval, 0.0, float("inf"))
    _check_pair("sample.cads_tau", cfg.sample.cads_tau, 0.0, 1.0)
    if cfg.data.scale_min > cfg.data.scale_max or cfg.data.brightness_min > cfg.data.brightness_max:
        raise TaxodiffError("data: scale_min/brightness_min must not exceed scale_max/brightness_max")
    if cfg.diffusion.beta_start >= cfg.diffusion.beta_end or cfg.diffusion.beta_end >= 1:
        raise TaxodiffError(
            f"diffusion betas {cfg.diffusion.beta_start}..{cfg.diffusion.beta_end} are invalid: "
            "allowed is 0 < beta_start < beta_end < 1"
        )
    cfg.build_hierarchy()
