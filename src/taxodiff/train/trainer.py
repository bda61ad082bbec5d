"""One trainer for every model family, through Hugging Face Accelerate.

The trainer reads a family (its config, stages and hooks) and its :class:`FamilyModule`, whose
``forward(batch, noise)`` is the loss and ``param_groups()`` the optimiser's groups; a dataset is anything with
``__len__`` and ``batch(indices) -> {name: tensor}``. It owns the optimiser (AdamW; per stage a warm-up then
cosine decay or a constant rate), the EMA of the weights, bf16 autocast where it pays, gradient all-reduce
across processes, logging to ``metrics.jsonl`` and checkpoints.

Training runs through the family's stages. At a stage's first step the family may grow its networks and
choose which parameters train (``grow``, ``freeze``); the optimiser starts afresh over the trainable ones, the
EMA follows the parameters by name, and every checkpoint records the networks' structure, so a run resumed
anywhere rebuilds them. Batches and noise are drawn from generators seeded by (seed, step, rank): a resumed run
continues exactly where it stopped. Under ``accelerate launch`` every rank takes its share of each global batch;
rank 0 writes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from taxodiff import runs, seeds
from taxodiff.families.base import Family, Stage
from taxodiff.noise import Noise
from taxodiff.train.distributed import make_accelerator
from taxodiff.train.schedule import batch_indices, lr_factor


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
    total_seconds: float | None = None  # every call's training time (None: a checkpoint older than this clock)


class Trainer:
    def __init__(self, family: Family, module: nn.Module, data: Dataset, run_dir: Path, state: dict | None = None):
        cfg = family.cfg
        self.family, self.data, self.run_dir = family, data, Path(run_dir)
        self.cfg, self.seed = cfg.train, cfg.seed
        self.state = state or {}  # extra JSON stored in every checkpoint (config, family, ...)
        self.acc = make_accelerator(cfg.device, self.cfg.precision)
        self.raw = module.to(self.acc.device)
        self.stages = family.stages()
        self.starts = [sum(s.steps for s in self.stages[:i]) for i in range(len(self.stages))]
        self.total = sum(s.steps for s in self.stages)
        self.step = 0
        self.stage_index = -1
        self.model: Any = self.raw
        self.opt: Any = None
        self.ema: Any = None
        self.ema_names: list[str] = []
        self.ema_params: list[nn.Parameter] = []
        self.ema_frozen: dict[str, torch.Tensor] = {}
        self.stage_data: Dataset = data
        self.seconds_before: float | None = 0.0  # training time of the calls before this one, up to the checkpoint
        self.t0 = time.perf_counter()

    @property
    def is_main(self) -> bool:
        return bool(self.acc.is_main_process)

    # -- stages ---------------------------------------------------------------------------------------------
    def stage_at(self, step: int) -> int:
        return max(i for i, start in enumerate(self.starts) if start <= step)

    def enter(self, k: int, fresh: bool) -> None:
        """Set up stage k: grow (at its first step only), freeze, a fresh optimiser, the EMA by name, the wrapper."""
        stage = self.stages[k]
        if fresh:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seeds.derive(self.seed, "init", stage.name, self.step) % 2**31)
                self.family.grow(self.raw, stage)
            self.raw.to(self.acc.device)
        self.family.freeze(self.raw, stage)
        self.stage_data = self.family.stage_data(self.raw, stage, self.data)
        groups = [g for g in self.raw.param_groups() if any(p.requires_grad for p in g["params"])]
        for g in groups:
            g["params"] = [p for p in g["params"] if p.requires_grad]
        # fused: one kernel over every tensor; on CPU 3x faster than foreach for the 473 tensors of a branched
        # network, where the optimizer was a seventh of a step (benchmarks/bench_optimizer.py)
        opt = torch.optim.AdamW(groups, weight_decay=self.cfg.weight_decay, fused=True)
        self.base_lrs = [g["lr"] for g in opt.param_groups]
        if self.stage_index >= 0:  # a later stage: drop the previous stage's wrapper and optimiser first
            self.model, self.opt = self.raw, None
            self.acc.free_memory()
        self.model, self.opt = self.acc.prepare(self.raw, opt)
        self.follow_ema()
        self.stage_index = k

    def follow_ema(self) -> None:
        """An EMA over the parameters the stage trains, keeping the averages of those that were there before.
        A parameter the stage freezes takes its average as its value, for training and sampling alike: the
        networks trained on top of it learn against the weights they will be used with, and every part of a
        model is scored on averaged weights (diffusers' EMAModel would instead copy a frozen parameter's raw
        value into its average, so a network frozen after training would be used with raw weights)."""
        from diffusers.training_utils import EMAModel

        old = self.ema_state() if self.ema is not None else {}
        named = list(self.raw.named_parameters())
        self.ema_params = [p for _, p in named if p.requires_grad]
        self.ema_names = [n for n, p in named if p.requires_grad]
        self.ema = EMAModel(self.ema_params, decay=self.cfg.ema_decay, foreach=True)  # one call for every tensor
        for name, shadow in zip(self.ema_names, self.ema.shadow_params, strict=True):
            if name in old:
                shadow.data.copy_(old[name].to(shadow.device))
        for n, p in named:
            if not p.requires_grad and n in old:
                p.data.copy_(old[n].to(p.device))
        self.ema_frozen = {n: p.detach() for n, p in named if not p.requires_grad}  # their value is their average
        self.ema.optimization_step = self.step

    def ema_state(self) -> dict[str, torch.Tensor]:
        """Every parameter's average, by name: the trained ones' and the frozen ones'."""
        return dict(zip(self.ema_names, self.ema.shadow_params, strict=True)) | self.ema_frozen

    @property
    def batch_size(self) -> int:
        """The global batch of the current stage."""
        return self.stages[self.stage_index].batch_size or self.cfg.batch_size

    def lr(self, step: int) -> float:
        k = self.stage_at(step)
        stage: Stage = self.stages[k]
        warmup = self.cfg.warmup if stage.warmup is None else stage.warmup
        schedule = stage.lr_schedule or self.cfg.lr_schedule
        return lr_factor(step - self.starts[k], stage.steps, warmup, schedule)

    # -- checkpoints ----------------------------------------------------------------------------------------
    def save(self) -> Path | None:
        path = None
        if self.is_main:
            ema = self.ema_state()
            opt_t, opt_meta = _flatten_optimizer(self.opt.state_dict())
            extra = {
                "seconds": self.total_seconds(),  # every call's training time up to this checkpoint
                "optim": opt_meta,
                "structure": self.family.structure(self.raw),
                "stage": self.stages[self.stage_index].name,  # the stage whose networks these are
            }
            path = runs.save_checkpoint(
                self.run_dir,
                self.step,
                {"model": self.raw.state_dict(), "ema": ema, "optim": opt_t},
                {**self.state, **extra},
                keep=self.cfg.keep_checkpoints,
            )
        self.acc.wait_for_everyone()
        return path

    def resume(self) -> int:
        """Continue from the latest checkpoint (the caller built the networks from its structure)."""
        path = runs.latest_checkpoint(self.run_dir)
        if path is None:
            return 0
        tensors, state = runs.load_checkpoint(path, ("model", "ema", "optim"))
        self.raw.load_state_dict(tensors["model"])
        self.step = int(state["step"])
        self.seconds_before = state.get("seconds")
        self.follow_ema()
        for name, shadow in self.ema_state().items():
            shadow.data.copy_(tensors["ema"][name].to(shadow.device))
        if self.step < self.total:
            k = self.stage_at(self.step)
            fresh = self.step == self.starts[k]
            self.enter(k, fresh)
            if not fresh:
                self.opt.load_state_dict(_unflatten_optimizer(tensors["optim"], state["optim"]))
        return self.step

    # -- the loop -----------------------------------------------------------------------------------------
    def train(self, resume: bool = True, progress: bool = True) -> TrainResult:
        from tqdm.auto import tqdm

        start = self.resume() if resume else 0
        t0 = self.t0 = time.perf_counter()
        bar = tqdm(
            total=self.total,
            initial=start,
            desc=f"train {self.run_dir.name}",
            unit="step",
            disable=not (progress and self.is_main),
            dynamic_ncols=True,
        )
        window_t, window_n = time.perf_counter(), 0
        last_ckpt = None
        while self.step < self.total:
            k = self.stage_at(self.step)
            if k != self.stage_index:
                self.enter(k, fresh=self.step == self.starts[k])
            self.model.train()
            frozen_statistics(self.raw)
            logs = self.train_step()
            window_n += self.batch_size
            self.step += 1
            bar.update(1)
            if self.step % self.cfg.log_every == 0 or self.step == self.total:
                now = time.perf_counter()
                logs.update(
                    step=self.step, img_per_s=round(window_n / (now - window_t), 2), elapsed_s=round(now - t0, 2)
                )
                if len(self.stages) > 1:
                    logs["stage"] = self.stages[k].name
                window_t, window_n = now, 0
                bar.set_postfix(loss=f"{logs['loss']:.4f}")
                if self.is_main:
                    runs.append_jsonl(self.run_dir / "metrics.jsonl", logs)
            end_of_stage = self.step in self.starts or self.step == self.total
            if self.step % self.cfg.checkpoint_every == 0 or end_of_stage:
                last_ckpt = self.save()
        bar.close()
        self.acc.wait_for_everyone()
        return TrainResult(
            self.step,
            time.perf_counter() - t0,
            start,
            last_ckpt,
            self.acc.num_processes,
            self.weight_digests(),
            self.total_seconds(),
        )

    def total_seconds(self) -> float | None:
        """This call's training time so far plus the earlier calls' up to the checkpoint it resumed from."""
        if self.seconds_before is None:
            return None
        return round(self.seconds_before + time.perf_counter() - self.t0, 3)

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
        k = self.stage_index
        self.family.at_step(self.raw, self.stages[k], self.step - self.starts[k])
        idx = batch_indices(
            len(self.stage_data), self.step, self.batch_size, self.seed, self.acc.process_index, self.acc.num_processes
        )
        batch = {name: v.to(self.acc.device) for name, v in self.stage_data.batch(idx).items()}
        noise = Noise.from_seed(self.seed, "noise", self.step, self.acc.process_index)
        f = self.lr(self.step)
        for group, base in zip(self.opt.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * f
        with self.acc.autocast():
            losses = self.model(batch, noise)  # forward = loss, so DDP sees the call
        self.opt.zero_grad(set_to_none=True)
        self.acc.backward(losses["loss"])
        if cfg.grad_clip > 0:
            self.acc.clip_grad_norm_([p for p in self.raw.parameters() if p.requires_grad], cfg.grad_clip)
        self.opt.step()
        self.ema.step(self.ema_params)
        return {k: float(v.detach()) for k, v in losses.items()} | {"lr": self.opt.param_groups[0]["lr"]}


def frozen_statistics(module: nn.Module) -> None:
    """Batch norms whose parameters a stage does not train keep their running statistics (eval mode), so that
    the frozen part of a network computes the same function throughout the stage."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


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
