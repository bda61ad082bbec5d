"""One trainer for every model family, through Hugging Face Accelerate.

A model is an ``nn.Module`` whose ``forward(batch, gen)`` returns ``{"loss": scalar, ...}``, with ``param_groups()``; a
dataset is anything with ``__len__`` and ``batch(indices) -> {name: tensor}``. The trainer owns the
optimiser (AdamW, warm-up then cosine decay or a constant rate), the EMA of the weights, bf16 autocast where it pays,
gradient all-reduce across processes, logging to ``metrics.jsonl`` and checkpoints. Batches and noise are
drawn from generators seeded by (seed, step), so a resumed run continues exactly where it stopped.
Under ``accelerate launch`` every rank takes its share of each global batch; rank 0 writes.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from taxodiff import runs, seeds
from taxodiff.config import TrainConfig


class Dataset(Protocol):
    def __len__(self) -> int: ...

    def batch(self, idx: Tensor) -> dict[str, Tensor]: ...


@dataclass
class TrainResult:
    step: int
    seconds: float
    resumed_from: int
    checkpoint: Path | None
    processes: int = 1
    weight_digests: tuple[str, ...] = ()  # one per process: equal when the ranks stayed in sync


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively (CPU with AVX512-BF16 or AMX, or a CUDA GPU with bf16)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from taxodiff.errors import TaxodiffError

        raise TaxodiffError("--device cuda was asked for but no CUDA GPU is available: allowed here are auto, cpu")
    return torch.device(name)


def make_accelerator(device: str, precision: str) -> Any:
    from accelerate import Accelerator

    dev = resolve_device(device)
    use_bf16 = precision == "bf16" or (precision == "auto" and bf16_supported(dev))
    return Accelerator(cpu=dev.type == "cpu", mixed_precision="bf16" if use_bf16 else "no")


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak at the last step (or the peak throughout)."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    if cfg.lr_schedule == "constant":
        return 1.0
    span = max(1, cfg.steps - cfg.warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - cfg.warmup) / span)))


def batch_indices(n: int, step: int, batch: int, seed: int, rank: int = 0, world: int = 1) -> Tensor:
    """The global batch of ``step`` (epoch-wise shuffles seeded by (seed, epoch)), this rank's share of it."""
    per_epoch = max(1, n // batch)
    epoch, pos = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=seeds.generator(seed, "batches", epoch))
    idx = perm[pos * batch : (pos + 1) * batch]
    if len(idx) < batch:  # n < batch: sample with replacement
        idx = torch.randint(0, n, (batch,), generator=seeds.generator(seed, "batches", epoch, pos))
    return idx[rank::world]


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        data: Dataset,
        cfg: TrainConfig,
        run_dir: Path,
        seed: int,
        device: str = "auto",
        state: dict[str, Any] | None = None,
    ) -> None:
        from diffusers.training_utils import EMAModel

        self.cfg, self.data, self.run_dir, self.seed = cfg, data, Path(run_dir), seed
        self.state = state or {}  # extra JSON stored in every checkpoint (config, family, ...)
        self.acc = make_accelerator(device, cfg.precision)
        self.model = model.to(self.acc.device)
        self.opt = torch.optim.AdamW(model.param_groups(), weight_decay=cfg.weight_decay, foreach=True)
        self.base_lrs = [g["lr"] for g in self.opt.param_groups]
        self.model, self.opt = self.acc.prepare(self.model, self.opt)
        self.ema = EMAModel(self.raw.parameters(), decay=cfg.ema_decay)
        self.step = 0

    @property
    def raw(self) -> nn.Module:
        return self.acc.unwrap_model(self.model)

    @property
    def is_main(self) -> bool:
        return bool(self.acc.is_main_process)

    # -- checkpoints ----------------------------------------------------------------------------------
    def save(self) -> Path | None:
        if self.is_main:
            params = dict(self.raw.named_parameters())
            ema = {name: p for name, p in zip(params, self.ema.shadow_params, strict=True)}
            opt_t, opt_meta = _flatten_optimizer(self.opt.state_dict())
            path = runs.save_checkpoint(
                self.run_dir,
                self.step,
                {"model": self.raw.state_dict(), "ema": ema, "optim": opt_t},
                {**self.state, "optim": opt_meta},
            )
        else:
            path = None
        self.acc.wait_for_everyone()
        return path

    def resume(self) -> int:
        path = runs.latest_checkpoint(self.run_dir)
        if path is None:
            return 0
        tensors, state = runs.load_checkpoint(path, ("model", "ema", "optim"))
        self.raw.load_state_dict(tensors["model"])
        names = [n for n, _ in self.raw.named_parameters()]
        for shadow, name in zip(self.ema.shadow_params, names, strict=True):
            shadow.data.copy_(tensors["ema"][name].to(shadow.device))
        self.opt.load_state_dict(_unflatten_optimizer(tensors["optim"], state["optim"]))
        self.step = int(state["step"])
        self.ema.optimization_step = self.step
        return self.step

    # -- the loop ---------------------------------------------------------------------------------------
    def train(self, resume: bool = True, progress: bool = True) -> TrainResult:
        from tqdm.auto import tqdm

        start = self.resume() if resume else 0
        cfg, t0 = self.cfg, time.perf_counter()
        bar = tqdm(
            total=cfg.steps,
            initial=start,
            desc=f"train {self.run_dir.name}",
            unit="step",
            disable=not (progress and self.is_main),
            dynamic_ncols=True,
        )
        window_t, window_n = time.perf_counter(), 0
        self.model.train()
        last_ckpt = None
        while self.step < cfg.steps:
            logs = self.train_step()
            window_n += cfg.batch_size
            self.step += 1
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                now = time.perf_counter()
                logs.update(
                    step=self.step, img_per_s=round(window_n / (now - window_t), 2), elapsed_s=round(now - t0, 2)
                )
                window_t, window_n = now, 0
                bar.set_postfix(loss=f"{logs['loss']:.4f}")
                if self.is_main:
                    runs.append_jsonl(self.run_dir / "metrics.jsonl", logs)
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                last_ckpt = self.save()
        bar.close()
        self.acc.wait_for_everyone()
        return TrainResult(
            self.step, time.perf_counter() - t0, start, last_ckpt, self.acc.num_processes, self.weight_digests()
        )

    def weight_digests(self) -> tuple[str, ...]:
        """SHA-256 of this process' parameters, gathered from every process (in rank order)."""
        h = hashlib.sha256()
        for p in self.raw.parameters():
            h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
        if self.acc.num_processes == 1:
            return (h.hexdigest()[:16],)
        from accelerate.utils import gather_object

        return tuple(gather_object([h.hexdigest()[:16]]))

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        idx = batch_indices(
            len(self.data), self.step, cfg.batch_size, self.seed, self.acc.process_index, self.acc.num_processes
        )
        batch = {k: v.to(self.acc.device) for k, v in self.data.batch(idx).items()}
        gen = seeds.generator(self.seed, "noise", self.step, self.acc.process_index)
        f = lr_factor(self.step, cfg)
        for group, base in zip(self.opt.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * f
        with self.acc.autocast():
            losses = self.model(batch, gen)  # forward = loss, so DDP sees the call
        self.opt.zero_grad(set_to_none=True)
        self.acc.backward(losses["loss"])
        if cfg.grad_clip > 0:
            self.acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        self.ema.step(self.raw.parameters())
        return {k: float(v.detach()) for k, v in losses.items()} | {"lr": self.opt.param_groups[0]["lr"]}


def finish_distributed() -> None:
    """End of a multi-process job: wait for every rank, then tear the process group down (no-op alone)."""
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes > 1:
        state.wait_for_everyone()
        state.destroy_process_group()


def _flatten_optimizer(sd: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in [*tensors.items(), *meta["scalars"].items()]:
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    return {"state": state, "param_groups": meta["param_groups"]}
