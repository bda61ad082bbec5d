"""Run-level operations for RHM diffusion, callable from Python exactly as ``taxodiff rhm ...`` calls them.

train_run(cfg, run_dir)               draw the grammar and the P training sequences, train (resuming)
sample_run(run_dir, overrides)        sample the EMA weights (or exact BP), save samples/<tag>.safetensors
evaluate_run(run_dir, overrides)      score samples: validity per level, copies, rule usage -> eval.json
bayes_model(cfg)                      an untrained model whose "bp" denoiser is the exact reference
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taxodiff import rhm_config, runs, seeds
from taxodiff.errors import TaxodiffError
from taxodiff.rhm_config import RHMRunConfig


class TokenData:
    """Training sequences for the trainer: ``batch(idx) -> {"tokens": (B, N)}``."""

    def __init__(self, tokens: Any) -> None:
        self.tokens = tokens

    def __len__(self) -> int:
        return len(self.tokens)

    def batch(self, idx: Any) -> dict[str, Any]:
        return {"tokens": self.tokens[idx]}


def sequences(cfg: RHMRunConfig) -> tuple[Any, Any]:
    """(train, test) token tensors: n_train + n_test distinct sequences, drawn with the sampling seed."""
    from taxodiff.data.rhm import Grammar

    g = Grammar(cfg.rhm)
    n = cfg.data.n_train + cfg.data.n_test  # checked against the grammar's size by the config
    tokens = g.sample(n, seed=seeds.derive(cfg.data.seed_sample, "rhm-sequences")).tokens
    return tokens[: cfg.data.n_train], tokens[cfg.data.n_train :]


def build(cfg: RHMRunConfig) -> Any:
    import torch

    from taxodiff.data.rhm import Grammar
    from taxodiff.models.rhm import RHMDiffusion

    torch.manual_seed(seeds.derive(cfg.seed, "init") % 2**31)
    return RHMDiffusion(cfg, Grammar(cfg.rhm))


def train_run(cfg: RHMRunConfig, run_dir: Path, resume: bool = True, progress: bool = True) -> dict[str, Any]:
    from taxodiff.pipeline import check_existing, run_trainer

    run_dir = Path(run_dir)
    check_existing(cfg, run_dir, resume, rhm_config.from_dict)
    train, _ = sequences(cfg)
    return run_trainer(build(cfg), TokenData(train), cfg, "rhm", run_dir, resume, progress)


def stored_config(run_dir: Path) -> tuple[Path, RHMRunConfig, dict[str, Any]]:
    from taxodiff.pipeline import check_family

    ckpt = runs.resolve_checkpoint(run_dir)
    state = runs.read_json(ckpt / "state.json")
    if not isinstance(state, dict) or state.get("format") != runs.FORMAT:
        raise TaxodiffError(f"{str(ckpt)!r} is not a taxodiff checkpoint")
    check_family(ckpt, state, ("rhm",))
    return ckpt, rhm_config.from_dict(state["config"]), state


def load_model(run_dir: Path, device: Any = "cpu", ema: bool = True) -> tuple[RHMRunConfig, Any, int]:
    ckpt, cfg, state = stored_config(run_dir)
    tensors, _ = runs.load_checkpoint(ckpt, ("model", "ema"))
    model = build(cfg)
    weights = dict(tensors["model"])
    if ema:
        weights.update(tensors["ema"])
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise TaxodiffError(f"checkpoint {str(ckpt)!r} does not match its RHM config ({len(missing)} tensors missing)")
    return cfg, model.to(device).eval(), int(state["step"])


def sample_settings(cfg: RHMRunConfig, overrides: dict[str, Any] | None) -> Any:
    kept = {k: v for k, v in (overrides or {}).items() if v is not None}
    return rhm_config.from_dict({"sample": kept}, cfg).sample


def sample_tag(sc: Any) -> str:
    return f"{sc.denoiser}_n{sc.n_samples}"


def generate(model: Any, count: int, batch: int, seed: int, denoiser: str, progress: bool = True) -> Any:
    """``count`` sequences in batches, deterministic in ``seed``."""
    import torch
    from tqdm.auto import tqdm

    gen = seeds.generator(seed, "rhm-sample", denoiser)
    steps = model.process.T
    bar = tqdm(total=steps * -(-count // batch), desc=f"sample {denoiser}", disable=not progress, leave=False)
    out = [model.sample(min(batch, count - i), gen, denoiser, progress=bar.update) for i in range(0, count, batch)]
    bar.close()
    return torch.cat(out) if out else torch.zeros(0, model.grammar.length, dtype=torch.long)


def sample_run(
    run_dir: Path, overrides: dict[str, Any] | None = None, device: str | None = None, progress: bool = True
) -> tuple[Path, Any]:
    import torch

    from taxodiff.sampling import save_samples
    from taxodiff.train import resolve_device

    run_dir = Path(run_dir)
    _, cfg, _ = stored_config(run_dir)
    sc = sample_settings(cfg, overrides)
    _, model, step = load_model(run_dir, resolve_device(device or cfg.device))
    tokens = generate(model, sc.n_samples, sc.batch_size, cfg.seed, sc.denoiser, progress).cpu()
    path = save_samples(run_dir, sample_tag(sc), {"tokens": tokens, "step": torch.tensor([step])})
    return path, tokens


def evaluate_run(
    run_dir: Path, overrides: dict[str, Any] | None = None, device: str | None = None, progress: bool = True
) -> dict[str, Any]:
    from taxodiff.data.rhm import Grammar
    from taxodiff.metrics.rhm import sequence_metrics
    from taxodiff.sampling import load_samples

    run_dir = Path(run_dir)
    ckpt, cfg, state = stored_config(run_dir)
    sc = sample_settings(cfg, overrides)
    tag = sample_tag(sc)
    path = run_dir / "samples" / f"{tag}.safetensors"
    stored = load_samples(path) if path.exists() else None
    if stored is None or int(stored["step"][0]) != int(state["step"]):
        _, tokens = sample_run(run_dir, overrides, device, progress)
    else:
        tokens = stored["tokens"]
    train, test = sequences(cfg)
    result = {"tag": tag, "checkpoint_step": int(state["step"])} | sequence_metrics(Grammar(cfg.rhm), tokens, train)
    result["loss_by_time"] = loss_by_time(run_dir, cfg, train, test, device)
    evals = runs.read_json(run_dir / "eval.json") if (run_dir / "eval.json").exists() else {"evaluations": {}}
    evals["evaluations"][tag] = result
    runs.write_json(run_dir / "eval.json", evals)
    return result


def loss_by_time(
    run_dir: Path, cfg: RHMRunConfig, train: Any, test: Any, device: str | None = None, windows: int = 10
) -> dict[str, Any]:
    """The model's loss on (up to 1,024) training and held-out sequences in windows of diffusion time: a gap
    between the two is memorisation, and where in time it opens says at which level of the tree."""
    from taxodiff.train import resolve_device

    _, model, _ = load_model(run_dir, resolve_device(device or cfg.device))
    dev = next(model.parameters()).device
    out: dict[str, Any] = {"windows": [[w / windows, (w + 1) / windows] for w in range(windows)]}
    for name, tokens in (("train", train), ("test", test)):
        gen = seeds.generator(cfg.seed, "loss-by-time", name)
        out[name] = model.loss_by_time(tokens[:1024].to(dev), gen, windows) if len(tokens) else []
    return out


def bayes_model(cfg: RHMRunConfig) -> Any:
    """A model whose ``sample(..., denoiser="bp")`` is exact: no training, the grammar is all it needs."""
    return build(cfg).eval()
